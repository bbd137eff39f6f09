"""Smoke test: ``langgraph dev`` serves graphs/rstar.py from ``langgraph.json`` (issue 15.4).

The server runs from a separate virtual environment (``scripts/langgraph_venv.sh``, run by
``scripts/setup.sh``; ``RSTAR_LANGGRAPH_VENV`` names another one): langgraph-api would
downgrade protobuf in the main environment. The server imports this checkout's package
(``PYTHONPATH``) and the scripted model (``RSTAR_SCRIPTED=1``); the test drives it through
``langgraph_sdk``: ``runs.wait`` and ``runs.stream`` (with the search subgraph's steps),
and a bad input that must come back as the package's own error. Skipped when the
environment has not been created.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(
    os.environ.get("RSTAR_LANGGRAPH_VENV")
    or Path.home() / ".cache" / "langchain-rstar" / "langgraph-venv"
)
QUESTION = "What is 6 times 7?"
STATE = ROOT / ".langgraph_api"


def _langgraph_cli() -> str | None:
    exe = VENV / "bin" / "langgraph"
    if exe.is_file() and os.access(exe, os.X_OK):
        return str(exe)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("langgraph_sdk")
    exe = _langgraph_cli()
    if exe is None:
        pytest.skip(f"no langgraph CLI environment at {VENV}: bash scripts/langgraph_venv.sh")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        RSTAR_SCRIPTED="1",
        RSTAR_NUM_ROLLOUTS="3",
        PYTHONPATH=str(ROOT),
        LANGSMITH_TRACING="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
    )
    had_state = STATE.exists()
    log = open(tmp_path_factory.mktemp("langgraph") / "dev.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            exe,
            "dev",
            "--no-browser",
            "--no-reload",
            "--port",
            str(port),
            "--n-jobs-per-worker",
            "4",
        ],
        cwd=ROOT,  # langgraph.json's paths are relative to the working directory
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"langgraph dev exited ({proc.returncode}):\n{log.read()[-4000:]!r}")
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("langgraph dev did not answer /ok within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
        if not had_state:  # the in-memory server's files, in ./.langgraph_api (gitignored)
            shutil.rmtree(STATE, ignore_errors=True)


def test_the_server_loads_the_graph_and_answers_runs_wait_and_stream(server: str) -> None:
    from langgraph_sdk import get_client

    async def scenario() -> None:
        client = get_client(url=server)
        assistants = await client.assistants.search(graph_id="rstar")
        assert assistants, "the server did not register the 'rstar' graph"

        out = await client.runs.wait(None, "rstar", input={"question": QUESTION, "num_rollouts": 3})
        assert isinstance(out, dict), out
        assert out["answer"] == "42" and out["confidence"] > 0.5
        assert out["result"]["usage"]["rollouts"] == 3
        assert out["trajectory"][-1]["answer"] == "42"

        thread = await client.threads.create()
        events: list[str] = []
        nodes: set[str] = set()
        final = None
        async for part in client.runs.stream(
            thread["thread_id"],
            "rstar",
            input={"question": QUESTION, "num_rollouts": 2},
            stream_mode=["updates", "values"],
            stream_subgraphs=True,
        ):
            events.append(part.event)
            if part.event.startswith("updates") and isinstance(part.data, dict):
                nodes.update(part.data)
            if part.event == "values":
                final = part.data
        assert any(e.startswith("updates|search") for e in events), events
        # the deployed graph's own nodes and the search subgraph's (which controller nodes a
        # 2-rollout tree passes, advance or backprop, depends on its shape)
        assert {"prepare", "select", "report"} <= nodes
        assert nodes & {"advance", "backprop"} and any(n.startswith("A") for n in nodes), nodes
        assert final is not None and final["answer"] == "42"
        assert final["result"]["usage"]["rollouts"] == 2
        state = await client.threads.get_state(thread["thread_id"])
        assert state["values"]["answer"] == "42"  # the server's checkpointer kept it

        # four runs at once (--n-jobs-per-worker 4): each gets its own budget and answer
        outs = await asyncio.gather(
            *(
                client.runs.wait(None, "rstar", input={"question": QUESTION, "num_rollouts": n})
                for n in (1, 2, 3, 4)
            )
        )
        assert [o["result"]["usage"]["rollouts"] for o in outs] == [1, 2, 3, 4]
        assert {o["answer"] for o in outs} == {"42"}

        with pytest.raises(Exception, match="the question is empty"):
            await client.runs.wait(None, "rstar", input={"question": "   "})
        with pytest.raises(Exception, match="num_rollouts"):
            await client.runs.wait(None, "rstar", input={"question": QUESTION, "num_rollouts": 0})

    asyncio.run(scenario())


def test_setup_creates_the_environment_this_test_looks_for() -> None:
    script = (ROOT / "scripts" / "langgraph_venv.sh").read_text()
    assert "RSTAR_LANGGRAPH_VENV:-$HOME/.cache/langchain-rstar/langgraph-venv" in script
    assert "scripts/langgraph_venv.sh" in (ROOT / "scripts" / "setup.sh").read_text()


def test_without_a_backend_the_server_fails_at_load_with_an_install_hint(tmp_path: Path) -> None:
    pytest.importorskip("langgraph_sdk")
    exe = _langgraph_cli()
    if exe is None:
        pytest.skip(f"no langgraph CLI environment at {VENV}: bash scripts/langgraph_venv.sh")
    if (
        subprocess.run(
            [str(VENV / "bin" / "python"), "-c", "import vllm"], capture_output=True
        ).returncode
        == 0
        or subprocess.run(
            [str(VENV / "bin" / "python"), "-c", "import torch, transformers"], capture_output=True
        ).returncode
        == 0
    ):
        pytest.skip("the CLI environment has a local engine; nothing to fail on")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RSTAR_") or k == "RSTAR_LANGGRAPH_VENV"
    }
    env.update(PYTHONPATH=str(ROOT), LANGSMITH_TRACING="false", LANGGRAPH_CLI_NO_ANALYTICS="1")
    proc = subprocess.run(
        [exe, "dev", "--no-browser", "--no-reload", "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != 0
    log = proc.stdout + proc.stderr
    assert "graphs/rstar.py has no model backend" in log
    assert "pip install 'langchain-rstar[openai]'" in log and "RSTAR_SCRIPTED=1" in log
