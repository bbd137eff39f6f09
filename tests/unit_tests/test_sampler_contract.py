"""The sampler's boundary with the model (#19.2, #19.6, #19.7, #19.10).

Whatever a backend returns -- lone surrogates, fewer samples than asked, token counts as
strings, None instead of a result -- the sampler hands the search clean text and error
records; it never raises (except :class:`BackendDeadError`, by design). And no model call
waits forever: without a ``call_timeout`` each call gets one derived from its ``max_tokens``,
and a search's ``max_wall_seconds`` cuts the calls in flight.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult

import langchain_rstar.config as config_mod
from langchain_rstar import RStarBackendError, RStarChain, RStarConfig, RStarResult
from langchain_rstar.config import default_call_timeout
from langchain_rstar.eval.harness import build_method, run_evaluation
from langchain_rstar.sampling.sampler import SCOPE_KEY, Sampler
from langchain_rstar.sampling.types import SampleCall
from langchain_rstar.search._untraced import QUIET_KEY
from langchain_rstar.testing import ScriptedLLM
from langchain_rstar.testing.faults import FaultyLLM
from scripts import QUESTION, apples_llm

FAST = {"num_rollouts": 4, "retry_backoff": 0.0}
SURROGATE = "\ud800"


def _call(n: int = 3, **kw: Any) -> SampleCall:
    return SampleCall(prompts=["Question: x\nStep 1:"], n=n, stop=["\n\n"], **kw)


class _Raw(BaseLLM):
    """A backend that returns whatever ``reply(prompts, kwargs)`` builds, even None."""

    reply: Any

    @property
    def _llm_type(self) -> str:
        return "raw"

    def _generate(self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any):
        return self.reply(prompts, kw)

    async def _agenerate(
        self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any
    ):
        return self.reply(prompts, kw)


def _both(sampler: Sampler, call: SampleCall, config: dict[str, Any] | None = None) -> list[Any]:
    return [sampler.sample(call, config), asyncio.run(sampler.asample(call, config))]


QUIET = {"configurable": {QUIET_KEY: True}}


# -- #19.2: lone surrogates are cleaned at the boundary -----------------------------------------


def test_surrogates_in_model_text_are_replaced_at_the_sampler() -> None:
    llm = ScriptedLLM(default=[f" 12 {SURROGATE}apples\udfff. The answer is 12."])
    for outcome in _both(Sampler(llm), _call()):
        for texts in outcome.texts:
            for text in texts:
                text.encode("utf-8")  # would raise on a lone surrogate
                assert "\ufffd" in text and "The answer is 12." in text


def test_a_search_over_surrogates_serialises_and_renders(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        rules=[(r"Step \d+:$", [f" 3 * 4 = 12.{SURROGATE} The answer is 12."])],
        default=[" The answer is 12.\udc80"],
    )
    result = RStarChain(generator=llm, config=RStarConfig(**FAST)).invoke("What is 3 times 4?")
    assert result.answer == "12"
    dumped = result.model_dump_json()
    dumped.encode("utf-8")
    assert RStarResult.model_validate_json(dumped).answer == "12"
    page = result.save_html(tmp_path / "tree.html")
    assert page.read_text(encoding="utf-8")


def test_eval_records_with_surrogates_are_written_and_resumed(tmp_path: Path) -> None:
    """Before: UnicodeEncodeError when the record was written; the rerun hit it again."""
    llm = ScriptedLLM(default=[f" 3 + 4 = 7.{SURROGATE} The answer is 7."])
    exs = [
        {"id": f"q{i}", "problem": "What is 3 plus 4?", "solution": "#### 7", "task": "arithmetic"}
        for i in range(2)
    ]
    out = tmp_path / "r.jsonl"
    for method in ("cot", "rstar"):
        m = build_method(method, llm, config=RStarConfig(**FAST, max_retries=0))
        path = out.with_name(f"{method}.jsonl")
        summary = run_evaluation(exs, m, path, dataset="toy", progress=False)
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(records) == 2 and all(r["error"] is None for r in records)
        assert all(r["correct"] for r in records), records
        assert summary.written == 2
        again = run_evaluation(exs, m, path, dataset="toy", progress=False)
        assert again.written == 0  # resumed: nothing redone, nothing duplicated
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2


# -- #19.6: fewer samples than asked ------------------------------------------------------------


def test_a_backend_returning_fewer_samples_is_recorded_and_counted_over_n() -> None:
    one = _Raw(reply=lambda prompts, kw: LLMResult(generations=[[Generation(text=" 7")]]))
    sampler = Sampler(one)
    sampler.mode = "native"  # it claims to honour n
    for outcome in _both(sampler, _call(n=10)):
        assert len(outcome.texts[0]) == 10  # padded: the missing samples are unanswered
        assert outcome.texts[0][0] == " 7" and outcome.texts[0][1:] == [""] * 9
        short = [e for e in outcome.errors if e["kind"] == "short_samples"]
        assert len(short) == 1 and short[0]["asked"] == 10 and short[0]["got"] == 1
        assert "1 of 10" in short[0]["error"]


def test_short_samples_give_confidence_over_the_number_asked() -> None:
    """A backend that ignores n (1 of 10): the vote's confidence is 1/10, not 1.0."""

    class _IgnoresN(ScriptedLLM):
        def samples_for(self, prompt: str, n: int) -> list[str]:
            return super().samples_for(prompt, 1)

    llm = _IgnoresN(default=[" The answer is 7."])
    result = RStarChain(
        generator=llm, config=RStarConfig.fast(num_rollouts=2, num_votes=10)
    ).invoke("What is 3 plus 4?")
    assert any(e["kind"] == "short_samples" for e in result.errors)
    voted = [n for n in result.tree.values() if n.get("answer") == "7"]
    assert voted
    for node in voted:
        # one sample of the num_votes (10) asked, or of the num_a1_steps (3) for A1
        asked = 3 if node["action"] == "A1" else 10
        assert node["confidence"] == pytest.approx(1 / asked), node


