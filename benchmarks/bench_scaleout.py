"""Scale-out throughput: 1, 2 and 4 simulated replicas behind a real ``vllm-router``.

What it measures: the throughput of an rStar-shaped load (questions in flight at once, each
a chain of dependent *waves*; a wave is several concurrent ``n``-sample completion calls
that all carry the question's session key) through ``vllm-router --policy
sticky_least_loaded`` over N replicas of ``tests/sim_server.py``, as a ratio to one replica
(goal: >= 1.8x for 2, >= 3.4x for 4), and the share of questions whose requests were split
across replicas (read from the replicas' session logs; goal 0).

Why simulated replicas: this machine has 2 CPU cores and no GPU, so the replicas' cost is a
sleep-based throughput curve (``--base`` seconds per call up to ``--knee`` sequences in
flight per replica, growing linearly past it), not CPU. The numbers therefore test the
routing, the affinity and the client's ability to keep N replicas busy, not an engine.

Usage::

    python benchmarks/bench_scaleout.py                       # 1, 2, 4 replicas
    python benchmarks/bench_scaleout.py --replicas 1 2 --questions 32 --json out.json

Needs ``pip install 'langchain-rstar[scale]'`` (vllm-router) and ``httpx``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import sim_server as sim  # noqa: E402

PREFIX = (
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as "
    "many clips in May. How many clips did Natalia sell altogether in April and May?\n"
)


async def one_question(
    client: Any, url: str, qid: int, args: argparse.Namespace, stats: dict[str, int]
) -> None:
    """One question: ``waves`` dependent rounds of ``calls`` concurrent n-sample calls."""
    key = f"bench/q{qid}"
    headers = {"x-session-id": key}
    path = f"Question: question {qid}.\n"

    async def call(wave: int, j: int) -> None:
        body = {
            "model": "sim",
            "prompt": PREFIX + path + f"Step {wave + 1}:",
            "n": args.n,
            "max_tokens": 64,
            "stop": ["\n"],
            "user": key,
        }
        for _attempt in range(3):
            resp = await client.post(url + "/v1/completions", json=body, headers=headers)
            if resp.status_code == 200:
                stats["calls"] += 1
                stats["samples"] += len(resp.json()["choices"])
                return
            stats["errors"] += 1
        raise RuntimeError(f"{key}: {resp.status_code} {resp.text[:200]}")

    for wave in range(args.waves):
        await asyncio.gather(*(call(wave, j) for j in range(args.calls)))


async def drive(url: str, args: argparse.Namespace) -> tuple[float, dict[str, int]]:
    import httpx

    stats = {"calls": 0, "samples": 0, "errors": 0}
    limits = httpx.Limits(max_connections=args.concurrency * args.calls + 8)
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:
        queue = list(range(args.questions))
        sem = asyncio.Semaphore(args.concurrency)

        async def guarded(qid: int) -> None:
            async with sem:
                await one_question(client, url, qid, args, stats)

        start = time.perf_counter()
        await asyncio.gather(*(guarded(q) for q in queue))
        return time.perf_counter() - start, stats


def measure(replicas: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    logs = [workdir / f"r{replicas}-{i}.jsonl" for i in range(replicas)]
    procs = []
    try:
        urls = []
        for log in logs:
            proc, url = sim.start(log, base=args.base, knee=args.knee)
            procs.append(proc)
            urls.append(url)
        router, rurl = sim.start_router(
            urls, workdir / f"router{replicas}.log", request_timeout_secs=int(args.timeout)
        )
        procs.append(router)
        seconds, stats = asyncio.run(drive(rurl, args))
    finally:
        for proc in procs:
            sim.stop(proc)
    where: dict[str, set[int]] = collections.defaultdict(set)
    per_replica = []
    for i, log in enumerate(logs):
        recs = sim.sessions(log)
        per_replica.append(len(recs))
        for rec in recs:
            where[str(rec["session"])].add(i)
    split = sum(1 for s in where.values() if len(s) > 1)
    return {
        "replicas": replicas,
        "seconds": round(seconds, 2),
        "questions_per_s": round(args.questions / seconds, 3),
        "samples_per_s": round(stats["samples"] / seconds, 1),
        "calls": stats["calls"],
        "errors": stats["errors"],
        "requests_per_replica": per_replica,
        "split_questions": split,
        "split_share": round(split / max(1, len(where)), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--questions", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=32, help="questions in flight")
    p.add_argument("--waves", type=int, default=3, help="dependent waves per question")
    p.add_argument("--calls", type=int, default=2, help="concurrent calls per wave")
    p.add_argument("--n", type=int, default=8, help="samples per call")
    p.add_argument("--base", type=float, default=0.4, help="replica seconds per call")
    p.add_argument("--knee", type=int, default=16, help="sequences a replica batches free")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        for r in args.replicas:
            rows.append(measure(r, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["replicas"] == 1), rows[0])
    print(
        f"\nload: {args.questions} questions, {args.concurrency} in flight, {args.waves} waves "
        f"x {args.calls} calls x n={args.n}; replica: base {args.base} s, knee {args.knee}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("| replicas | seconds | questions/s | ratio vs 1 | split questions |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r["questions_per_s"] / base["questions_per_s"]
        print(
            f"| {r['replicas']} | {r['seconds']} | {r['questions_per_s']} | {ratio:.2f}x "
            f"| {r['split_questions']} ({100 * r['split_share']:.0f}%) |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
