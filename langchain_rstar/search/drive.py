"""The action driver: runs the sans-IO action generators against a sampler, as graph nodes.

:func:`drive` / :func:`adrive` feed each :class:`~langchain_rstar.sampling.types.SampleCall`
an action yields to the sampler and send the outcome back; :func:`action_node` wraps that as
the graph node of one action, turning its output (or a dead backend) into a state update and
putting the expanded tree node into the run's trace metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from langchain_core.runnables import RunnableConfig

from langchain_rstar.config import RStarConfig
from langchain_rstar.errors import BackendDeadError
from langchain_rstar.llms.base import top_p_is_costly
from langchain_rstar.sampling.sampler import Sampler
from langchain_rstar.sampling.types import SampleCall, SampleOutcome
from langchain_rstar.search._untraced import NodeFunc, annotate_run
from langchain_rstar.search.actions import (
    ACTION_NODE_NAMES,
    ActionGen,
    ActionOutput,
    ExpandTask,
    run_action,
)
from langchain_rstar.search.candidates import checker_for
from langchain_rstar.search.state import add_usage, config_from_state

__all__ = ["action_node", "adrive", "drive", "node_metadata"]


def _account(acc: dict[str, Any], outcome: SampleOutcome) -> None:
    acc["usage"] = add_usage(acc["usage"], outcome.usage)
    acc["intervals"].extend(outcome.intervals)


def _with_deadline(call: SampleCall, deadline: float | None) -> SampleCall:
    return call if deadline is None else replace(call, deadline=deadline)


def drive(
    gen: ActionGen,
    sampler: Sampler,
    config: RunnableConfig | None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run an action generator synchronously against ``sampler``.

    ``deadline`` (epoch seconds, the search's ``max_wall_seconds``) goes with every call: the
    sampler abandons a call still running then.
    """
    acc: dict[str, Any] = {"usage": {}, "intervals": []}
    try:
        call = next(gen)
        while True:
            outcome = sampler.sample(_with_deadline(call, deadline), config)
            _account(acc, outcome)
            call = gen.send(outcome)
    except StopIteration as stop:
        out: ActionOutput = stop.value
        acc["output"] = out
    return acc


async def adrive(
    gen: ActionGen,
    sampler: Sampler,
    config: RunnableConfig | None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run an action generator asynchronously against ``sampler`` (see :func:`drive`)."""
    acc: dict[str, Any] = {"usage": {}, "intervals": []}
    try:
        call = next(gen)
        while True:
            outcome = await sampler.asample(_with_deadline(call, deadline), config)
            _account(acc, outcome)
            call = gen.send(outcome)
    except StopIteration as stop:
        out: ActionOutput = stop.value
        acc["output"] = out
    return acc


def _action_update(task: ExpandTask, action: str, acc: dict[str, Any]) -> dict[str, Any]:
    out: ActionOutput = acc["output"]
    errors = [
        {**err, "node_id": task["node_id"], "action": action, "rollout": task["rollout"]}
        for err in out["errors"]
    ]
    return {
        "nodes": {child["id"]: child for child in out["children"]},
        "usage": acc["usage"],
        "intervals": acc["intervals"],
        "errors": errors,
    }


def _fatal_update(task: ExpandTask, action: str, exc: BaseException) -> dict[str, Any]:
    where = {"node_id": task["node_id"], "action": action, "rollout": task["rollout"]}
    attempts = [{**err, **where} for err in getattr(exc, "errors", ())]
    return {
        "errors": [
            *attempts,
            {
                "kind": "backend_dead",
                "error": f"{type(exc).__name__}: {exc}",
                **where,
                "fatal": True,
            },
        ],
        "usage": {"llm_calls": float(len(attempts)), "failed_calls": 1.0},
    }


def node_metadata(record: Mapping[str, Any], rollout: int | None = None) -> dict[str, Any]:
    """Trace metadata of a tree node: id, parent, depth, action, rollout, Q, N (and answer)."""
    meta: dict[str, Any] = {
        "rstar_node_id": record.get("id"),
        "rstar_parent_id": record.get("parent"),
        "rstar_depth": record.get("depth", 0),
        "rstar_node_type": record.get("type", ""),
        "rstar_q": float(record.get("value", 0.0)),
        "rstar_n": float(record.get("visits", 0.0)),
        "rstar_rollout": record.get("rollout", 0) if rollout is None else rollout,
    }
    if record.get("terminal"):
        meta["rstar_terminal"] = True
        meta["rstar_answer"] = record.get("answer")
    return meta


def _task_metadata(task: ExpandTask) -> dict[str, Any]:
    meta = node_metadata(task["path"][-1], task.get("rollout"))
    meta["rstar_action"] = task.get("action")
    return meta


@lru_cache(maxsize=64)
def _with_preset(cfg: RStarConfig, preset: str) -> RStarConfig:
    return cfg.model_copy(update={"sampling_preset": preset})


def action_node(action: str, sampler: Sampler) -> NodeFunc:
    """The graph node of ``action``: drives its generator and records the expanded node.

    The node's (single) run carries the expanded tree node in its metadata (node id,
    parent, depth, action, rollout, Q, N); its model calls carry the same ids from the start.
    """
    name = ACTION_NODE_NAMES[action]
    costly: list[bool] = []  # whether top-p is costly on this sampler's model (found once)

    def _cfg(task: ExpandTask) -> RStarConfig:
        cfg = config_from_state(task["config"])
        if cfg.sampling_preset != "auto":
            return cfg
        if not costly:
            costly.append(top_p_is_costly(sampler.llm))
        return _with_preset(cfg, "fast" if costly[0] else "paper")

    def _sync(task: ExpandTask, config: RunnableConfig) -> dict[str, Any]:
        annotate_run(config, _task_metadata(task))
        cfg = _cfg(task)
        gen = run_action(action, task, cfg, checker_for(cfg.task, cfg.answer_extraction))
        try:
            acc = drive(gen, sampler, config, task.get("deadline"))
        except BackendDeadError as exc:
            return _fatal_update(task, action, exc)
        return _action_update(task, action, acc)

    async def _async(task: ExpandTask, config: RunnableConfig) -> dict[str, Any]:
        annotate_run(config, _task_metadata(task))
        cfg = _cfg(task)
        gen = run_action(action, task, cfg, checker_for(cfg.task, cfg.answer_extraction))
        try:
            acc = await adrive(gen, sampler, config, task.get("deadline"))
        except BackendDeadError as exc:
            return _fatal_update(task, action, exc)
        return _action_update(task, action, acc)

    return NodeFunc(_sync, _async, name=name)
