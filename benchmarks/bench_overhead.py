"""Framework overhead of the rStar search, measured with a scripted (instant) model.

Paper settings: 32 rollouts, 5 one-step thoughts per A1, 5 sub-questions per A3, 10 votes,
depth 5. The scripted model gives varied, deterministic samples (so the tree grows like a
real one: several distinct children per expansion, answers that disagree), answers at once
(``latency=0``) or after a fixed sleep per call (``latency=0.05``).

Printed (all from this one run):

* instant model: wall and CPU time per LLM request and per rollout, and framework time
  per request (wall time outside the model calls, as ``RStarResult.usage`` measures it).
  Everything that is not the scripted model's own arithmetic is framework: the graph, the
  reducers, the action code, LangChain's ``generate`` plumbing and callbacks.
* 50 ms model: ``framework_seconds / wall_seconds`` (time outside model calls), the
  median of ``--repeat`` runs.

Targets: under 1 ms per request (instant) and under 5 % of wall time (50 ms per call).

Run::

    python benchmarks/bench_overhead.py            # sync and async, rollout_batch 1 and 8
    python benchmarks/bench_overhead.py --profile  # cProfile of the instant sync run
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import operator
import os
import platform
import pstats
import re
import sys
import time
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.testing import ScriptedLLM

QUESTION = (
    "A farmer has 3 fields with 4 rows of 5 cabbages in each. Rabbits eat 50 cabbages. "
    "How many cabbages are left?"
)

PAPER = {"num_rollouts": 32, "num_a1_steps": 5, "num_subquestions": 5, "num_votes": 10}

_STEP = re.compile(r"Step (\d+):$")
_SUBQ = re.compile(r"Sub-question (\d+):$")
_ANSWER = re.compile(r"Answer (\d+):( Let's work it out step by step\.)?$")


def _h(prompt: str, j: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{j}|{prompt}".encode(), digest_size=8).digest(), "big")


def _answer(h: int) -> str:
    r = h % 20
    return "10" if r < 12 else "12" if r < 17 else "7"


def varied_responder(prompt: str, n: int) -> list[str]:
    """Deterministic, varied samples for every kind of rStar prompt.

    * ``Step k:`` -- one step (a third of the samples state an answer) followed by more
      steps ending in an answer, so A1 (stops at a newline) gets one step and A2 (stops at a
      blank line) gets a whole solution;
    * ``Sub-question k:`` -- one of five sub-questions, or the final one (always from k=3);
    * ``Answer k:`` -- a short computation and an answer;
    * ``Rephrased question:`` -- a list of conditions.

    Answers are 10 (60 %), 12 (25 %) or 7 (15 %).
    """
    tail = prompt[-80:]
    out: list[str] = []
    for j in range(n):
        h = _h(prompt, j)
        if tail.endswith("Rephrased question:"):
            out.append(
                " Condition 1: 3 fields. Condition 2: 4 rows of 5 each. Condition 3: 50 eaten."
                " Question: How many cabbages are left?"
            )
        elif m := _STEP.search(tail):
            k = int(m.group(1))
            ans = _answer(h)
            if h % 3 == 0:
                out.append(f" So the total is {ans} cabbages. The answer is {ans}.")
            else:
                out.append(
                    f" Partial result number {h % 7} for this step.\n"
                    f"Step {k + 1}: Combining gives {ans}. The answer is {ans}."
                )
        elif m := _SUBQ.search(tail):
            k = int(m.group(1))
            if k >= 3 or h % 4 == 0:
                out.append(" Now we can answer the question: How many cabbages are left?")
            else:
                out.append(f" What is intermediate quantity {h % 5}?")
        elif _ANSWER.search(tail):
            ans = _answer(h)
            out.append(f" Computing part {h % 3} gives {ans}. The answer is {ans}.")
        else:
            out.append(f" The answer is {_answer(h)}.")
    return out


def paper_config(**overrides: Any) -> RStarConfig:
    return RStarConfig(**{**PAPER, **overrides})


def run_once(
    latency: float, rollout_batch: int, use_async: bool, **overrides: Any
) -> dict[str, Any]:
    llm = ScriptedLLM(responder=varied_responder, latency=latency, record_calls=False)
    chain = RStarChain(generator=llm, config=paper_config(rollout_batch=rollout_batch, **overrides))
    cpu = time.process_time()
    start = time.perf_counter()
    result = asyncio.run(chain.ainvoke(QUESTION)) if use_async else chain.invoke(QUESTION)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    u = result.usage
    return {
        "wall": wall,
        "cpu": cpu,
        "requests": u.llm_calls,
        "rollouts": u.rollouts,
        "nodes": u.nodes,
        "samples": u.samples,
        "framework": u.framework_seconds,
        "model": u.model_seconds,
        "usage_wall": u.wall_seconds,
        "answer": result.answer,
    }


def graph_shape(rollout_batch: int) -> tuple[int, int]:
    """Supersteps and tasks the search runs (instant model, paper settings)."""
    llm = ScriptedLLM(responder=varied_responder, record_calls=False)
    chain = RStarChain(generator=llm, config=paper_config(rollout_batch=rollout_batch))
    state = {"question": QUESTION, "config": chain.config.model_dump()}
    steps: set[int] = set()
    tasks = 0
    for event in chain.graph.stream(state, {"recursion_limit": 100_000}, stream_mode="debug"):
        steps.add(event["step"])
        tasks += event["type"] == "task"
    return len(steps), tasks


class _FloorState(TypedDict):
    i: int
    acc: Annotated[list[int], operator.add]


def langgraph_floor(supersteps: int, tasks: int, repeat: int = 3, use_async: bool = False) -> float:
    """CPU seconds a bare LangGraph graph needs for the same supersteps and tasks.

    A controller node alternates with a fan-out of no-op ``Send`` tasks, so that the
    graph runs ``supersteps`` supersteps and ``tasks`` tasks in all: LangGraph's own cost,
    the floor under any framework built on it. ``use_async``: ``ainvoke`` with coroutine
    nodes and routing (no executor hop), as the search's own async path runs.
    """
    rounds = max(supersteps // 2, 1)
    fan = max(round((tasks - rounds) / rounds), 1)

    def ctrl(s: _FloorState) -> dict[str, Any]:
        return {"i": s["i"] + 1}

    def route(s: _FloorState) -> Any:
        return [Send("work", {"x": j}) for j in range(fan)] if s["i"] <= rounds else END

    def work(x: dict[str, Any]) -> dict[str, Any]:
        return {"acc": [1]}

    async def actrl(s: _FloorState) -> dict[str, Any]:
        return ctrl(s)

    async def aroute(s: _FloorState) -> Any:
        return route(s)

    async def awork(x: dict[str, Any]) -> dict[str, Any]:
        return work(x)

    builder = StateGraph(_FloorState)
    builder.add_node("ctrl", actrl if use_async else ctrl)
    builder.add_node("work", awork if use_async else work)
    builder.add_edge(START, "ctrl")
    builder.add_conditional_edges("ctrl", aroute if use_async else route, ["work", END])
    builder.add_edge("work", "ctrl")
    graph = builder.compile()
    config: Any = {"recursion_limit": 100_000}
    best = float("inf")
    for _ in range(repeat):
        cpu = time.process_time()
        if use_async:
            asyncio.run(graph.ainvoke({"i": 0, "acc": []}, config))
        else:
            graph.invoke({"i": 0, "acc": []}, config)
        best = min(best, time.process_time() - cpu)
    return best


def wake_penalty(repeat: int = 30) -> tuple[float, float]:
    """Median seconds of one fixed piece of search work, run hot and right after a 50 ms sleep.

    On a virtual machine whose CPU idles while a thread waits, the code that runs after the
    wait can be several times slower than the same code run back to back (cold caches, a
    descheduled vCPU). The 50 ms rows pay that at every model call; this shows how much.
    """
    from langchain_rstar.answers import get_checker

    checker = get_checker("arithmetic")
    texts = [f"Step 1: 3 * 4 = 12. 12 - {i} = {12 - i}. The answer is {12 - i}." for i in range(10)]
    cfg = RStarConfig()

    def work() -> None:
        for _ in range(3):
            data = cfg.model_dump()
            sorted(data.items())
            [checker.extract(t) for t in texts]

    out = []
    for sleep in (0.0, 0.05):
        times = []
        for _ in range(repeat):
            if sleep:
                time.sleep(sleep)
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        out.append(sorted(times)[repeat // 2])
    return out[0], out[1]


def report(label: str, r: dict[str, Any], latency: float) -> None:
    per_req = r["wall"] / max(r["requests"], 1) * 1e3
    cpu_req = r["cpu"] / max(r["requests"], 1) * 1e3
    per_roll = r["wall"] / max(r["rollouts"], 1) * 1e3
    fw_req = r["framework"] / max(r["requests"], 1) * 1e3  # wall time outside model calls
    fw_sample = r["framework"] / max(r["samples"], 1) * 1e3
    share = r["framework"] / r["usage_wall"] if r["usage_wall"] else 0.0
    print(
        f"{label:<39} requests={r['requests']:>4} samples={r['samples']:>4} "
        f"nodes={r['nodes']:>4} "
        f"wall={r['wall']:6.3f}s cpu={r['cpu']:6.3f}s  "
        f"wall/request={per_req:6.2f}ms cpu/request={cpu_req:5.2f}ms "
        f"framework/request={fw_req:5.2f}ms framework/sample={fw_sample:5.3f}ms "
        f"wall/rollout={per_roll:7.2f}ms  framework_share={share * 100:5.1f}%  "
        f"answer={r['answer']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the instant sync run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="best of N (instant) / median of N (50 ms) runs"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()} cpus={os.cpu_count()} "
        f"load1={load:.1f}  python {sys.version.split()[0]}  settings {PAPER}"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_once(0.0, 1, False)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(45)
        print(buf.getvalue())
        return
    run_once(0.0, 1, False)  # warm imports and caches
    for use_async in (False, True):
        mode = "async" if use_async else "sync"
        for batch in (1, 8):
            steps, tasks = graph_shape(batch)
            floor = langgraph_floor(steps, tasks, use_async=use_async)
            best = min(
                (run_once(0.0, batch, use_async) for _ in range(args.repeat)),
                key=lambda r: r["cpu"],
            )
            print(
                f"{mode} rollout_batch={batch}: {steps} supersteps, {tasks} tasks; bare "
                f"LangGraph floor {floor * 1e3:.0f} ms CPU = "
                f"{floor / best['requests'] * 1e3:.2f} ms per request "
                f"({floor / best['cpu'] * 100:.0f}% of the search's CPU)"
            )
    for use_async in (False, True):
        for batch in (1, 8):
            mode = "async" if use_async else "sync"
            best = min(
                (run_once(0.0, batch, use_async) for _ in range(args.repeat)),
                key=lambda r: r["cpu"],
            )
            report(f"instant {mode} batch={batch}", best, 0.0)
    for use_async in (False, True):
        for batch in (1, 8):
            mode = "async" if use_async else "sync"
            runs = sorted(
                (run_once(0.05, batch, use_async) for _ in range(args.repeat)),
                key=lambda r: r["framework"] / r["usage_wall"],
            )
            report(f"50ms {mode} batch={batch} (median)", runs[len(runs) // 2], 0.05)
    hot, cold = wake_penalty()
    print(
        f"# the same work (config dump, answer extraction) takes {hot * 1e6:.0f} us hot and "
        f"{cold * 1e6:.0f} us right after a 50 ms sleep ({cold / hot:.1f}x): the 50 ms rows "
        "pay that wake-up cost at every model call"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# load1 at the end: {load:.1f} (wall times inflate with machine load; CPU does not)")


if __name__ == "__main__":
    main()
