"""A real ``vllm serve`` killed in the middle of an ``rstar eval`` run, then resumed.

The run must stop with a clear error and a non-zero exit, keep every finished line, and
the same command after a server restart must finish with no lost or duplicated line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _server import finished_ids, free_port, start_server, stop_server

pytestmark = pytest.mark.integration

QUESTIONS = [
    {
        "id": f"q{i}",
        "problem": f"Tom has {i} apples and buys {i + 2} more. How many now?",
        "solution": str(2 * i + 2),
    }
    for i in range(1, 9)
]


def test_eval_survives_a_killed_server_and_resumes(model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    pytest.importorskip("langchain_openai")
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "run.jsonl"
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "langchain_rstar.cli",
        "eval",
        "--dataset",
        str(data),
        "--method",
        "cot",
        "--out",
        str(out),
        "--backend",
        "openai",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--model",
        str(model_dir),
        "--max-tokens",
        "48",
        "--no-progress",
        "--config",
        json.dumps({"max_retries": 1, "retry_backoff": 0.2}),
    ]
    server = start_server(model_dir, port, log)
    try:
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while len(finished_ids(out)) < 2 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
        assert len(finished_ids(out)) >= 2, "the run made no progress before the kill"
        stop_server(server)  # the backend dies mid-run
        output, _ = run.communicate(timeout=600)
        text = output.decode(errors="replace")
        assert run.returncode != 0, text
        assert "rerun the same command" in text or "backend" in text.lower()
        first = finished_ids(out)
        assert len(first) == len(set(first)) and len(first) < len(QUESTIONS)
        before = out.read_text()
        server = start_server(model_dir, port, log)
        done = subprocess.run(cmd, capture_output=True, timeout=900)
        assert done.returncode == 0, done.stdout.decode(errors="replace")
        ids = finished_ids(out)
        assert sorted(ids) == sorted(q["id"] for q in QUESTIONS)
        assert len(ids) == len(set(ids))
        assert out.read_text().startswith(before)  # finished lines kept as they were
    finally:
        stop_server(server)
