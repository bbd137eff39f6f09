"""SIGTERM to ``rstar eval`` running the in-process vLLM engine.

vLLM's engine runs in child processes. Killing the parent used to leave them running as
orphans, each keeping a CPU core busy. Now SIGTERM stops the run like Ctrl-C: finished
lines stay, the engine's processes are shut down, the exit status is 130, and the same
command resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _server import KV_GB, finished_ids

pytestmark = pytest.mark.integration

QUESTIONS = [
    {
        "id": f"t{i}",
        "problem": f"Ann has {i} pens and gets {i} more. How many?",
        "solution": str(2 * i),
    }
    for i in range(1, 41)
]


def _descendants(pid: int) -> set[int]:
    """All live descendant pids of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_eval_and_its_engine_processes(model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "run.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "eval",
        "--dataset",
        str(data),
        "--method",
        "cot",
        "--backend",
        "vllm",
        "--out",
        str(out),
        "--max-tokens",
        "32",
        "--no-progress",
    ]
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(KV_GB))
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 900
        while len(finished_ids(out)) < 1 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
        assert run.poll() is None, run.communicate()[0].decode(errors="replace")[-3000:]
        assert finished_ids(out), "no question finished before the deadline"
        children = _descendants(run.pid)
        assert children, "the vLLM engine runs no child process?"
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=120)
        text = output.decode(errors="replace")
        assert run.returncode == 130, text[-3000:]
        assert "rerun the same command" in text
        end = time.monotonic() + 60
        while any(_alive(p) for p in children) and time.monotonic() < end:
            time.sleep(0.5)
        left = [p for p in children if _alive(p)]
        assert not left, f"engine processes left running after SIGTERM: {left}"
        ids = finished_ids(out)
        assert len(ids) == len(set(ids)) and len(ids) < len(QUESTIONS)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
