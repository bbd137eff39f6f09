"""rStar as a deployable LangGraph graph (LangGraph Server, ``langgraph dev``, Studio).

``langgraph.json`` at the repository root points at :data:`graph` in this file::

    pip install -e . "langgraph-cli[inmem]"   # plus .[openai] for RSTAR_BASE_URL
    langgraph dev                     # Studio opens on the "rstar" graph

Input ``{"question": "...", "num_rollouts": 8}`` (``num_rollouts`` optional); output
``{"answer", "confidence", "trajectory", "stop_reason", "result"}`` where ``result`` is the
whole :class:`~langchain_rstar.result.RStarResult` as JSON. The controller graph (select,
the five action nodes, advance, backprop, collect, verify) is a subgraph node, so Studio
shows and streams every step. The server's checkpointer applies to it: an interrupted run
resumes from its last finished step.

Environment (read once, when the server loads this file):
    RSTAR_BASE_URL        an OpenAI-compatible completions server (``vllm serve`` or a
                          ``vllm-router`` in front of several); needs RSTAR_MODEL.
    RSTAR_MODEL           the served model name (with RSTAR_BASE_URL) or a local model for
                          the embedded engine.
    RSTAR_API_KEY         API key for RSTAR_BASE_URL (default "EMPTY").
    RSTAR_REQUEST_TIMEOUT seconds per HTTP request (600).
    RSTAR_SCRIPTED=1      use a scripted model (canned answers; for smoke tests and demos).
    RSTAR_NUM_ROLLOUTS    default rollouts per question (16).
    RSTAR_MAX_ROLLOUTS    largest ``num_rollouts`` a request may ask for (64).
    RSTAR_TASK            answer family: arithmetic (default), math or yesno.
    RSTAR_PROFILE         search profile: paper (default; the generator also verifies its
                          candidates) or fast (cheaper; no verification).
    Without RSTAR_BASE_URL or RSTAR_SCRIPTED the embedded model runs in-process (vLLM, else
    transformers); with neither installed, loading fails with an install hint.

:data:`graph` is a plain module attribute built at import: LangGraph Server reads it from
the module's ``__dict__`` (a module ``__getattr__`` is never called, which is why the
server used to fail with ``GraphLoadError``). Building it loads no weights: the embedded
engine starts on the first model call, an OpenAI client opens no connection until then.

Throughput: ``langgraph dev`` runs one job per worker at a time by default, so concurrent
runs queue and the engine sees one search's requests at a time. Start it with
``--n-jobs-per-worker 32`` (about 32 concurrent searches per engine replica keeps vLLM's
continuous batching full); see ``docs/scaleout.md``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import NotRequired, TypedDict

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.search.graph import recursion_limit
from langchain_rstar.search.state import SearchOutput

__all__ = ["GraphInput", "GraphOutput", "check_num_rollouts", "graph", "make_graph", "scripted_llm"]


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


class _State(SearchOutput, total=False):
    num_rollouts: int | None
    trajectory: list[dict[str, Any]]


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


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _llm_from_env() -> Any:
    """The generator named by the environment, or an ImportError with an install hint."""
    if os.environ.get("RSTAR_SCRIPTED") == "1":
        return scripted_llm()
    base_url = os.environ.get("RSTAR_BASE_URL")
    model = os.environ.get("RSTAR_MODEL") or None
    if base_url:
        if not model:
            raise ValueError("RSTAR_BASE_URL needs RSTAR_MODEL (the served model name)")
        from langchain_rstar.llms._session import openai_client

        timeout = float(os.environ.get("RSTAR_REQUEST_TIMEOUT", "600"))
        return openai_client(
            model=model,
            base_url=base_url,
            api_key=os.environ.get("RSTAR_API_KEY") or "EMPTY",
            request_timeout=timeout,
        )
    if importlib.util.find_spec("vllm") is None and (
        importlib.util.find_spec("transformers") is None
        or importlib.util.find_spec("torch") is None
    ):
        raise ImportError(
            "graphs/rstar.py has no model backend: set RSTAR_BASE_URL and RSTAR_MODEL for an "
            "OpenAI-compatible server (pip install 'langchain-rstar[openai]'), or install the "
            "embedded engine (pip install 'langchain-rstar[vllm]' or torch + transformers), "
            "or set RSTAR_SCRIPTED=1 for the canned demo model"
        )
    from langchain_rstar.llms import default_llm

    return default_llm(model=model)


def _chain_from_env() -> RStarChain:
    config = RStarConfig(
        num_rollouts=_env_int("RSTAR_NUM_ROLLOUTS", 16),
        task=os.environ.get("RSTAR_TASK", "arithmetic"),  # type: ignore[arg-type]
        profile=os.environ.get("RSTAR_PROFILE") or "paper",  # type: ignore[arg-type]
    )
    llm = _llm_from_env()
    # No discriminator: the profile decides (paper: the generator verifies itself, one
    # engine serving both roles; fast: no verification), as for RStarChain(generator=llm).
    return RStarChain(generator=llm, config=config)


def check_num_rollouts(value: Any, default: int, max_rollouts: int) -> int:
    """The request's ``num_rollouts``: None means ``default``; else an int in 1..max."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"num_rollouts must be a whole number between 1 and {max_rollouts}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if not 1 <= value <= max_rollouts:
        raise ValueError(f"num_rollouts must be between 1 and {max_rollouts}, got {value}")
    return value


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
        max_rollouts = _env_int("RSTAR_MAX_ROLLOUTS", 64)
    max_rollouts = max(max_rollouts, chain.config.num_rollouts)

    def prepare(state: _State) -> dict[str, Any]:
        # The question is checked by the search's own first node (init); this node only
        # resolves the request's num_rollouts into the search config.
        rollouts = check_num_rollouts(
            state.get("num_rollouts"), chain.config.num_rollouts, max_rollouts
        )
        config = chain.config.model_copy(update={"num_rollouts": rollouts})
        return {"config": config.model_dump()}

    def report(state: _State) -> dict[str, Any]:
        result = state.get("result") or {}  # built by the search's last node (finish)
        return {
            "answer": result.get("answer"),
            "confidence": result.get("confidence", 0.0),
            "stop_reason": result.get("stop_reason", ""),
            "trajectory": list(result.get("trajectory") or []),
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


#: The served graph (``langgraph.json`` points here); a real attribute, built at import.
graph = make_graph()
