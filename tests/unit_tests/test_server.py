"""``rstar serve``: the official ``openai`` client against the app on a scripted backend.

The app runs under uvicorn in a thread on a free port of 127.0.0.1 (real HTTP, no mocks).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from langchain_rstar import cli  # noqa: E402
from langchain_rstar.chat_model import ChatRStar  # noqa: E402
from langchain_rstar.server import ServerThread, create_app  # noqa: E402
from langchain_rstar.testing import APPLES_QUESTION, apples_llm  # noqa: E402
from langchain_rstar.testing.faults import FaultyLLM  # noqa: E402

NAME = "rstar-scripted"
LATENCY = 0.02


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    # 6 rollouts: the apples script's right path (10) is the majority from there on in `paper`
    good = ChatRStar(generator=apples_llm(latency=LATENCY), config={"num_rollouts": 6}, model=NAME)
    broken = ChatRStar(
        generator=FaultyLLM(llm=apples_llm(), fail_after=0),
        config={"num_rollouts": 2, "max_retries": 0, "retry_backoff": 0.0},
        model="rstar-broken",
    )
    with ServerThread(create_app({NAME: good, "rstar-broken": broken})) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Any:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)


def ask(text: str = APPLES_QUESTION) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be careful."}, {"role": "user", "content": text}]


def test_health_and_models(server: ServerThread, client: Any) -> None:
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert sorted(m.id for m in client.models.list()) == ["rstar-broken", NAME]


def test_chat_completion(client: Any) -> None:
    reply = client.chat.completions.create(model=NAME, messages=ask())
    assert reply.object == "chat.completion" and reply.model == NAME
    content = reply.choices[0].message.content
    assert content.startswith(("Step 1:", "Sub-question 1:")) and content.endswith(
        "The answer is 10."
    )
    assert reply.choices[0].finish_reason == "stop"
    rstar = reply.model_extra["rstar"]
    assert rstar["answer"] == "10" and rstar["usage"]["rollouts"] == 6
    assert reply.usage.completion_tokens == rstar["usage"]["completion_tokens"] > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_extra_body_num_rollouts(client: Any) -> None:
    reply = client.chat.completions.create(
        model=NAME, messages=ask(), extra_body={"num_rollouts": 1}
    )
    assert reply.model_extra["rstar"]["usage"]["rollouts"] == 1
    reply = client.chat.completions.create(
        model=NAME, messages=ask(), extra_body={"rstar_config": {"num_rollouts": 2}}
    )
    assert reply.model_extra["rstar"]["usage"]["rollouts"] == 2


def test_chat_stream_sends_progress_then_answer(client: Any) -> None:
    stream = client.chat.completions.create(
        model=NAME, messages=ask(), stream=True, stream_options={"include_usage": True}
    )
    reasoning: list[str] = []
    content = ""
    usage = None
    order: list[str] = []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                reasoning.append(extra["reasoning_content"])
                order.append("r")
            if choice.delta.content:
                content += choice.delta.content
                order.append("c")
    assert len(reasoning) == 6 and "Rollout 6/6 done: best answer so far 10" in reasoning[-1]
    assert order == ["r"] * 6 + ["c"]
    assert content.endswith("The answer is 10.")
    assert usage is not None and usage.completion_tokens > 0


def test_completions_plain_and_streaming(client: Any) -> None:
    reply = client.completions.create(model=NAME, prompt=APPLES_QUESTION)
    assert reply.object == "text_completion"
    assert reply.choices[0].text.endswith("The answer is 10.")
    chunks = list(client.completions.create(model=NAME, prompt=APPLES_QUESTION, stream=True))
    progress = [c for c in chunks if (c.choices[0].model_extra or {}).get("reasoning_content")]
    assert len(progress) == 6
    assert "".join(c.choices[0].text for c in chunks).endswith("The answer is 10.")


@pytest.mark.parametrize(
    ("kwargs", "status", "match"),
    [
        ({"model": "rstar-nope", "messages": ask()}, 404, "does not exist"),
        ({"model": NAME, "messages": []}, 400, "non-empty"),
        ({"model": NAME, "messages": [{"role": "system", "content": "hi"}]}, 400, "user message"),
        ({"model": NAME, "messages": ask("  ")}, 400, "no text"),
        ({"model": NAME, "messages": ask(), "n": 2}, 400, "n=1"),
        ({"model": NAME, "messages": ask(), "extra_body": {"num_rollouts": 0}}, 400, "between"),
        ({"model": NAME, "messages": ask(), "extra_body": {"num_rollouts": "x"}}, 400, "integer"),
        ({"model": NAME, "messages": ask(), "extra_body": {"profile": "turbo"}}, 400, "profile"),
        (
            {"model": NAME, "messages": ask(), "extra_body": {"rstar_config": {"top_k": 0}}},
            400,
            "top_k",
        ),
        ({"model": NAME, "messages": ask(), "extra_body": {"bogus": 1}}, 400, "bogus"),
        (
            {"model": NAME, "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "messages",
        ),
    ],
)
def test_bad_requests_get_4xx_with_openai_error_body(
    client: Any, kwargs: dict[str, Any], status: int, match: str
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**kwargs)
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and match in body["message"]
    assert body["type"] == "invalid_request_error"


def test_bad_json_and_unknown_route(server: ServerThread) -> None:
    r = httpx.post(server.url + "/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


def test_backend_failure_is_5xx_and_server_stays_up(client: Any) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="rstar-broken", messages=ask())
    body = info.value.body
    assert body["type"] == "server_error" and body["code"] == "backend_error"
    assert "stopped answering" in body["message"]
    # streamed: the error arrives in the stream
    with pytest.raises(openai.APIError, match="stopped answering"):
        list(client.chat.completions.create(model="rstar-broken", messages=ask(), stream=True))
    # ... and the server still answers
    reply = client.chat.completions.create(model=NAME, messages=ask())
    assert reply.choices[0].message.content.endswith("The answer is 10.")


async def test_eight_concurrent_requests_run_concurrently(server: ServerThread) -> None:
    aclient = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)

    async def one() -> tuple[Any, float]:
        start = time.perf_counter()
        reply = await aclient.chat.completions.create(
            model=NAME, messages=ask(), extra_body={"num_rollouts": 4}
        )
        return reply, time.perf_counter() - start

    start = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(8)))
    wall = time.perf_counter() - start
    summed = sum(t for _, t in results)
    assert all(r.choices[0].message.content.endswith("The answer is 10.") for r, _ in results)
    # Each search sleeps LATENCY per model call (~15+ calls); run one after another, the
    # wall time would be the sum of the eight.
    assert wall < summed / 2.5, (wall, summed)
    await aclient.close()


def test_cli_serve_builds_the_served_model(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(models: Any, **kwargs: Any) -> None:
        seen["models"], seen["kwargs"] = models, kwargs

    import langchain_rstar.server as server_mod

    monkeypatch.setattr(server_mod, "serve", fake_serve)
    code = cli.main(["serve", "--scripted", "--num-rollouts", "2", "--port", "9999"])
    assert code == cli.EXIT_OK
    chat = seen["models"]
    assert isinstance(chat, ChatRStar) and chat.model_name == "rstar-scripted"
    assert chat.rstar_chain.config.num_rollouts == 2
    assert seen["kwargs"]["host"] == "127.0.0.1" and seen["kwargs"]["port"] == 9999
    assert cli.main(["serve", "--scripted", "--port", "70000"]) == cli.EXIT_USAGE


def test_served_name() -> None:
    ns = argparse.Namespace
    assert cli.served_name(ns(model="google/gemma-3-270m", scripted=False)) == (
        "rstar-google/gemma-3-270m"
    )
    assert cli.served_name(ns(model=None, scripted=False)) == "rstar-gemma-3-270m"
    assert cli.served_name(ns(served_model_name="mine", model="x")) == "mine"


def test_model_spec_goes_through_init_chat_model() -> None:
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI

    args = argparse.Namespace(
        model="openai:my-served-model",
        backend="auto",
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        request_timeout=5.0,
        scripted=False,
    )
    llm, label = cli.build_llm(args)
    assert isinstance(llm, ChatOpenAI)
    assert llm.model_name == "my-served-model"
    assert str(llm.openai_api_base) == "http://127.0.0.1:9/v1"
    assert label.startswith("openai:my-served-model")
    assert cli._provider_of("ollama:qwen2.5:1.5b") == "ollama"
    assert cli._provider_of("google/gemma-3-270m") is None
    assert cli._provider_of("nosuchprovider:x") is None
