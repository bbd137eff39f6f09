"""Sampling parameters reach every model, and the votes of plain models run concurrently.

Fake models here RECORD what they were called with: per-call keywords (a model whose
``_generate`` names them), their own fields (a model configured by fields, like
ChatOllama), and, for the real ChatOllama / ChatAnthropic / OpenAI-derived clients, the
JSON body of the HTTP request (an ``httpx.MockTransport`` answers it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.llms import LLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field, PrivateAttr
from test_chat_prompt import ChattyModel  # the chat stand-in of the apples script

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.sampling.plain import route_for
from langchain_rstar.sampling.sampler import SampleCall, Sampler
from langchain_rstar.testing import APPLES_QUESTION

PARAMS = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 64}


def _call(n: int = 3, prompts: int = 1, **params: Any) -> SampleCall:
    return SampleCall(
        prompts=[f"Say something {i}." for i in range(prompts)],
        n=n,
        stop=[],
        params=params or dict(PARAMS),
        seed=123,
    )


def _reply(text: str) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


class KeywordChat(BaseChatModel):
    """Names the sampling parameters in ``_generate``; records every call's keywords."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "keyword-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(
            {
                "temperature": temperature,
                "top_p": top_p,
                "top_k": top_k,
                "max_tokens": max_tokens,
                **kwargs,
            }
        )
        return _reply(f"draw {len(self.seen)}")


class FieldChat(BaseChatModel):
    """Configured by fields only (like ChatOllama); at temperature 0 every reply is the
    same. ``seen`` is shared with the copies the sampler makes."""

    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    num_predict: int | None = None
    ignore_temperature: bool = False
    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "field-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(
            {
                "temperature": self.temperature,
                "top_p": self.top_p,
                "top_k": self.top_k,
                "num_predict": self.num_predict,
                "kwargs": kwargs,
            }
        )
        if self.temperature == 0 or self.ignore_temperature:
            return _reply("The answer is 10.")
        return _reply(f"The answer is {len(self.seen)}.")


class DeafChat(BaseChatModel):
    """No sampling keyword, no sampling field: a model built at temperature 0."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "deaf-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(kwargs)
        return _reply("The answer is 10.")


class RecordingChatty(ChattyModel):
    """The apples chat stand-in, taking the sampling parameters as keywords and recording
    them (so a whole search can run on it)."""

    params_seen: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(  # type: ignore[override]
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.params_seen.append(
            {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_tokens": max_tokens}
        )
        return super()._generate(messages, stop, run_manager, **kwargs)


# -- routes --------------------------------------------------------------------------------


def test_keyword_model_gets_every_parameter_on_every_request() -> None:
    model = KeywordChat()
    out = Sampler(model).sample(_call(n=3, prompts=2))
    assert out.texts is not None and all(t is not None and len(t) == 3 for t in out.texts)
    assert len(model.seen) == 6  # no native n: n requests per prompt
    for seen in model.seen:
        assert seen == {**PARAMS}  # no seed (n repeats would draw one sample), no n


def test_field_model_is_called_as_a_copy_with_its_fields_set() -> None:
    model = FieldChat(temperature=0.0, num_predict=500)
    sampler = Sampler(model)
    out = sampler.sample(_call(n=4))
    assert out.texts[0] is not None and len(set(out.texts[0])) == 4  # really sampled
    assert {(s["temperature"], s["top_p"], s["top_k"], s["num_predict"]) for s in model.seen} == {
        (0.7, 0.9, 40, 64)
    }
    assert all(s["kwargs"] == {} for s in model.seen)
    assert model.temperature == 0.0 and model.num_predict == 500  # the user's model is untouched
    # one copy per distinct parameter set, reused across calls
    sampler.sample(_call(n=2))
    sampler.sample(_call(n=2, temperature=0.1))
    assert len(sampler._plain._copies) == 2  # type: ignore[union-attr]
    assert model.seen[-1]["temperature"] == 0.1


class NChat(BaseChatModel):
    """Names ``n`` in ``_generate`` and returns n generations per conversation."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "n-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        *,
        n: int = 1,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append({"n": n, "temperature": temperature, **kwargs})
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(f"draw {i}")) for i in range(n)]
        )


