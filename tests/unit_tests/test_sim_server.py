"""The simulated OpenAI-compatible replica (tests/sim_server.py) answers like vLLM would.

In-process (FastAPI's test client), so a broken simulator fails here in a second instead of
as a dead backend inside the router tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sim_server as sim  # noqa: E402

pytest.importorskip("fastapi")


def client(tmp_path: Path, **kw: object):  # noqa: ANN201 - TestClient
    from fastapi.testclient import TestClient

    return TestClient(sim.make_app(name="t", log=str(tmp_path / "log.jsonl"), **kw))


def test_completions_n_stop_usage_and_session_log(tmp_path: Path) -> None:
    c = client(tmp_path, base=0.0)
    body = {
        "model": "sim",
        "prompt": ["Question: Tom has 5 apples. How many?\nStep 1:"] * 2,
        "n": 3,
        "stop": ["\n"],
        "max_tokens": 50,
        "user": "u1",
    }
    r = c.post("/v1/completions", json=body, headers={"x-session-id": "k1"})
    assert r.status_code == 200
    out = r.json()
    assert [ch["index"] for ch in out["choices"]] == list(range(6))
    texts = [ch["text"] for ch in out["choices"]]
    assert texts[:3] == texts[3:] and len(set(texts[:3])) > 1  # deterministic, varied
    assert all("\n" not in t for t in texts)
    assert "The answer is 17." in texts[0]  # apples' 12 shifted by the question's 5
    assert out["usage"]["completion_tokens"] > 0 and out["usage"]["prompt_tokens"] > 0
    log = sim.sessions(tmp_path / "log.jsonl")
    assert log == [
        {"server": "t", "session": "k1", "n": 3, "prompts": 2, "number": 5, "t": log[0]["t"]}
    ]
    r = c.post("/v1/completions", json={**body, "max_tokens": 2})
    assert {ch["finish_reason"] for ch in r.json()["choices"]} == {"length"}
    assert sim.sessions(tmp_path / "log.jsonl")[-1]["session"] == "u1"  # no header: user
    assert c.get("/health").status_code == 200
    assert c.get("/v1/models").json()["data"][0]["id"] == "sim"
    assert c.post("/v1/completions", json={"prompt": [1]}).status_code == 400


def test_latency_grows_past_the_knee(tmp_path: Path) -> None:
    c = client(tmp_path, base=0.05, knee=4)
    body = {"model": "sim", "prompt": "Question: x\nAnswer:", "max_tokens": 5}
    start = time.perf_counter()
    c.post("/v1/completions", json={**body, "n": 4})
    small = time.perf_counter() - start
    start = time.perf_counter()
    c.post("/v1/completions", json={**body, "n": 16})  # 16 sequences: 4x the knee
    big = time.perf_counter() - start
    assert small >= 0.05 and big >= 0.2 and big > small
