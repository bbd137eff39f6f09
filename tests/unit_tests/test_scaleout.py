"""Scale-out through a real ``vllm-router`` over simulated replicas (issue #15).

Two or more :mod:`sim_server` processes on 127.0.0.1 (OpenAI-compatible completions, a
session log each) behind ``vllm-router --policy sticky_least_loaded``, driven by the real
``rstar eval --backend openai`` command line. No model is loaded, so these run in the unit
stage (~1-2 min in all); they are skipped where the ``vllm-router`` wheel is absent
(``pip install 'langchain-rstar[scale]'``).

What they show: the same predictions through the router as direct; every question's
requests on one replica; ``kill -9`` of one replica mid-run leaves every record written
once (the router moves the calls); killing every replica exits with the dead-backend code
and a rerun finishes only the missing questions; a replica that accepts and never answers
is timed out by the router and the call moves.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

import sim_server as sim  # noqa: E402

pytestmark = [
    pytest.mark.skipif(shutil.which("vllm-router") is None, reason="vllm-router not installed"),
    pytest.mark.timeout(240),
]

QUESTIONS = [
    {
        "id": f"q{i}",
        "problem": f"Tom has {i} apples and buys {i + 2} more. How many apples now?",
        "solution": str(2 * i + 2),
    }
    for i in range(1, 9)
]
EXIT_DEAD = 3


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


class Procs:
    """Processes started by one test, all killed at its end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def add(self, pair: tuple[subprocess.Popen, str]) -> str:
        self.procs.append(pair[0])
        return pair[1]

    def close(self) -> None:
        for proc in self.procs:
            sim.stop(proc)


@pytest.fixture()
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.close()


def eval_cmd(data: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "eval",
        "--dataset",
        str(data),
        "--method",
        "rstar",
        "--num-rollouts",
        "2",
        "--out",
        str(out),
        "--backend",
        "openai",
        "--base-url",
        url + "/v1",
        "--model",
        "sim",
        "--concurrency",
        "4",
        "--no-progress",
        "--request-timeout",
        "20",
        "--config",
        json.dumps({"max_retries": 1, "retry_backoff": 0.1}),
        *extra,
    ]


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "LANGSMITH_TRACING": "false"}