def test_a_model_that_names_n_gets_n_in_one_request() -> None:
    model = NChat()
    out = Sampler(model).sample(_call(n=4, prompts=2))
    assert [len(t or []) for t in out.texts] == [4, 4]
    assert model.seen == [{"n": 4, "temperature": 0.7}] * 2  # n as n; top_p/top_k unnamed


def test_routes_of_known_models() -> None:
    assert route_for(DeafChat()).how == "no way"
    assert not route_for(DeafChat()).takes("temperature")
    keyword = route_for(KeywordChat())
    assert keyword.keywords == {"temperature", "top_p", "top_k", "max_tokens"}
    assert not keyword.native_n
    fields = route_for(FieldChat())
    assert dict(fields.fields) == {
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "max_tokens": "num_predict",
    }


def test_whole_search_sends_temperature_to_generator_and_verify_temperature_to_discriminator() -> (
    None
):
    gen, disc = RecordingChatty(style="plain"), RecordingChatty(style="plain")
    config = RStarConfig(
        num_rollouts=3, num_votes=2, seed=0, temperature=0.8, verify_temperature=0.3, top_k=40
    )
    result = RStarChain(generator=gen, discriminator=disc, config=config).invoke(APPLES_QUESTION)
    assert result.candidates and result.verification.ran
    assert gen.params_seen and disc.params_seen
    assert {s["temperature"] for s in gen.params_seen} == {0.8}
    assert {s["temperature"] for s in disc.params_seen} == {0.3}
    assert all(s["top_k"] == 40 and s["max_tokens"] for s in gen.params_seen + disc.params_seen)


# -- real integrations, their HTTP request recorded ----------------------------------------


class _Recorder:
    def __init__(self, respond: Any) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.respond = respond
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Any:
        body = json.loads(request.content or b"{}")
        with self.lock:
            self.bodies.append(body)
            k = len(self.bodies)
        return self.respond(body, k)


def test_chat_ollama_gets_options_and_keeps_its_own() -> None:
    ollama = pytest.importorskip("langchain_ollama")

    def respond(body: dict[str, Any], k: int) -> httpx.Response:
        line = {
            "model": body["model"],
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": f"draw {k}"},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 7,
            "eval_count": 3,
        }
        return httpx.Response(200, text=json.dumps(line) + "\n")

    rec = _Recorder(respond)
    model = ollama.ChatOllama(
        model="qwen2.5:1.5b",
        temperature=0.0,
        num_ctx=2048,
        client_kwargs={"transport": httpx.MockTransport(rec)},
    )
    out = Sampler(model).sample(_call(n=3))
    assert out.texts[0] is not None and len(set(out.texts[0])) == 3
    assert len(rec.bodies) == 3
    for body in rec.bodies:
        options = body["options"]
        assert options["temperature"] == 0.7 and options["top_p"] == 0.9
        assert options["top_k"] == 40 and options["num_predict"] == 64
        assert options["num_ctx"] == 2048  # the user's own option survives
        assert "seed" not in options or options["seed"] is None


def test_chat_anthropic_gets_call_keywords() -> None:
    anthropic_lc = pytest.importorskip("langchain_anthropic")
    anthropic = pytest.importorskip("anthropic")
    # the anthropic SDK has its own copy of httpx
    transport_lib: Any = pytest.importorskip("httpx2") if _sdk_uses_httpx2() else httpx

    def respond(body: dict[str, Any], k: int) -> Any:
        return transport_lib.Response(
            200,
            json={
                "id": f"msg_{k}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": f"draw {k}"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 7, "output_tokens": 3},
            },
        )

    rec = _Recorder(respond)
    model = anthropic_lc.ChatAnthropic(model="claude-test", api_key="k", temperature=0.0)
    model.__dict__["_client"] = anthropic.Anthropic(
        api_key="k", http_client=transport_lib.Client(transport=transport_lib.MockTransport(rec))
    )
    out = Sampler(model).sample(_call(n=2))
    assert out.texts[0] is not None and len(out.texts[0]) == 2
    assert len(rec.bodies) == 2
    for body in rec.bodies:
        assert (body["temperature"], body["top_k"], body["max_tokens"]) == (0.7, 40, 64)
        # Claude models take temperature or top_p, not both (Sonnet 4.5 and later answer
        # 400 to both): top_p is withheld, and the route says so
        assert "top_p" not in body
    assert "top_p withheld" in Sampler(model)._plain.route.how


