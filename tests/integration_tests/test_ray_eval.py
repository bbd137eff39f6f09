"""``rstar eval`` on Ray actors (``--ray-address``), with scripted models (no engine).

Ray on this 2-core machine takes 10-60 s to start a local instance and several seconds per
actor, so these tests are in the integration stage (marked ``integration``; they need no
model). They skip when Ray is not installed (``pip install 'langchain-rstar[ray]'``).

What they pin (issue 15.3): an actor killed mid-question and a driver killed mid-run
(SIGKILL, then the same command again) leave every question written exactly once; an
application error and a dead backend come back as values (each question ran once: no Ray
retry); the records are those of a local run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import RStarConfig
from langchain_rstar.errors import BackendDeadError
from langchain_rstar.eval.harness import build_method, read_records, run_evaluation
from langchain_rstar.testing import APPLES_QUESTION, apples_llm

pytestmark = pytest.mark.integration
ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'langchain-rstar[ray]'")

from langchain_rstar.eval.ray_runner import RayRunner, runtime_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = RStarConfig(num_rollouts=2, num_votes=2, seed=3)


def _examples(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "problem": APPLES_QUESTION, "solution": "10", "answer": "10"}
        for i in range(n)
    ]


class _Probe:
    """A method wrapper that logs each solve's start and end (with the actor's pid) to a
    file, sleeps ``delay`` per question, and raises for marked questions."""

    def __init__(self, inner: Any, log: str, delay: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.config = inner.config
        self.log = log
        self.delay = delay

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def _note(self, text: str) -> None:
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {text}\n")

    def solve(self, question: str, task: str | None = None) -> Any:
        tag = question.split("#", 1)[1] if "#" in question else ""
        self._note(f"start {tag}")
        time.sleep(self.delay)
        if tag.startswith("boom"):
            raise ValueError("boom in the method")
        if tag.startswith("dead"):
            raise BackendDeadError("connection refused (test)")
        out = self.inner.solve(APPLES_QUESTION, task)
        self._note(f"end {tag}")
        return out


def _probe_method(log: str, delay: float) -> _Probe:
    return _Probe(build_method("rstar", apples_llm(), config=CONFIG), log, delay)


def _tagged(n: int, tags: dict[int, str] | None = None) -> list[dict[str, Any]]:
    out = _examples(n)
    for i, ex in enumerate(out):
        ex["problem"] = f"{APPLES_QUESTION} #{(tags or {}).get(i, 'q' + str(i))}"
    return out


def _log(path: Path) -> list[tuple[int, str, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        pid, what, *tag = line.split(" ")
        rows.append((int(pid), what, tag[0] if tag else ""))
    return rows


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local Ray instance for this module's in-process tests (2 CPUs)."""
    if ray.is_initialized():
        ray.shutdown()
    # the test module's own functions travel by value (the workers cannot import it)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env=runtime_env(),
    )
    yield ray
    ray.shutdown()


def _run(tmp: Path, examples: list[dict[str, Any]], runner: RayRunner | None, name: str) -> Any:
    method = _probe_method(str(tmp / f"{name}.log"), 0.0)
    return run_evaluation(
        examples,
        method,
        tmp / f"{name}.jsonl",
        dataset="apples",
        progress=False,
        runner=runner,
        max_consecutive_failures=10,
    )


