"""A simulated OpenAI-compatible completions server, for scale-out tests and benchmarks.

Why a simulator: the scale-out tests need several engine replicas on one 2-core machine
(a real ``vllm serve`` of even the 270M model takes ~7 GiB and minutes to start), and they
test routing, session affinity, timeouts and failures, not text quality. Each simulated
replica is one small FastAPI process that speaks the subset of vLLM's OpenAI API that the
package uses:

* ``POST /v1/completions``: ``prompt`` (a string or a list), ``n`` samples per prompt,
  ``stop``, ``max_tokens`` (counted in words), ``usage`` in the reply;
* ``GET /v1/models``, ``GET /health`` (what ``vllm-router`` probes).

Text: the rules of :func:`langchain_rstar.testing.apples_llm` (so the package's prompts get
well-formed steps, sub-questions and answers), with every final number shifted by the first
number of the question, so that different questions get different, deterministic answers
(a prediction depends on the prompt only, never on which replica answered).

Throughput curve (sleep-based, no CPU): a request that arrives while ``L`` sequences
(prompts x n) are in flight on this replica, itself included, takes
``base * max(1, L / knee)`` seconds. Up to ``knee`` sequences batching is free (latency
stays ``base``); past it latency grows linearly, so one replica's throughput saturates at
``knee / base`` sequences per second, like an engine whose batch is full.

Session log: one JSON line per request (``session``: the ``x-session-id`` header, else the
``user`` field; ``n``; ``prompts``; ``number``: the first number of the prompt's last
question, to check that a key travels with its own question; ``t``) appended to ``--log``,
flushed per line, so a test can check which replica saw which question even after
``kill -9``.

Fault modes: ``--hang-after K`` accepts every request after the first K and never answers
(the connection stays open); ``--die-after K`` kills the process with SIGKILL when request
K+1 arrives. Tests also ``kill -9`` the process from outside.

Run: ``python tests/sim_server.py --port 8101 --log /tmp/s1.jsonl [--base 0.05 --knee 16]``.
The helpers :func:`start`, :func:`stop`, :func:`sessions` are used by the tests and
``benchmarks/bench_scaleout.py``.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = [
    "PING",
    "ROUTER_FLAGS",
    "free_port",
    "make_app",
    "sessions",
    "start",
    "start_router",
    "stop",
    "wait_ready",
    "wait_routable",
]

HERE = Path(__file__).resolve()


def _text_model() -> Any:
    from langchain_rstar.testing import apples_llm

    return apples_llm(record_calls=False)


_NUM = re.compile(r"-?\d+")
_ANSWER = re.compile(r"(The answer is )(-?\d+)")


def _question_offset(prompt: str) -> int:
    """The first integer of the prompt's last question (0 for the apples question)."""
    i = prompt.rfind("Question:")
    line = prompt[i:].split("\n", 1)[0] if i >= 0 else ""
    if "Ann has 3 bags" in line:
        return 0
    m = _NUM.search(line)
    return int(m.group()) if m else 0


def complete(model: Any, prompt: str, n: int, stop: list[str], max_tokens: int | None) -> list:
    """``n`` (text, finish_reason) samples for ``prompt``: deterministic in the prompt."""
    from langchain_rstar.llms._common import split_at_stop

    offset = _question_offset(prompt)
    out = []
    for text in model.samples_for(prompt, n):
        if offset:
            text = _ANSWER.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + offset}", text)
        text, _ = split_at_stop(text, stop)
        reason = "stop"
        words = text.split(" ")
        if max_tokens is not None and len(text.split()) > max_tokens:
            text, reason = " ".join(words[: max_tokens + 1]), "length"
        out.append((text, reason))
    return out