def test_claude_behind_other_clients_gets_no_top_p() -> None:
    """Claude through an OpenAI-compatible gateway (the model id names it): no top_p; any
    other model on the same client keeps it."""
    from langchain_rstar.sampling.plain import route_for

    claude = ChatOpenAI(model="anthropic/claude-sonnet-4.5", api_key="k", base_url="http://x/v1")
    other = ChatOpenAI(model="gpt-4o-mini", api_key="k", base_url="http://x/v1")
    assert not route_for(claude).takes("top_p") and route_for(claude).takes("temperature")
    assert route_for(claude).withheld == {"top_p"}
    assert route_for(other).takes("top_p") and not route_for(other).withheld
    # the langchain_openai request itself (its own path, not the plain route)
    call = _call(n=2)
    assert "top_p" not in Sampler(claude)._kwargs(call, 2)
    assert Sampler(other)._kwargs(call, 2)["top_p"] == call.params["top_p"]


def _sdk_uses_httpx2() -> bool:
    import anthropic._base_client as base

    return "httpx2" in getattr(base, "__dict__", {}) or hasattr(base, "httpx2")


class VendorChat(ChatOpenAI):
    """A third-party chat model built on langchain_openai's client (like ChatDeepSeek)."""


VendorChat.__module__ = "langchain_vendor.chat_models"


def _openai_respond(body: dict[str, Any], k: int) -> httpx.Response:
    n = int(body.get("n") or 1)
    return httpx.Response(
        200,
        json={
            "id": f"c{k}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": f"draw {k}.{i}"},
                    "finish_reason": "stop",
                }
                for i in range(n)
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3 * n, "total_tokens": 7 + 3 * n},
        },
    )


def test_openai_derived_chat_model_gets_n_and_sampling_keywords() -> None:
    rec = _Recorder(_openai_respond)
    model = VendorChat(
        model="vendor-1",
        api_key="k",
        base_url="https://vendor.example/v1",
        temperature=0.0,
        http_client=httpx.Client(transport=httpx.MockTransport(rec)),
    )
    assert route_for(model).native_n
    out = Sampler(model).sample(_call(n=3, prompts=2))
    assert [len(t or []) for t in out.texts] == [3, 3]
    assert len(rec.bodies) == 2  # n went as n: one request per prompt
    for body in rec.bodies:
        assert body["n"] == 3
        assert (body["temperature"], body["top_p"]) == (0.7, 0.9)
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 64
        assert "seed" not in body
    assert out.usage["prompt_tokens"] == 14 and out.usage["completion_tokens"] == 18


# -- identical votes ----------------------------------------------------------------------


def _warnings(result: Any) -> list[dict[str, Any]]:
    return [e for e in result.errors if e.get("kind") == "degenerate_votes"]


def test_identical_votes_from_a_model_without_temperature_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = RStarConfig(num_rollouts=2, num_votes=3, seed=0)
    with caplog.at_level(logging.WARNING, logger="langchain_rstar"):
        result = RStarChain(generator=DeafChat(), config=config).invoke(APPLES_QUESTION)
    warned = _warnings(result)
    assert len(warned) == 1  # once per search
    assert warned[0]["warning"] is True and warned[0]["recovered"] is True
    assert "takes no temperature" in warned[0]["error"]
    assert any("takes no temperature" in r.getMessage() for r in caplog.records)
    assert result.usage.failed_calls == 0


def test_identical_votes_although_temperature_was_sent_warn() -> None:
    config = RStarConfig(num_rollouts=8, num_votes=3, seed=0)
    model = FieldChat(ignore_temperature=True)
    result = RStarChain(generator=model, config=config).invoke(APPLES_QUESTION)
    warned = _warnings(result)
    assert len(warned) == 1 and "seems to ignore it" in warned[0]["error"]


@pytest.mark.parametrize("model", [FieldChat(), KeywordChat()], ids=["fields", "keywords"])
def test_no_warning_when_votes_differ(model: BaseChatModel) -> None:
    config = RStarConfig(num_rollouts=2, num_votes=3, seed=0)
    result = RStarChain(generator=model, config=config).invoke(APPLES_QUESTION)
    assert not _warnings(result)