def run_eval(cmd: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def replicas_by_session(logs: list[Path]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for log in logs:
        for rec in sim.sessions(log):
            if rec["session"] == sim.PING:
                continue
            seen[str(rec["session"])].add(log.name)
    return dict(seen)


def test_router_same_predictions_and_one_replica_per_question(
    data: Path, tmp_path: Path, procs: Procs
) -> None:
    direct_log = tmp_path / "direct.jsonl"
    direct = procs.add(sim.start(direct_log, base=0.02))
    logs = [tmp_path / f"r{i}.jsonl" for i in range(2)]
    workers = [procs.add(sim.start(log, base=0.02)) for log in logs]
    router = procs.add(sim.start_router(workers, tmp_path / "router.log"))

    a = run_eval(eval_cmd(data, tmp_path / "direct-out.jsonl", direct))
    assert a.returncode == 0, a.stderr[-3000:]
    b = run_eval(eval_cmd(data, tmp_path / "router-out.jsonl", router))
    assert b.returncode == 0, b.stderr[-3000:]

    pred_a = {r["id"]: r["prediction"] for r in records(tmp_path / "direct-out.jsonl")}
    pred_b = {r["id"]: r["prediction"] for r in records(tmp_path / "router-out.jsonl")}
    assert set(pred_a) == {q["id"] for q in QUESTIONS}
    assert pred_a == pred_b
    assert len(set(pred_a.values())) > 1  # the answers depend on the question

    # every request carried the question's key, and each question stayed on one replica
    direct_keys = {r["session"] for r in sim.sessions(direct_log)}
    assert direct_keys == {f"rstar/{q['id']}" for q in QUESTIONS}
    seen = replicas_by_session(logs)
    assert set(seen) == direct_keys
    assert all(len(where) == 1 for where in seen.values()), seen
    assert all(sim.sessions(log) for log in logs)  # both replicas got work


def test_kill_one_replica_mid_run_every_record_once(
    data: Path, tmp_path: Path, procs: Procs
) -> None:
    logs = [tmp_path / f"r{i}.jsonl" for i in range(2)]
    pairs = [sim.start(log, base=0.05) for log in logs]
    workers = [procs.add(p) for p in pairs]
    router = procs.add(sim.start_router(workers, tmp_path / "router.log"))
    out = tmp_path / "out.jsonl"
    run = subprocess.Popen(
        eval_cmd(data, out, router), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV
    )
    try:
        deadline = time.monotonic() + 120
        while len(sim.sessions(logs[0])) < 15 and time.monotonic() < deadline:
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            time.sleep(0.05)
        finished_before = len(records(out)) if out.exists() else 0
        sim.stop(pairs[0][0])  # kill -9 one replica mid-run
        text, _ = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert finished_before < len(QUESTIONS), "the kill came after the run"
    assert run.returncode == 0, text.decode()[-3000:]
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == sorted(q["id"] for q in QUESTIONS)
    assert len(ids) == len(set(ids))
    moved = [k for k, where in replicas_by_session(logs).items() if len(where) == 2]
    assert moved, "no question was in flight on the killed replica"


def test_all_replicas_killed_exit_dead_then_rerun_finishes_only_the_missing(
    data: Path, tmp_path: Path, procs: Procs
) -> None:
    logs = [tmp_path / f"r{i}.jsonl" for i in range(2)]
    pairs = [sim.start(log, base=0.05) for log in logs]
    workers = [procs.add(p) for p in pairs]
    router = procs.add(sim.start_router(workers, tmp_path / "router.log"))
    out = tmp_path / "out.jsonl"
    cmd = eval_cmd(data, out, router)
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while (not out.exists() or len(records(out)) < 2) and time.monotonic() < deadline:
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            time.sleep(0.05)
        for proc, _ in pairs:
            sim.stop(proc)  # every replica dies
        text, _ = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == EXIT_DEAD, text.decode()[-3000:]
    first = [r["id"] for r in records(out)]
    assert 2 <= len(first) < len(QUESTIONS) and len(first) == len(set(first))
    before = out.read_text()

    # the replicas come back on their ports (the router stays up and sees them healthy
    # again): the same command finishes only the missing questions
    logs2 = [tmp_path / f"s{i}.jsonl" for i in range(2)]
    for log, url in zip(logs2, workers, strict=True):
        procs.add(sim.start(log, base=0.02, port=int(url.rsplit(":", 1)[1])))
    sim.wait_routable(router)
    done = run_eval(cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == sorted(q["id"] for q in QUESTIONS) and len(ids) == len(set(ids))
    assert out.read_text().startswith(before)
    rerun_keys = set(replicas_by_session(logs2))
    assert rerun_keys == {f"rstar/{q['id']}" for q in QUESTIONS if q["id"] not in first}


def test_replica_that_never_answers_is_timed_out_and_the_call_moves(
    data: Path, tmp_path: Path, procs: Procs
) -> None:
    logs = [tmp_path / f"r{i}.jsonl" for i in range(2)]
    hung = procs.add(sim.start(logs[0], base=0.02, hang_after=5))
    good = procs.add(sim.start(logs[1], base=0.02))
    router = procs.add(
        sim.start_router([hung, good], tmp_path / "router.log", request_timeout_secs=2)
    )
    out = tmp_path / "out.jsonl"
    start = time.monotonic()
    done = run_eval(eval_cmd(data, out, router))
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == sorted(q["id"] for q in QUESTIONS) and len(ids) == len(set(ids))
    hung_keys = {r["session"] for r in sim.sessions(logs[0])[5:]}
    assert hung_keys, "no request reached the hanging replica"
    good_keys = {r["session"] for r in sim.sessions(logs[1])}
    assert hung_keys <= good_keys  # every question stuck there was answered by the other
    assert elapsed < 120