def make_app(
    *,
    name: str,
    log: str | None,
    base: float = 0.05,
    knee: int = 16,
    hang_after: int | None = None,
    die_after: int | None = None,
    model_name: str = "sim",
) -> Any:
    """The FastAPI app of one simulated replica (see the module docstring)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    model = _text_model()
    state = {"in_flight": 0, "requests": 0}
    fh = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115 - process lifetime

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "owned_by": "sim"}],
        }

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            return JSONResponse({"error": {"message": "prompt must be text"}}, status_code=400)
        n = int(body.get("n") or 1)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        key = request.headers.get("x-session-id") or body.get("user")
        state["requests"] += 1
        number = state["requests"]
        if fh is not None:
            rec = {"server": name, "session": key, "n": n, "prompts": len(prompts)}
            rec["number"] = _question_offset(prompts[0])  # which question the prompt is on
            rec["t"] = round(time.time(), 4)
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
        if die_after is not None and number > die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if hang_after is not None and number > hang_after:
            await asyncio.sleep(10**6)  # accepted, never answered
        seqs = n * len(prompts)
        state["in_flight"] += seqs
        try:
            await asyncio.sleep(base * max(1.0, state["in_flight"] / knee))
        finally:
            state["in_flight"] -= seqs
        choices = []
        prompt_tokens = completion_tokens = 0
        for i, prompt in enumerate(prompts):
            prompt_tokens += len(prompt.split())
            for j, (text, reason) in enumerate(
                complete(model, prompt, n, stop, body.get("max_tokens"))
            ):
                completion_tokens += len(text.split())
                choices.append(
                    {"index": i * n + j, "text": text, "finish_reason": reason, "logprobs": None}
                )
        return {
            "id": f"cmpl-{name}-{number}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model", model_name),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    return app


# ------------------------------------------------------------------------------------
# Helpers for tests and benchmarks
# ------------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 30.0,
    *,
    interval: float = 0.1,
    log: Path | None = None,
    what: str | None = None,
) -> None:
    """Wait until ``url`` answers 200.

    Raises ``RuntimeError`` if ``proc`` exits first and ``TimeoutError`` after ``timeout``
    seconds, each with the last 4,000 characters of ``log`` when given (a server's output).
    Shared with ``integration_tests/_server.py`` (the real ``vllm serve``).
    """
    name = what or url

    def tail() -> str:
        return ":\n" + log.read_text(errors="replace")[-4000:] if log is not None else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what or proc.args!r} exited with {proc.returncode}{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=max(2.0, interval * 2)) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{name} not ready after {timeout:g} s{tail()}")


def start(
    log: Path | str, *, port: int | None = None, name: str | None = None, **opts: Any
) -> tuple[subprocess.Popen, str]:
    """Start one simulated replica; returns ``(process, base url without /v1)``.

    ``opts``: ``base``, ``knee``, ``hang_after``, ``die_after`` (see the module docstring).
    """
    port = port or free_port()
    cmd = [sys.executable, str(HERE), "--port", str(port), "--log", str(Path(log).resolve())]
    cmd += ["--name", name or f"sim{port}"]
    for key, value in opts.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ)
    root = str(HERE.parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    errors = open(str(Path(log).resolve()) + ".stderr", "ab")  # noqa: SIM115 - to the child
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=root)
    finally:
        errors.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/health", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Stop a process started by :func:`start` (SIGKILL by default) and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


#: Router flags for tests: fast start-up and health checks, bounded timeout and retries.
ROUTER_FLAGS = {
    "policy": "sticky_least_loaded",
    "worker-startup-check-interval": 1,
    "health-check-interval-secs": 1,
    "health-failure-threshold": 1,
    "request-timeout-secs": 10,
    "retry-max-retries": 2,
    "retry-initial-backoff-ms": 50,
    "cb-timeout-duration-secs": 2,
    "log-level": "info",
}


def start_router(workers: list[str], log: Path | str, **flags: Any) -> tuple[subprocess.Popen, str]:
    """Start ``vllm-router`` over ``workers``; returns ``(process, base url without /v1)``.

    ``flags`` override :data:`ROUTER_FLAGS` (``request_timeout_secs=5``); None drops one.
    """
    import shutil

    exe = shutil.which("vllm-router")
    if exe is None:
        raise FileNotFoundError("vllm-router is not installed (pip install vllm-router)")
    port = free_port()
    options = dict(ROUTER_FLAGS)
    options.update({k.replace("_", "-"): v for k, v in flags.items()})
    cmd = [exe, "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *workers]
    cmd += ["--prometheus-port", str(free_port())]
    for key, value in options.items():
        if value is not None:
            cmd += [f"--{key}", str(value)]
    fh = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    finally:
        fh.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/v1/models", proc, timeout=60)
    except BaseException:
        stop(proc)
        raise
    return proc, url


#: The session key of :func:`wait_routable`'s probe requests.
PING = "_ping"


def wait_routable(router: str, timeout: float = 60.0) -> None:
    """Wait until a completion through ``router`` succeeds (its workers are back)."""
    body = json.dumps({"model": "sim", "prompt": "ping", "max_tokens": 1}).encode()
    deadline = time.monotonic() + timeout
    while True:
        req = urllib.request.Request(
            router + "/v1/completions",
            data=body,
            headers={"content-type": "application/json", "x-session-id": PING},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{router} routes no request after {timeout:g} s")
        time.sleep(0.2)


def sessions(log: Path | str) -> list[dict[str, Any]]:
    """The request records of one replica's session log (a cut last line is skipped)."""
    path = Path(log)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log", default=None, help="session log (JSON lines)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--base", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--knee", type=int, default=16, help="sequences batched for free")
    parser.add_argument("--hang-after", type=int, default=None)
    parser.add_argument("--die-after", type=int, default=None)
    parser.add_argument("--model-name", default="sim")
    args = parser.parse_args(argv)
    import uvicorn

    app = make_app(
        name=args.name or f"sim{args.port}",
        log=args.log,
        base=args.base,
        knee=args.knee,
        hang_after=args.hang_after,
        die_after=args.die_after,
        model_name=args.model_name,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
