"""Graph state of the rStar controller: plain, serialisable records merged by reducers."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated, Any

from langgraph.runtime import get_runtime
from typing_extensions import TypedDict

from langchain_rstar.config import RStarConfig
from langchain_rstar.result import NodeRecord

__all__ = [
    "ROOT_ID",
    "RStarState",
    "RolloutRecord",
    "SearchInput",
    "SearchOutput",
    "merge_nodes",
    "add_usage",
    "config_from_state",
    "has_fatal",
]

#: Id of the root node (the question) in the node table.
ROOT_ID = "0"


def merge_nodes(
    left: Mapping[str, NodeRecord] | None, right: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, NodeRecord]:
    """Reducer of the node table: new ids are added, known ids get their fields updated."""
    merged: dict[str, NodeRecord] = dict(left or {})
    for node_id, fields in (right or {}).items():
        if node_id in merged:
            record = dict(merged[node_id])
            record.update(fields)
            merged[node_id] = record  # type: ignore[assignment]
        else:
            merged[node_id] = dict(fields)  # type: ignore[assignment]
    return merged


def add_usage(
    left: Mapping[str, float] | None, right: Mapping[str, float] | None
) -> dict[str, float]:
    """Reducer of usage counters: values are summed key by key."""
    out = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0.0) + float(value)
    return out


class RolloutRecord(TypedDict):
    """One rollout of the current wave.

    Keys:
        index: rollout number (0-based).
        path: node ids from the root to the current leaf.
        status: ``expand`` (its leaf waits for expansion) or ``done``.
        reward: the reward to backpropagate once done.
    """

    index: int
    path: list[str]
    status: str
    reward: float


class RStarState(TypedDict, total=False):
    """State of the controller graph.

    Keys:
        question: the question being solved.
        config: the :class:`~langchain_rstar.config.RStarConfig` as a dict.
        nodes: the search tree, id -> record.
        wave: rollouts in flight.
        next_rollout: index of the next rollout to start.
        finished: one summary per finished rollout (index, path, reward, best answer).
        usage: summed cost counters.
        intervals: wall-clock intervals of model calls (for framework-time accounting).
        errors: failed model calls and other recoverable faults.
        stop_reason: why the search stopped (budget, early_stop, a limit).
        limits_hit: names of limits that stopped the search.
        candidates: terminal trajectories (dicts of :class:`~langchain_rstar.result.Candidate`).
        verification: how the answer was chosen.
        answer: the chosen answer.
        confidence: its confidence.
        started: wall time the search started (epoch seconds).
        result: the public :class:`~langchain_rstar.result.RStarResult` as JSON-ready data
            (written by the last node, ``finish``).
    """

    question: str
    config: dict[str, Any]
    nodes: Annotated[dict[str, NodeRecord], merge_nodes]
    wave: list[RolloutRecord]
    next_rollout: int
    finished: Annotated[list[dict[str, Any]], operator.add]
    usage: Annotated[dict[str, float], add_usage]
    intervals: Annotated[list[list[float]], operator.add]
    errors: Annotated[list[dict[str, Any]], operator.add]
    stop_reason: str
    limits_hit: list[str]
    candidates: list[dict[str, Any]]
    verification: dict[str, Any]
    answer: str | None
    confidence: float
    started: float
    result: dict[str, Any]


class SearchInput(TypedDict):
    """What the controller graph takes (its ``input_schema``): everything else in
    :class:`RStarState` is the search's own, reset by its first node."""

    question: str
    config: dict[str, Any]


class SearchOutput(RStarState, total=False):
    """What the controller graph returns (its ``output_schema``): the ``result``, plus the
    search state that observers stream (the tree as it grows, usage, candidates)."""


def config_from_state(data: Mapping[str, Any] | None) -> RStarConfig:
    """The search's validated config.

    Hydrated once per search: :class:`~langchain_rstar.chain.RStarChain` runs the graph with
    its validated :class:`RStarConfig` as the LangGraph run's ``context`` (the graph's
    ``context_schema``), and every node, ``Send`` task and the verification subgraph read that
    one object through :func:`langgraph.runtime.get_runtime`. A graph run without a context
    (LangGraph Server's graph, which resolves ``num_rollouts`` into the state; a user's own
    ``graph.invoke({"question": ..., "config": {...}})``) validates ``data``, the state's
    ``config`` dict, where it is read: about 12 us, so no cache and no module state.
    """
    try:
        context = getattr(get_runtime(), "context", None)
    except RuntimeError:  # called outside a graph run (unit tests call nodes directly)
        context = None
    if isinstance(context, RStarConfig):
        return context
    return RStarConfig.model_validate(dict(data or {}))


def has_fatal(state: Mapping[str, Any]) -> bool:
    return any(err.get("fatal") for err in state.get("errors", ()))
