"""The controller nodes: start the tree, select waves by UCT, advance rollouts, backpropagate.

``select`` picks ``rollout_batch`` leaves by UCT with virtual loss; :func:`route_expansions`
fans out with ``Send`` to the action nodes legal for each leaf; ``advance`` links the new
children, then continues each rollout's simulation (random child) until it reaches a
terminal node or another node to expand. When every rollout of the wave is done,
``advance`` adds each rollout's reward along its path and selects the next wave in the same
step (one superstep per expansion level, not three); ``backprop`` does the same for a wave
whose rollouts all ended on terminal or exhausted leaves without expanding anything. The
UCT math is :mod:`langchain_rstar.search.mcts`; the stop rules are
:mod:`langchain_rstar.search.budget`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config
from langgraph.types import Overwrite, Send

from langchain_rstar.config import RStarConfig
from langchain_rstar.result import NodeRecord
from langchain_rstar.search import mcts
from langchain_rstar.search.actions import (
    ACTION_NODE_NAMES,
    ExpandTask,
    child_sort_key,
    legal_actions,
)
from langchain_rstar.search.budget import early_stop, limits_hit
from langchain_rstar.search.candidates import WALL_LIMIT, path_ids
from langchain_rstar.search.drive import node_metadata
from langchain_rstar.search.question import validate_question
from langchain_rstar.search.state import (
    ROOT_ID,
    RolloutRecord,
    RStarState,
    config_from_state,
    has_fatal,
    merge_nodes,
)

__all__ = [
    "advance",
    "backprop",
    "init",
    "make_select",
    "route_after_collect",
    "route_expansions",
    "select_wave",
]


def init(state: RStarState) -> dict[str, Any]:
    """Check the question and start a fresh tree.

    Every channel the search writes is reset here (reducer channels overwritten), so a
    thread that held an earlier search starts clean; a search resumed from a checkpoint
    does not run ``init`` again.
    """
    cfg = config_from_state(state.get("config"))
    question = validate_question(state.get("question"), cfg.max_question_chars)
    root: NodeRecord = {
        "id": ROOT_ID,
        "parent": None,
        "type": "root",
        "action": "",
        "text": question,
        "answer": None,
        "confidence": 0.0,
        "samples": 0,
        "depth": 0,
        "visits": 0.0,
        "value": 0.0,
        "reward": 0.0,
        "terminal": False,
        "expanded": False,
        "children": [],
        "rollout": 0,
    }
    return {
        "question": question,
        "nodes": Overwrite({ROOT_ID: root}),
        "finished": Overwrite([]),
        "usage": Overwrite({}),
        "intervals": Overwrite([]),
        "errors": Overwrite([]),
        "next_rollout": 0,
        "wave": [],
        "started": time.time(),
        "stop_reason": "",
        "limits_hit": [],
        "candidates": [],
        "verification": {},
        "answer": None,
        "confidence": 0.0,
        "result": {},
    }


def select_wave(state: Mapping[str, Any], cfg: RStarConfig) -> dict[str, Any]:
    """Choose the next wave of rollouts by UCT (or why the search stops)."""
    if has_fatal(state):
        return {"wave": [], "stop_reason": "backend_dead"}
    hit = limits_hit(state, cfg)  # type: ignore[arg-type]
    if hit:
        return {"wave": [], "stop_reason": "limit", "limits_hit": hit}
    if early_stop(state, cfg):  # type: ignore[arg-type]
        return {"wave": [], "stop_reason": "early_stop"}
    nodes = state["nodes"]
    start = state.get("next_rollout", 0)
    count = min(cfg.rollout_batch, cfg.num_rollouts - start)
    virtual: dict[str, float] = {}
    wave: list[RolloutRecord] = []
    for index in range(start, start + count):
        rng = mcts.rng_for(cfg.seed, "select", index)
        path = mcts.select_path(nodes, ROOT_ID, cfg.exploration_weight, rng, virtual)
        mcts.apply_virtual_loss(virtual, path, cfg.virtual_loss)
        wave.append(rollout_status(nodes, index, path, cfg))
    return {"wave": wave}


def make_select() -> Any:
    def select(state: RStarState) -> dict[str, Any]:
        return select_wave(state, config_from_state(state.get("config")))

    return select


def rollout_status(
    nodes: Mapping[str, NodeRecord], index: int, path: list[str], cfg: RStarConfig
) -> RolloutRecord:
    leaf = nodes[path[-1]]
    if leaf.get("terminal"):
        return {
            "index": index,
            "path": path,
            "status": "done",
            "reward": float(leaf.get("reward", 0.0)),
        }
    if leaf.get("expanded") or not legal_actions(leaf, cfg):
        return {"index": index, "path": path, "status": "done", "reward": 0.0}
    return {"index": index, "path": path, "status": "expand", "reward": 0.0}


def route_expansions(state: RStarState) -> list[Send] | str:
    if has_fatal(state):
        return "collect"
    wave = state.get("wave") or []
    if not wave:
        return "collect"
    cfg_dict = state.get("config") or {}
    cfg = config_from_state(cfg_dict)
    nodes = state["nodes"]
    sends: list[Send] = []
    seen: set[str] = set()
    for rollout in wave:
        if rollout["status"] != "expand":
            continue
        leaf_id = rollout["path"][-1]
        if leaf_id in seen:
            continue
        seen.add(leaf_id)
        records = [nodes[i] for i in path_ids(nodes, leaf_id)]
        for action in legal_actions(nodes[leaf_id], cfg):
            task: ExpandTask = {
                "node_id": leaf_id,
                "action": action,
                "question": state["question"],
                "path": records,
                "rollout": rollout["index"],
                "config": cfg_dict,
            }
            if cfg.max_wall_seconds is not None:
                task["deadline"] = state.get("started", time.time()) + cfg.max_wall_seconds
            sends.append(Send(ACTION_NODE_NAMES[action], task))
    return sends or "backprop"


def advance(state: RStarState, config: RunnableConfig) -> dict[str, Any]:
    cfg = config_from_state(state.get("config"))
    nodes = state["nodes"]
    wave = state.get("wave") or []
    leaves = {r["path"][-1] for r in wave if r["status"] == "expand"}
    children_of: dict[str, list[str]] = {leaf: [] for leaf in leaves}
    for node_id, record in nodes.items():
        parent = record.get("parent")
        if parent in children_of:
            children_of[parent].append(node_id)
    updates: dict[str, dict[str, Any]] = {}
    fatal = has_fatal(state)
    for leaf, kids in children_of.items():
        kids.sort(key=child_sort_key)
        update: dict[str, Any] = {"expanded": True, "children": kids}
        if not kids and not fatal:
            # Nothing usable came back: a dead end, never selected again.
            update.update(terminal=True, reward=0.0, dead=True)
        if kids or not fatal:
            updates[leaf] = update
    view = merge_nodes(nodes, updates)
    new_wave: list[RolloutRecord] = []
    for rollout in wave:
        if rollout["status"] == "done" or fatal:
            new_wave.append(rollout)
            continue
        path = list(rollout["path"])
        node_id = path[-1]
        while True:
            record = view[node_id]
            if record.get("terminal"):
                status, reward = "done", float(record.get("reward", 0.0))
                break
            if not record.get("expanded"):
                if legal_actions(record, cfg):
                    status, reward = "expand", 0.0
                else:
                    status, reward = "done", 0.0
                break
            rng = mcts.rng_for(cfg.seed, "simulate", rollout["index"], len(path))
            child = mcts.random_child(view, node_id, rng)
            if child is None:
                status, reward = "done", 0.0
                break
            path.append(child)
            node_id = child
        new_wave.append(
            {"index": rollout["index"], "path": path, "status": status, "reward": reward}
        )
    if fatal or any(r["status"] != "done" for r in new_wave):
        return {"nodes": updates, "wave": new_wave}
    # The whole wave is done: backpropagate it and select the next one in this same step
    # (one superstep per expansion level instead of three).
    out = finish_wave(state, view, new_wave, cfg, config)
    for node_id, fields in out["nodes"].items():
        updates.setdefault(node_id, {}).update(fields)
    out["nodes"] = updates
    return out


def _rollout_output(journey: Mapping[str, Any]) -> dict[str, Any]:
    return {"answer": journey.get("answer"), "reward": journey.get("reward")}


#: One traced run per finished rollout (name ``rollout``), emitted where its wave ends.
_ROLLOUT_RUN = RunnableLambda(_rollout_output, name="rollout")


def _trace_rollout(
    nodes: Mapping[str, Mapping[str, Any]], fin: Mapping[str, Any], config: RunnableConfig | None
) -> None:
    """Record a finished rollout as its own run: path with Q/N, reward and answer."""
    callbacks = (config or {}).get("callbacks")
    if not getattr(callbacks, "handlers", callbacks):
        return  # nobody listens (no tracer, no handler): skip the run's cost
    leaf = nodes[fin["path"][-1]]
    meta = node_metadata(leaf, fin["rollout"])
    meta.update(rstar_action=leaf.get("action", ""), rstar_reward=fin["reward"])
    meta["rstar_answer"] = fin["answer"]
    journey = {
        "rollout": fin["rollout"],
        "path": [
            {
                "id": node_id,
                "action": nodes[node_id].get("action", ""),
                "Q": float(nodes[node_id].get("value", 0.0)),
                "N": float(nodes[node_id].get("visits", 0.0)),
            }
            for node_id in fin["path"]
        ],
        "reward": fin["reward"],
        "answer": fin["answer"],
    }
    config = ensure_config(config)
    _ROLLOUT_RUN.invoke(
        journey,
        {
            **config,
            "run_name": "rollout",
            "metadata": {**config.get("metadata", {}), **meta},
            "tags": [*config.get("tags", []), f"rollout:{fin['rollout']}"],
        },
    )


def finish_wave(
    state: Mapping[str, Any],
    nodes: Mapping[str, NodeRecord],
    wave: list[RolloutRecord],
    cfg: RStarConfig,
    config: RunnableConfig | None,
) -> dict[str, Any]:
    """Backpropagate a finished wave over ``nodes`` and select the next wave.

    Returns the state update: node deltas, the finished rollouts, the new ``next_rollout``
    and the next ``wave`` (empty, with a ``stop_reason`` where the search stops).
    """
    merged: dict[str, NodeRecord] = dict(nodes)
    updates: dict[str, dict[str, Any]] = {}
    finished: list[dict[str, Any]] = []
    done = sorted((r for r in wave if r["status"] == "done"), key=lambda r: r["index"])
    for rollout in done:
        delta = mcts.backpropagate(merged, rollout["path"], rollout["reward"])
        merged = merge_nodes(merged, delta)
        for node_id, fields in delta.items():
            updates.setdefault(node_id, {}).update(fields)
        leaf = merged[rollout["path"][-1]]
        finished.append(
            {
                "rollout": rollout["index"],
                "path": rollout["path"],
                "reward": rollout["reward"],
                "answer": leaf.get("answer") if leaf.get("terminal") else None,
            }
        )
        _trace_rollout(merged, finished[-1], config)
    next_rollout = state.get("next_rollout", 0) + len(wave)
    out: dict[str, Any] = {
        "nodes": updates,
        "wave": [],
        "next_rollout": next_rollout,
        "finished": finished,
        "usage": {"rollouts": float(len(done))},
    }
    if not has_fatal(state) and next_rollout < cfg.num_rollouts:
        view = {**state, "nodes": merged, "next_rollout": next_rollout}
        out.update(select_wave(view, cfg))
    return out


def backprop(state: RStarState, config: RunnableConfig) -> dict[str, Any]:
    """Backpropagate a wave that needed no expansion and select the next one."""
    cfg = config_from_state(state.get("config"))
    return finish_wave(state, state["nodes"], list(state.get("wave") or []), cfg, config)


def route_after_collect(state: RStarState) -> str:
    # A dead backend ends the search: verification would only fail again. A spent
    # max_wall_seconds ends it too: verification would run past the wall-time budget.
    if has_fatal(state) or not state.get("candidates"):
        return "finish"
    if WALL_LIMIT in (state.get("limits_hit") or []):
        return "finish"
    return "verify"