def test_no_warning_when_the_search_itself_asks_for_temperature_zero() -> None:
    config = RStarConfig(num_rollouts=2, num_votes=3, seed=0, temperature=0.0)
    result = RStarChain(generator=DeafChat(), config=config).invoke(APPLES_QUESTION)
    assert not _warnings(result)


# -- concurrency --------------------------------------------------------------------------

DELAY = 0.25


class SlowChat(BaseChatModel):
    """Each request takes DELAY seconds; counts requests in flight."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _now: int = PrivateAttr(default=0)
    peak: int = 0

    @property
    def _llm_type(self) -> str:
        return "slow-chat"

    def _enter(self) -> None:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)

    def _leave(self) -> None:
        with self._lock:
            self._now -= 1

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._enter()
        time.sleep(DELAY)
        self._leave()
        return _reply("ok")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._enter()
        await asyncio.sleep(DELAY)
        self._leave()
        return _reply("ok")


class SlowLLM(LLM):
    """A completion model answering one prompt per ``_call`` in DELAY seconds."""

    calls: list[float] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "slow-llm"

    def _call(
        self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> str:
        time.sleep(DELAY)
        self.calls.append(time.time())
        return "ok"


@pytest.mark.parametrize("make", [SlowChat, SlowLLM], ids=["chat", "llm"])
def test_votes_of_a_plain_model_run_concurrently_in_sync(make: Any) -> None:
    sampler = Sampler(make())
    start = time.perf_counter()
    out = sampler.sample(_call(n=6))
    elapsed = time.perf_counter() - start
    assert out.texts[0] == ["ok"] * 6
    assert elapsed < 3 * DELAY, f"6 requests of {DELAY} s took {elapsed:.2f} s (one by one: 1.5 s)"


@pytest.mark.parametrize("make", [SlowChat, SlowLLM], ids=["chat", "llm"])
async def test_votes_of_a_plain_model_run_concurrently_in_async(make: Any) -> None:
    sampler = Sampler(make())
    start = time.perf_counter()
    out = await sampler.asample(_call(n=6))
    elapsed = time.perf_counter() - start
    assert out.texts[0] == ["ok"] * 6
    assert elapsed < 3 * DELAY, f"6 requests of {DELAY} s took {elapsed:.2f} s (one by one: 1.5 s)"


def test_concurrency_is_bounded() -> None:
    model = SlowChat()
    sampler = Sampler(model, max_concurrency=2)
    start = time.perf_counter()
    out = sampler.sample(_call(n=4))
    elapsed = time.perf_counter() - start
    assert out.texts[0] == ["ok"] * 4
    assert model.peak == 2
    assert elapsed >= 2 * DELAY * 0.9


def test_eval_does_not_count_the_warning_as_a_failed_call() -> None:
    """``rstar eval``'s ``call_errors`` counts failed model calls; a degenerate-votes
    warning (every call answered) is not one, in rstar and in the baselines."""
    from langchain_rstar.eval.baselines import SelfConsistency
    from langchain_rstar.eval.harness import RStarMethod

    config = RStarConfig(num_rollouts=2, num_votes=3, seed=0)
    method = RStarMethod(DeafChat(), config, verify=False)
    result = method.chain.invoke(APPLES_QUESTION)
    assert _warnings(result)  # the search did record the warning
    assert method.solve(APPLES_QUESTION).call_errors == 0
    sc = SelfConsistency(DeafChat(), config.model_copy(update={"num_votes": 4}))
    assert sc.solve(APPLES_QUESTION).call_errors == 0


def test_cli_prints_the_warning_apart_from_failed_calls(capsys: pytest.CaptureFixture) -> None:
    from langchain_rstar.cli import _print_result

    config = RStarConfig(num_rollouts=2, num_votes=3, seed=0)
    result = RStarChain(generator=DeafChat(), config=config).invoke(APPLES_QUESTION)
    _print_result(result, "deaf-chat")
    out = capsys.readouterr().out
    assert "Warning: degenerate votes" in out
    assert "model call(s) failed" not in out
