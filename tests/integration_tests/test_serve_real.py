"""``rstar serve`` over the real embedded model (reached through ``vllm serve``).

Two real servers, both started and always stopped here: ``vllm serve`` with the embedded
Gemma 3 270M (see ``_server.py``), and the ``rstar serve`` command in front of it
(``--backend openai --base-url``). The official ``openai`` client then sends one streamed
chat request, one completion, a bad request and 8 concurrent 1-rollout requests; the test
prints the wall time of the 8 against the sum of their times (concurrent requests batch
on the engine, so the wall time is well under the sum).

Run (one engine at a time machine-wide)::

    engine-slot python -m pytest tests/integration_tests/test_serve_real.py -m integration -s
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import SMALL_BUDGET, free_port, start_server, stop_server

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT_S = float(os.environ.get("RSTAR_TEST_SERVER_TIMEOUT", "1200"))
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SEARCH = {
    **SMALL_BUDGET,
    "num_rollouts": 1,
    "num_votes": 3,
    "num_a1_steps": 2,
    "num_subquestions": 2,
    "max_tokens": 48,
    "num_masks": 1,
}


@pytest.fixture(scope="module")
def vllm_url(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("vllm")
    pytest.importorskip("langchain_openai")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    proc = start_server(model_dir, port, log, STARTUP_TIMEOUT_S)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def rstar_url(
    vllm_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``rstar serve`` (the real command) in front of the vLLM server."""
    pytest.importorskip("fastapi")
    pytest.importorskip("openai")
    port = free_port()
    log = tmp_path_factory.mktemp("rstar_serve") / "serve.log"
    cmd = [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "serve",
        "--backend",
        "openai",
        "--model",
        str(model_dir),
        "--base-url",
        vllm_url,
        "--served-model-name",
        "rstar-gemma",
        "--port",
        str(port),
        "--config",
        json.dumps(SEARCH),
    ]
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rstar serve exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"rstar serve not healthy:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_chat_stream_and_completion(rstar_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=rstar_url, api_key="none", max_retries=0, timeout=600)
    assert [m.id for m in client.models.list()] == ["rstar-gemma"]
    reasoning, content = [], ""
    start = time.perf_counter()
    for chunk in client.chat.completions.create(
        model="rstar-gemma", messages=[{"role": "user", "content": QUESTION}], stream=True
    ):
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                reasoning.append(extra["reasoning_content"])
            content += choice.delta.content or ""
    print(f"\nchat (streamed, {time.perf_counter() - start:.1f} s): {reasoning} -> {content!r}")
    assert len(reasoning) == 1 and "Rollout 1/1 done" in reasoning[0]
    assert content.strip()
    reply = client.completions.create(model="rstar-gemma", prompt=QUESTION)
    rstar = reply.model_extra["rstar"]
    print(f"completion: {reply.choices[0].text!r}; usage {reply.usage}")
    assert rstar["usage"]["rollouts"] == 1 and reply.usage.completion_tokens > 0
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="rstar-gemma", messages=[])


def test_eight_concurrent_requests(rstar_url: str) -> None:
    import openai

    async def run() -> tuple[float, list[float], list[Any]]:
        client = openai.AsyncOpenAI(base_url=rstar_url, api_key="none", max_retries=0, timeout=900)

        async def one() -> tuple[Any, float]:
            t0 = time.perf_counter()
            reply = await client.chat.completions.create(
                model="rstar-gemma",
                messages=[{"role": "user", "content": QUESTION}],
                extra_body={"num_rollouts": 1},
            )
            return reply, time.perf_counter() - t0

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one() for _ in range(8)))
        wall = time.perf_counter() - t0
        await client.close()
        return wall, [t for _, t in out], [r for r, _ in out]

    wall, times, replies = asyncio.run(run())
    summed = sum(times)
    print(
        f"\n8 concurrent 1-rollout requests: wall {wall:.1f} s, summed {summed:.1f} s "
        f"(x{summed / wall:.1f}); answers {[r.model_extra['rstar']['answer'] for r in replies]}"
    )
    assert all(r.model_extra["rstar"]["usage"]["rollouts"] == 1 for r in replies)
    assert wall < summed / 2


def test_chat_completions_vs_completions_on_the_real_model(vllm_url: str, model_dir: Path) -> None:
    """#16.1: the same search through ChatOpenAI (chat prompts, assistant prefix continued
    with continue_final_message) and through OpenAI (completions): clean steps in both;
    tokens and answers printed side by side."""
    from langchain_openai import ChatOpenAI, OpenAI

    from langchain_rstar import RStarChain, RStarConfig
    from langchain_rstar.sampling.chat import continuation_mode

    config = RStarConfig(**{**SEARCH, "num_rollouts": 2})
    chat = ChatOpenAI(base_url=vllm_url, api_key="EMPTY", model=str(model_dir), max_retries=1)
    plain = OpenAI(base_url=vllm_url, api_key="EMPTY", model=str(model_dir), max_retries=1)
    assert continuation_mode(chat) == "continue"
    rows = []
    for label, llm in (("chat", chat), ("completions", plain)):
        result = RStarChain(generator=llm, config=config).invoke(QUESTION)
        texts = [str(n.get("text", "")) for n in result.tree.values() if n.get("type") != "root"]
        fatal = [e for e in result.errors if e.get("kind") == "backend_dead"]
        assert not fatal, fatal
        assert result.usage.completion_tokens > 0
        preambles = [t for t in texts if t.lstrip().lower().startswith(("sure", "certainly"))]
        restated = [t for t in texts if t.lstrip().startswith(("Step ", "Question:"))]
        assert not preambles and not restated, (label, preambles, restated)
        rows.append(
            f"{label:12s} answer={result.answer!s:8s} conf={result.confidence:.2f} "
            f"prompt_tok={result.usage.prompt_tokens} completion_tok="
            f"{result.usage.completion_tokens} calls={result.usage.llm_calls} "
            f"errors={len(result.errors)} steps={[s.text for s in result.trajectory]}"
        )
    print("\n" + "\n".join(rows))
