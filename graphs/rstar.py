"""rStar as a deployable LangGraph graph (LangGraph Server, ``langgraph dev``, Studio).

``langgraph.json`` at the repository root points at :data:`graph` in this file::

    pip install -e . "langgraph-cli[inmem]"
    langgraph dev                     # Studio opens on the "rstar" graph

Input ``{"question": "...", "num_rollouts": 8}`` (``num_rollouts`` optional); output
``{"answer", "confidence", "trajectory", "stop_reason", "result"}`` where ``result`` is the
whole :class:`~langchain_rstar.result.RStarResult` as JSON. The controller graph (select,
the five action nodes, advance, backprop, collect, verify) is a subgraph node, so Studio
shows and streams every step. The server's checkpointer applies to it: an interrupted run
resumes from its last finished step.

Environment:
    RSTAR_SCRIPTED=1      use a scripted model (canned answers; for smoke tests and demos).
    RSTAR_NUM_ROLLOUTS    default rollouts per question (16).
    RSTAR_MAX_ROLLOUTS    largest ``num_rollouts`` a request may ask for (64).
    RSTAR_TASK            answer family: arithmetic (default), math or yesno.

The embedded model is created on first access to :data:`graph` (the module imports fast,
the engine itself loads on the first model call).
"""

from __future__ import annotations

import os
import time
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import NotRequired, TypedDict

from langchain_rstar import RStarChain, RStarConfig, validate_question
from langchain_rstar.search.graph import recursion_limit
from langchain_rstar.search.state import RStarState

__all__ = ["make_graph", "scripted_llm", "GraphInput", "GraphOutput"]


class GraphInput(TypedDict):
    """What a run takes."""

    question: str
    num_rollouts: NotRequired[int | None]


class GraphOutput(TypedDict, total=False):
    """What a run returns."""

    answer: str | None
    confidence: float
    trajectory: list[dict[str, Any]]
    stop_reason: str
    result: dict[str, Any]


class _State(RStarState, total=False):
    num_rollouts: int | None
    trajectory: list[dict[str, Any]]
    result: dict[str, Any]
    t0: float


def scripted_llm() -> Any:
    """A canned model for demos and smoke tests: every path ends in "The answer is 42"."""
    from langchain_rstar.testing import ScriptedLLM

    return ScriptedLLM(
        rules=[
            (r"Sub-question \d+:$", [" Now we can answer the question: what is the result?"]),
            (r"Rephrased question:$", [" Condition 1: as stated. Question: what is the result?"]),
            (r"Step \d+:$", [" 6 * 7 = 42. The answer is 42.", " Let us compute 6 * 7."]),
        ],
        default=[" 6 * 7 = 42. The answer is 42."],
    )


def _chain_from_env() -> RStarChain:
    config = RStarConfig(
        num_rollouts=int(os.environ.get("RSTAR_NUM_ROLLOUTS", "16")),
        task=os.environ.get("RSTAR_TASK", "arithmetic"),  # type: ignore[arg-type]
    )
    if os.environ.get("RSTAR_SCRIPTED") == "1":
        return RStarChain(generator=scripted_llm(), discriminator=True, config=config)
    return RStarChain(config=config)  # embedded model for generator and discriminator


def make_graph(
    chain: RStarChain | None = None,
    *,
    max_rollouts: int | None = None,
    checkpointer: Any = None,
) -> Any:
    """Compile the deployable graph around ``chain`` (default: from the environment).

    Args:
        chain: the search to serve; None builds one from the environment variables.
        max_rollouts: the largest ``num_rollouts`` a request may ask for (sets the
            graph's recursion limit).
        checkpointer: for use outside LangGraph Server (which brings its own).
    """
    chain = chain or _chain_from_env()
    if max_rollouts is None:
        max_rollouts = int(os.environ.get("RSTAR_MAX_ROLLOUTS", "64"))
    max_rollouts = max(max_rollouts, chain.config.num_rollouts)

    def prepare(state: _State) -> dict[str, Any]:
        question = validate_question(state.get("question"), chain.config.max_question_chars)
        rollouts = state.get("num_rollouts") or chain.config.num_rollouts
        if not 1 <= rollouts <= max_rollouts:
            raise ValueError(f"num_rollouts must be between 1 and {max_rollouts}")
        config = chain.config.model_copy(update={"num_rollouts": rollouts})
        return {"question": question, "config": config.model_dump(), "t0": time.time()}

    def report(state: _State, config: RunnableConfig) -> dict[str, Any]:
        result = chain.result_from_state(state, time.time() - float(state.get("t0") or 0.0))
        return {
            "answer": result.answer,
            "confidence": result.confidence,
            "stop_reason": result.stop_reason,
            "trajectory": [step.model_dump() for step in result.trajectory],
            "result": result.model_dump(mode="json"),
        }

    builder = StateGraph(_State, input_schema=GraphInput, output_schema=GraphOutput)
    builder.add_node("prepare", prepare)
    builder.add_node("search", chain.graph)
    builder.add_node("report", report)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "search")
    builder.add_edge("search", "report")
    builder.add_edge("report", END)
    limit = recursion_limit(chain.config.model_copy(update={"num_rollouts": max_rollouts}))
    compiled = builder.compile(checkpointer=checkpointer, name="rstar")
    return compiled.with_config(recursion_limit=limit + 10)


_GRAPH: Any = None


def __getattr__(name: str) -> Any:
    """``graph`` is built on first access (so importing this module loads no model)."""
    global _GRAPH
    if name == "graph":
        if _GRAPH is None:
            _GRAPH = make_graph()
        return _GRAPH
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