# -- #19.7: the sampler never raises ------------------------------------------------------------


@pytest.mark.parametrize(
    "token_usage",
    [
        {"prompt_tokens": "12", "completion_tokens": "lots"},
        {"prompt_tokens": "abc", "completion_tokens": None},
        {"prompt_tokens": [1], "completion_tokens": {"x": 1}},
        {"prompt_tokens": float("nan"), "completion_tokens": -5},
        "not a mapping",
    ],
)
def test_malformed_token_counts_do_not_raise(token_usage: Any) -> None:
    def reply(prompts: list[str], kw: Any) -> LLMResult:
        gens = [[Generation(text=" The answer is 7.")] * kw.get("n", 1) for _ in prompts]
        return LLMResult(generations=gens, llm_output={"token_usage": token_usage})

    sampler = Sampler(_Raw(reply=reply))
    for config in (None, QUIET):
        for outcome in _both(sampler, _call(), config):
            assert outcome.texts[0]
            assert all(v == v and v >= 0 for v in outcome.usage.values())  # no NaN, no < 0
            assert outcome.usage["completion_tokens"] >= 0


@pytest.mark.parametrize(
    "bad",
    [
        lambda p, kw: None,
        lambda p, kw: "text",
        lambda p, kw: LLMResult.model_construct(generations=None),
        lambda p, kw: LLMResult.model_construct(generations=[[None]] * len(p)),
        lambda p, kw: LLMResult(generations=[[None]] * len(p)),  # type: ignore[list-item]
    ],
)
def test_a_malformed_result_is_a_failed_call_not_an_exception(bad: Any) -> None:
    sampler = Sampler(_Raw(reply=bad), max_retries=1, retry_backoff=0.0, dead_after=100)
    for config in (None, QUIET, {"configurable": {SCOPE_KEY: "s", QUIET_KEY: True}}):
        for outcome in _both(sampler, _call(), config):
            assert outcome.texts == [None]
            assert outcome.errors and all(e["kind"] == "llm_call" for e in outcome.errors)


# -- #19.10: no unbounded waits -----------------------------------------------------------------


def test_the_default_call_timeout_is_finite_and_documented() -> None:
    assert RStarConfig().call_timeout is None
    assert default_call_timeout(256) == 60.0 + 2.0 * 256
    assert default_call_timeout(128) < default_call_timeout(256)
    doc = RStarConfig.model_fields["call_timeout"].description or ""
    assert "60 s + 2 s per" in doc and "572" in doc


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> float:
    """Shrink the derived timeout (same formula) so a hung call is given up in ~0.15 s."""
    monkeypatch.setattr(config_mod, "CALL_TIMEOUT_BASE_S", 0.02)
    monkeypatch.setattr(config_mod, "CALL_TIMEOUT_PER_TOKEN_S", 0.0005)
    return default_call_timeout(RStarConfig().max_tokens)


