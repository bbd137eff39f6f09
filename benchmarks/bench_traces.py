"""Runs and bytes one traced search produces (scripted model, no weights, a few seconds).

What a LangSmith user pays per search: the number of runs in the trace, how many of them
look like roots to ``collect_runs()`` (should be exactly one, ``RStar``), whether any node
run merely wraps an identical run of the same name (a duplicated node), and the size of the
serialised runs (``Run.json()``, roughly what is posted).

Usage::

    PYTHONPATH=. python benchmarks/bench_traces.py            # 3 and 16 rollouts
    PYTHONPATH=. python benchmarks/bench_traces.py 3 16 32

Two ways to listen: ``collect_runs()`` (a context collector, as a LangSmith user inspects
runs locally) and ``callbacks=[RunCollectorCallbackHandler()]`` (an inheritable handler:
what a LangSmith tracer set from the environment receives).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from langchain_core.tracers.context import collect_runs
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.tracers.schemas import Run

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.testing import APPLES_QUESTION, apples_llm


def walk(run: Run) -> Iterator[Run]:
    yield run
    for child in run.child_runs:
        yield from walk(child)


def measure(num_rollouts: int, how: str = "collect_runs") -> dict[str, Any]:
    """Trace one search of ``num_rollouts`` rollouts and count what the trace holds."""
    chain = RStarChain(
        generator=apples_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=num_rollouts, seed=0),
    )
    if how == "collect_runs":
        with collect_runs() as cb:
            chain.invoke(APPLES_QUESTION)
        roots = list(cb.traced_runs)
    else:
        handler = RunCollectorCallbackHandler()
        chain.invoke(APPLES_QUESTION, {"callbacks": [handler]})
        roots = list(handler.traced_runs)
    seen: dict[str, Run] = {}
    for root in roots:
        for run in walk(root):
            seen[str(run.id)] = run
    runs = list(seen.values())
    duplicated = sum(
        1
        for run in runs
        if len(run.child_runs) == 1
        and run.child_runs[0].name == run.name
        and run.child_runs[0].run_type == run.run_type
    )
    size = sum(len(run.model_dump_json(exclude={"child_runs"})) for run in runs)
    return {
        "how": how,
        "rollouts": num_rollouts,
        "runs": len(runs),
        "roots": len(roots),
        "first_root": roots[0].name if roots else None,
        "duplicated_node_runs": duplicated,
        "bytes": size,
    }


def main(argv: list[str]) -> None:
    for n in [int(a) for a in argv] or [3, 16]:
        for how in ("collect_runs", "handler"):
            row = measure(n, how)
            print(
                f"{how:<12}  rollouts={row['rollouts']:>3}  runs={row['runs']:>4}  "
                f"roots={row['roots']:>3} (first: {row['first_root']})  "
                f"duplicated node runs={row['duplicated_node_runs']:>3}  bytes={row['bytes']:>9,}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
