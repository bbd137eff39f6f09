"""``rstar eval`` at high concurrency: the searches run as asyncio tasks on one event loop.

From ``ASYNC_CONCURRENCY`` (32) on, ``run_evaluation`` drives ``rstar``/``rstar-gen`` with
``ainvoke`` instead of one thread per question. These tests run 64 questions at
concurrency 64 on the scripted model (same records as a sequential run, every model call
on one thread, many searches in flight at once) and through ``rstar eval`` on a simulated
OpenAI-compatible server (every request carries its own question's session key).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import RStarConfig
from langchain_rstar.eval import harness
from langchain_rstar.eval.harness import ASYNC_CONCURRENCY, RStarMethod, run_evaluation
from langchain_rstar.testing import apples_llm

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def questions(k: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i}",
            "problem": f"Ann has {i} bags with 4 apples in each bag. How many apples?",
            "solution": f"#### {4 * i}",
            "task": "arithmetic",
        }
        for i in range(k)
    ]


class CountingMethod(RStarMethod):
    """Counts the searches in flight and the threads the model is called from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0
        self.peak = 0

    async def asolve(self, question: str, task: str | None = None) -> Any:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return await super().asolve(question, task)
        finally:
            self.active -= 1


def records(path: Path) -> dict[str, Any]:
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[r["id"]] = (r["prediction"], r["usage"]["llm_calls"], r["answers"])
    return out


def test_concurrency_64_runs_on_one_event_loop_with_the_same_records(tmp_path: Path) -> None:
    threads: set[int] = set()

    def make_llm() -> Any:
        llm = apples_llm(latency=0.01)
        base = llm.samples_for

        def tracked(prompt: str, n: int) -> list[str]:
            threads.add(threading.get_ident())
            return base(prompt, n)

        object.__setattr__(llm, "samples_for", tracked)
        return llm

    config = RStarConfig(num_rollouts=2, seed=3)
    seq = tmp_path / "seq.jsonl"
    run_evaluation(questions(64), RStarMethod(make_llm(), config), seq, dataset="t", progress=False)
    threads.clear()
    method = CountingMethod(make_llm(), config)
    par = tmp_path / "par.jsonl"
    summary = run_evaluation(
        questions(64), method, par, dataset="t", progress=False, concurrency=64
    )
    assert ASYNC_CONCURRENCY <= 64
    assert summary.complete and summary.written == 64
    assert records(par) == records(seq)
    assert len(threads) == 1  # every model call on the event loop's thread
    assert method.peak > ASYNC_CONCURRENCY  # the searches really overlapped


def test_below_the_threshold_and_inside_a_running_loop_threads_are_used() -> None:
    method = RStarMethod(apples_llm(), RStarConfig(num_rollouts=1))
    assert harness._use_async(method, ASYNC_CONCURRENCY)
    assert not harness._use_async(method, ASYNC_CONCURRENCY - 1)

    async def inside() -> bool:
        return harness._use_async(method, 64)

    assert asyncio.run(inside()) is False


@pytest.mark.timeout(240)
def test_eval_cli_at_concurrency_64_keys_every_request_with_its_question(
    tmp_path: Path,
) -> None:
    pytest.importorskip("langchain_openai")
    sys.path.insert(0, str(TESTS))
    import sim_server as sim

    data = tmp_path / "q.jsonl"
    qs = [
        {"id": f"q{i}", "problem": f"Tom has {i} apples. How many apples?", "solution": str(i)}
        for i in range(1, 65)
    ]
    data.write_text("".join(json.dumps(q) + "\n" for q in qs))
    log = tmp_path / "sim.jsonl"
    proc, url = sim.start(log, base=0.05, knee=64)
    try:
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "langchain_rstar.cli", "eval", "--dataset", str(data)]
        cmd += ["--method", "rstar", "--num-rollouts", "1", "--out", str(out)]
        cmd += ["--backend", "openai", "--base-url", url + "/v1", "--model", "sim"]
        cmd += ["--concurrency", "64", "--no-progress", "--request-timeout", "60"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=200, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        sim.stop(proc)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in got) == sorted(q["id"] for q in qs)
    assert all(r["prediction"] is not None for r in got)
    reqs = sim.sessions(log)
    assert {r["session"] for r in reqs} == {f"rstar/{q['id']}" for q in qs}
    keyed = [r for r in reqs if r["number"]]
    assert keyed and all(r["session"] == f"rstar/q{r['number']}" for r in keyed)
