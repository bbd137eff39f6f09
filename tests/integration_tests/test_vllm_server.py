"""The served path: ``python -m vllm.entrypoints.openai.api_server`` + ``langchain_openai``.

The server is started and always stopped by ``_server.py`` (see there why as a module).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import SMALL_BUDGET, free_port, start_server, stop_server

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
        **SMALL_BUDGET,
        num_rollouts=1,
        num_votes=3,
        num_a1_steps=2,
        num_subquestions=2,
        max_tokens=48,
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


def test_rstar_eval_through_vllm_router(vllm_server: str, model_dir: Path, tmp_path: Path) -> None:
    """``rstar eval --method rstar`` through a real ``vllm-router`` in front of this module's
    ``vllm serve`` (no second engine): every record written, the router saw the session
    keys ``rstar/<question id>`` (docs/scaleout.md)."""
    import json
    import shutil
    import subprocess
    import sys

    if shutil.which("vllm-router") is None:
        pytest.skip("vllm-router not installed (pip install 'langchain-rstar[scale]')")
    tests = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(tests))
    import sim_server  # the router helpers live with the simulated replicas

    data = tmp_path / "q.jsonl"
    qs = [
        {"id": "a", "problem": "Tom has 3 apples and buys 4 more. How many now?", "solution": "7"},
        {
            "id": "b",
            "problem": "Sara has 10 pens and gives away 4. How many left?",
            "solution": "6",
        },
    ]
    data.write_text("".join(json.dumps(q) + "\n" for q in qs))
    log = tmp_path / "router.log"
    worker = vllm_server.rsplit("/v1", 1)[0]
    router, url = sim_server.start_router([worker], log, request_timeout_secs=300)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "langchain_rstar.cli", "eval", "--dataset", str(data)]
    cmd += ["--method", "rstar", "--limit", "2", "--num-rollouts", "1", "--max-tokens", "48"]
    cmd += ["--out", str(out), "--backend", "openai", "--base-url", url + "/v1"]
    cmd += ["--model", str(model_dir), "--concurrency", "2", "--no-progress"]
    cmd += ["--request-timeout", "630", "--config", json.dumps(SMALL_BUDGET)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    finally:
        sim_server.stop(router)
    assert done.returncode == 0, done.stderr[-3000:]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in recs) == ["a", "b"]
    assert all(r["usage"]["llm_calls"] > 0 and r["usage"]["completion_tokens"] > 0 for r in recs)
    text = log.read_text(errors="replace")
    assert "rstar/a" in text and "rstar/b" in text  # the router routed by session key
