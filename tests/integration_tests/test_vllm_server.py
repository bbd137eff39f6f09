"""The served path: ``python -m vllm.entrypoints.openai.api_server`` + ``langchain_openai``.

The server is started and always stopped by ``_server.py`` (see there why as a module).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import free_port, start_server, stop_server

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT_S = float(os.environ.get("RSTAR_TEST_SERVER_TIMEOUT", "1200"))


@pytest.fixture(scope="module")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start an OpenAI-compatible vLLM server on a free port; yield its base URL."""
    pytest.importorskip("vllm")
    pytest.importorskip("langchain_openai")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    proc = start_server(model_dir, port, log, STARTUP_TIMEOUT_S)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(proc)


def _client(base_url: str, model_dir: Path, **kwargs: Any) -> Any:
    from langchain_openai import OpenAI

    return OpenAI(
        base_url=base_url,
        api_key="EMPTY",
        model=str(model_dir),
        extra_body={"top_k": 40},
        **kwargs,
    )


def test_server_returns_n_samples(vllm_server: str, model_dir: Path) -> None:
    llm = _client(vllm_server, model_dir, n=3, max_tokens=12, temperature=1.0)
    res = llm.generate(["Question: What is 2 + 3?\nAnswer:", "Count: 1, 2, 3,"])
    assert [len(g) for g in res.generations] == [3, 3]
    assert len({g.text for g in res.generations[0]}) > 1
    usage = res.llm_output["token_usage"]
    assert usage["completion_tokens"] > 0


def test_server_stop_strings(vllm_server: str, model_dir: Path) -> None:
    llm = _client(vllm_server, model_dir, n=3, max_tokens=24, temperature=0.3)
    res = llm.generate(["Count: 1, 2, 3, 4, 5, 6,"], stop=[","])
    assert len(res.generations[0]) == 3
    for g in res.generations[0]:
        assert "," not in g.text


def test_search_through_the_server(vllm_server: str, model_dir: Path) -> None:
    from langchain_rstar import RStarChain, RStarConfig

    llm = _client(vllm_server, model_dir, max_tokens=48)
    config = RStarConfig(
        num_rollouts=1, num_votes=3, num_a1_steps=2, num_subquestions=2, max_tokens=48
    )
    result = RStarChain(generator=llm, config=config).invoke(
        "Tom has 3 apples and buys 4 more. How many apples does he have?"
    )
    assert result.usage.rollouts == 1 and len(result.tree) > 1
    assert result.usage.completion_tokens > 0 and not result.usage.tokens_estimated
    assert not [e for e in result.errors if e.get("fatal")]
    # n samples per prompt came back from the server (A2 voted over num_votes samples)
    a2 = result.tree.get("0/A2.0")
    assert a2 is not None and a2["samples"] == 3