def test_ray_run_writes_what_a_local_run_writes(ray_cluster: Any, tmp_path: Path) -> None:
    import functools

    examples = _tagged(6)
    log = tmp_path / "ray.log"
    factory = functools.partial(_probe_method, str(log), 0.0)
    with RayRunner(factory, label="rstar", workers=2, concurrency=4) as runner:
        summary = _run(tmp_path, examples, runner, "ray")
    local = _run(tmp_path, examples, None, "local")
    assert summary.complete and local.complete and summary.written == 6
    by_ray = {r["id"]: r for r in read_records(tmp_path / "ray.jsonl")}
    by_local = {r["id"]: r for r in read_records(tmp_path / "local.jsonl")}
    assert set(by_ray) == set(by_local) == {ex["id"] for ex in examples}
    for key, rec in by_ray.items():
        for field in ("prediction", "answers", "trajectory", "confidence", "settings"):
            assert rec[field] == by_local[key][field], (key, field)
    # the searches ran in the actors (two processes, neither of them this one)
    pids = {pid for pid, _, _ in _log(log)}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_an_actor_killed_mid_question_loses_and_duplicates_nothing(
    ray_cluster: Any, tmp_path: Path
) -> None:
    import functools

    examples = _tagged(6)
    log = tmp_path / "kill.log"
    out = tmp_path / "kill.jsonl"
    factory = functools.partial(_probe_method, str(log), 1.5)
    runner = RayRunner(factory, label="rstar", workers=2, concurrency=2, max_task_retries=1)
    killed: dict[str, Any] = {}

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            actors = list(runner.actors)
            if actors:
                victim = ray.get(actors[0].pid.remote(), timeout=60)
                started = [t for pid, what, t in _log(log) if pid == victim and what == "start"]
                ended = [t for pid, what, t in _log(log) if pid == victim and what == "end"]
                if started and not ended:  # in the middle of its first question
                    killed["pid"], killed["tag"] = victim, started[0]
                    ray.kill(actors[0], no_restart=False)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=kill_when_busy, daemon=True)
    with runner:
        thread.start()
        summary = run_evaluation(
            examples,
            _probe_method(str(log), 0.0),
            out,
            dataset="apples",
            progress=False,
            runner=runner,
        )
    thread.join(timeout=5)
    assert killed, "the actor was never caught mid-question"
    counts = Counter(r["id"] for r in read_records(out))
    assert counts == Counter(ex["id"] for ex in examples)  # none lost, none twice
    assert summary.complete and summary.written == 6
    # the killed question ran again, in a new process (the restarted actor)
    rows = _log(log)
    reruns = [pid for pid, what, tag in rows if what == "start" and tag == killed["tag"]]
    assert len(reruns) == 2 and reruns[1] != killed["pid"]
    assert not any(pid == killed["pid"] and what == "end" for pid, what, _ in rows)


def test_errors_and_a_dead_backend_come_back_as_values(ray_cluster: Any, tmp_path: Path) -> None:
    import functools

    log = tmp_path / "err.log"
    factory = functools.partial(_probe_method, str(log), 0.0)
    examples = _tagged(4, {1: "boom1"})
    with RayRunner(factory, label="rstar", workers=2, concurrency=2) as runner:
        summary = run_evaluation(
            examples,
            _probe_method(str(log), 0.0),
            tmp_path / "err.jsonl",
            dataset="apples",
            progress=False,
            runner=runner,
        )
    assert summary.written == 3 and [i for i, _ in summary.failed] == ["q1"]
    assert "ValueError: boom in the method" in summary.failed[0][1]
    assert summary.dead is None
    assert "q1" not in {r["id"] for r in read_records(tmp_path / "err.jsonl")}
    started = Counter(tag for _, what, tag in _log(log) if what == "start")
    assert started["boom1"] == 1  # an application error is never a Ray retry

    dead_log = tmp_path / "dead.log"
    factory = functools.partial(_probe_method, str(dead_log), 0.0)
    examples = _tagged(8, {0: "dead0"})
    with RayRunner(factory, label="rstar", workers=1, concurrency=1) as runner:
        summary = run_evaluation(
            examples,
            _probe_method(str(dead_log), 0.0),
            tmp_path / "dead.jsonl",
            dataset="apples",
            progress=False,
            runner=runner,
        )
    assert summary.dead and "connection refused" in summary.dead
    assert summary.written == 0
    started = Counter(tag for _, what, tag in _log(dead_log) if what == "start")
    assert started == Counter({"dead0": 1})  # ran once, and the run stopped


def test_every_actor_gone_for_good_stops_the_run_and_a_rerun_finishes(
    ray_cluster: Any, tmp_path: Path
) -> None:
    import functools

    examples = _tagged(8)
    log = tmp_path / "gone.log"
    out = tmp_path / "gone.jsonl"
    factory = functools.partial(_probe_method, str(log), 1.0)
    runner = RayRunner(factory, label="rstar", workers=2, concurrency=2)

    def kill_all_once_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if runner.actors and sum(what == "end" for _, what, _ in _log(log)) >= 2:
                for actor in list(runner.actors):
                    ray.kill(actor, no_restart=True)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill_all_once_busy, daemon=True)
    with runner:
        thread.start()
        summary = run_evaluation(
            examples,
            _probe_method(str(log), 0.0),
            out,
            dataset="apples",
            progress=False,
            runner=runner,
        )
    thread.join(timeout=5)
    assert summary.dead and "Ray worker" in summary.dead
    first = Counter(r["id"] for r in read_records(out))
    assert 2 <= sum(first.values()) < 8 and set(first.values()) == {1}
    # the same run again (new actors) finishes only what is missing
    with RayRunner(factory, label="rstar", workers=2, concurrency=2) as again:
        summary = run_evaluation(
            examples,
            _probe_method(str(log), 0.0),
            out,
            dataset="apples",
            progress=False,
            runner=again,
        )
    assert summary.complete and summary.skipped == sum(first.values())
    assert Counter(r["id"] for r in read_records(out)) == Counter(ex["id"] for ex in examples)