@pytest.mark.parametrize("use_async", [False, True])
def test_a_backend_hanging_forever_ends_the_search_within_the_bound(
    short_timeouts: float, use_async: bool
) -> None:
    """Default settings, a backend that stops answering mid-search: the search raises with
    the partial tree within dead_after x (max_retries + 1) x timeout + backoffs."""
    llm = FaultyLLM(llm=apples_llm(), hang_after=6)
    config = RStarConfig(num_rollouts=16)
    chain = RStarChain(generator=llm, config=config)
    bound = config.dead_after * (
        (config.max_retries + 1) * short_timeouts
        + sum(config.retry_backoff * 2**i for i in range(config.max_retries))
    )
    start = time.monotonic()
    try:
        with pytest.raises(RStarBackendError) as info:
            if use_async:
                asyncio.run(chain.ainvoke(QUESTION))
            else:
                chain.invoke(QUESTION)
    finally:
        llm.release()
    elapsed = time.monotonic() - start
    assert elapsed < bound + 2.0, f"{elapsed:.1f}s for a bound of {bound:.1f}s"
    partial = info.value.partial
    assert partial is not None and len(partial.tree) > 1
    assert any("TimeoutError" in e["error"] for e in partial.errors)


@pytest.mark.parametrize("profile", ["fast", "paper"])
@pytest.mark.parametrize("use_async", [False, True])
def test_max_wall_seconds_cuts_calls_in_flight(use_async: bool, profile: str) -> None:
    """No per-call limit at all, a hung backend, max_wall_seconds=1: the partial result
    comes back at the deadline with limits_hit, not after the hung calls. In ``paper`` the
    generator verifies by default; a spent wall budget skips verification (which would
    otherwise wait on the hung model without bound)."""
    llm = FaultyLLM(llm=apples_llm(), hang_after=6)
    config = RStarConfig(
        profile=profile, num_rollouts=16, call_timeout=float("inf"), max_wall_seconds=1.0
    )
    chain = RStarChain(generator=llm, config=config)
    start = time.monotonic()
    try:
        if use_async:
            result = asyncio.run(chain.ainvoke(QUESTION))
        else:
            result = chain.invoke(QUESTION)
    finally:
        llm.release()
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 3.0
    assert result.stop_reason == "limit" and result.limits_hit == ["max_wall_seconds"]
    assert len(result.tree) > 1
    cut = [e for e in result.errors if e["kind"] == "wall_limit"]
    assert cut and all("max_wall_seconds" in e["error"] for e in cut)
    assert result.usage.failed_calls == 0  # abandoned calls are not backend failures
    if profile == "paper" and result.candidates:
        assert result.verification.skipped and not result.verification.ran
        assert "max_wall_seconds" in result.verification.reason


def test_after_the_wall_deadline_no_call_is_sent() -> None:
    llm = ScriptedLLM(default=[" The answer is 7."])
    sampler = Sampler(llm)
    outcome = sampler.sample(_call(deadline=time.time() - 1.0))
    assert outcome.texts == [None] and not llm.calls
    assert [e["kind"] for e in outcome.errors] == ["wall_limit"]
    assert sampler.consecutive_failures() == 0


def test_an_http_clients_own_timeout_is_waited_for() -> None:
    """The derived default never gives up before the HTTP client does (docs/scaleout.md)."""
    from langchain_openai import OpenAI

    client = OpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1", timeout=630)
    call = _call(params={"max_tokens": 16})
    assert Sampler(client)._timeout_for(call) == 635.0
    assert Sampler(client, call_timeout=10.0)._timeout_for(call) == 10.0  # explicit wins
    local = ScriptedLLM()
    assert Sampler(local)._timeout_for(call) == default_call_timeout(16)
    assert Sampler(local, call_timeout=float("inf"))._timeout_for(call) is None
    soon = _call(params={"max_tokens": 16}, deadline=time.time() + 2.0)
    assert 0 < (Sampler(local)._timeout_for(soon) or 0) <= 2.0