# --------------------------------------------------------------------------------------
# The driver killed mid-run (the CLI, in a subprocess with its own local Ray instance)
# --------------------------------------------------------------------------------------
def _eval_cmd(dataset: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "eval",
        "--scripted",
        "--dataset",
        str(dataset),
        "--method",
        "rstar",
        "--num-rollouts",
        "6",
        "--out",
        str(out),
        "--ray-address",
        "local",
        "--ray-workers",
        "2",
        "--concurrency",
        "2",
        "--no-progress",
    ]


def _group_commands(pgid: int, prefix: str) -> list[str]:
    """Command lines starting with ``prefix`` of the live processes in group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid and cmd.startswith(prefix):
            found.append(cmd)
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _driver_with_lines(
    tmp_path: Path, n: int, lines: int
) -> tuple[subprocess.Popen[str], Path, Path]:
    """``rstar eval --ray-address local`` on ``n`` questions in its own process group,
    returned once ``lines`` records are written: ``(process, dataset, out)``."""
    if ray.is_initialized():
        ray.shutdown()
    dataset = tmp_path / "apples.jsonl"
    dataset.write_text("".join(json.dumps(ex) + "\n" for ex in _examples(n)))
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        _eval_cmd(dataset, out),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"the run ended before {lines} records: {err[-3000:]}")
    return proc, dataset, out


def test_driver_killed_mid_run_then_rerun_finishes_the_rest(tmp_path: Path) -> None:
    n = 60
    proc, dataset, out = _driver_with_lines(tmp_path, n, 3)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # the actors die with their driver (Ray's fate sharing): no search keeps running
        deadline = time.monotonic() + 60
        while _group_commands(proc.pid, "ray::_SearchActor") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_commands(proc.pid, "ray::_SearchActor")
    finally:
        # Ray's dashboard and runtime-env agents of the driver's local instance outlive a
        # SIGKILL of the driver: they are in its process group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = read_records(out)
    assert 3 <= len(before) < n, "the run ended before the kill: make it longer"
    rerun = subprocess.run(
        _eval_cmd(dataset, out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(before)} before" in rerun.stderr
    counts = Counter(r["id"] for r in read_records(out))
    assert counts == Counter(ex["id"] for ex in _examples(n))  # none lost, none twice
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])


def test_cli_on_ray_with_a_dead_server_exits_dead_and_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("langchain_openai")
    if ray.is_initialized():
        ray.shutdown()
    dataset = tmp_path / "apples.jsonl"
    dataset.write_text("".join(json.dumps(ex) + "\n" for ex in _examples(3)))
    out = tmp_path / "out.jsonl"
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "eval",
        "--backend",
        "openai",
        "--model",
        "served",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--dataset",
        str(dataset),
        "--method",
        "rstar",
        "--num-rollouts",
        "2",
        "--out",
        str(out),
        "--ray-address",
        "local",
        "--ray-workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 3, proc.stderr[-3000:]  # EXIT_DEAD, as without Ray
    assert "the model backend is not working" in proc.stderr
    assert read_records(out) == []


def test_sigterm_to_the_driver_stops_cleanly_like_ctrl_c(tmp_path: Path) -> None:
    """ray.init installs its own SIGTERM handler (its core worker's aborts the process);
    the runner puts the CLI's back: exit 130, finished lines kept, nothing left running."""
    n = 60
    proc, _, out = _driver_with_lines(tmp_path, n, 2)
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-3000:]
        assert "interrupted; rerun the same command to resume" in err
        deadline = time.monotonic() + 60
        while _group_commands(proc.pid, "ray::") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_commands(proc.pid, "ray::"), "Ray processes outlived the run"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    records = read_records(out)
    assert 2 <= len(records) < n and len({r["id"] for r in records}) == len(records)
    assert out.read_bytes().endswith(b"\n")
