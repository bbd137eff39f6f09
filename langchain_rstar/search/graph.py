"""The rStar controller: MCTS over the five actions as a LangGraph ``StateGraph``.

Graph shape::

    init -> select --Send per (leaf, legal action)--> A1..A5 -> advance --Send--> A1..A5 ...
                 \\                                            \\-> collect (budget spent)
                  \\-> backprop (a wave that needs no expansion) --Send--> A1..A5 | collect
    collect -> verify (subgraph, when a discriminator is set) -> END

``select`` picks ``rollout_batch`` leaves by UCT with virtual loss; the conditional edge fans
out with ``Send`` to the action nodes legal for each leaf; ``advance`` links the new children,
then continues each rollout's simulation (random child) until it reaches a terminal node or
another node to expand. When every rollout of the wave is done, ``advance`` adds each
rollout's reward along its path and selects the next wave in the same step (one superstep
per expansion level, not three); ``backprop`` does the same for a wave whose rollouts all
ended on terminal or exhausted leaves without expanding anything. State is
plain, id-keyed records (see :mod:`langchain_rstar.search.state`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.config import RStarConfig, top_p_is_costly
from langchain_rstar.result import NodeRecord
from langchain_rstar.sampling.sampler import BackendDeadError, SampleOutcome, Sampler
from langchain_rstar.search import mcts
from langchain_rstar.search._untraced import InlineRoute, QuietLambda, control_node
from langchain_rstar.search.actions import (
    ACTION_NODE_NAMES,
    ActionGen,
    ActionOutput,
    ExpandTask,
    child_sort_key,
    is_solution,
    legal_actions,
    run_action,
)
from langchain_rstar.search.state import RolloutRecord, RStarState, add_usage, merge_nodes

__all__ = [
    "ROOT_ID",
    "build_graph",
    "drive",
    "adrive",
    "config_from_state",
    "path_ids",
    "build_candidates",
    "weighted_majority",
    "recursion_limit",
]

ROOT_ID = "0"


@lru_cache(maxsize=64)
def _config_cached(items: tuple[tuple[str, Any], ...]) -> RStarConfig:
    return RStarConfig.model_validate(dict(items))


#: The last (config dict, config) pair: every task of a search passes an equal dict (the
#: state's ``config`` channel), and comparing two dicts is cheaper than sorting one.
_last_config: tuple[dict[str, Any], RStarConfig] | None = None


def config_from_state(data: Mapping[str, Any] | None) -> RStarConfig:
    """The validated config stored (as a dict) in the graph state."""
    global _last_config
    last = _last_config
    if last is not None and data is not None and last[0] == data:
        return last[1]
    cfg = _config_cached(tuple(sorted((data or {}).items())))
    if data is not None:
        _last_config = (dict(data), cfg)
    return cfg


def recursion_limit(config: RStarConfig) -> int:
    """Supersteps a search needs at most: set by the package, never by the user."""
    waves = -(-config.num_rollouts // config.rollout_batch)
    per_wave = 2 * (config.max_depth + 2) + 3
    return waves * per_wave + 50


# --------------------------------------------------------------------------------------
# Driving the action generators
# --------------------------------------------------------------------------------------
def _account(acc: dict[str, Any], outcome: SampleOutcome) -> None:
    acc["usage"] = add_usage(acc["usage"], outcome.usage)
    acc["intervals"].extend(outcome.intervals)


def drive(gen: ActionGen, sampler: Sampler, config: RunnableConfig | None) -> dict[str, Any]:
    """Run an action generator synchronously against ``sampler``."""
    acc: dict[str, Any] = {"usage": {}, "intervals": []}
    try:
        call = next(gen)
        while True:
            outcome = sampler.sample(call, config)
            _account(acc, outcome)
            call = gen.send(outcome)
    except StopIteration as stop:
        out: ActionOutput = stop.value
        acc["output"] = out
    return acc


async def adrive(gen: ActionGen, sampler: Sampler, config: RunnableConfig | None) -> dict[str, Any]:
    """Run an action generator asynchronously against ``sampler``."""
    acc: dict[str, Any] = {"usage": {}, "intervals": []}
    try:
        call = next(gen)
        while True:
            outcome = await sampler.asample(call, config)
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


def _node_metadata(record: Mapping[str, Any], rollout: int | None = None) -> dict[str, Any]:
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


class _ActionRunnable(QuietLambda):
    """An action node whose run carries the expanded tree node in its trace metadata.

    LangGraph gives every ``Send`` task its parent's config, so the per-task metadata (node
    id, parent, depth, action, rollout, Q, N) is patched in here, before the run starts.
    In a search nothing observes, the action runs without a run of its own
    (:class:`~langchain_rstar.search._untraced.QuietLambda`).
    """

    def _observed_config(self, task: Any, config: RunnableConfig | None) -> RunnableConfig:
        if not isinstance(task, Mapping) or not task.get("path"):
            return ensure_config(config)
        meta = _node_metadata(task["path"][-1], task.get("rollout"))
        meta["rstar_action"] = task.get("action")
        config = ensure_config(config)
        return {**config, "metadata": {**config.get("metadata", {}), **meta}}

    # LangGraph streams nodes (e.g. under ``astream_events``) instead of invoking them.
    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        yield from super().stream(input, self._observed_config(input, config), **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        async for chunk in super().astream(input, self._observed_config(input, config), **kwargs):
            yield chunk


@lru_cache(maxsize=64)
def _with_preset(cfg: RStarConfig, preset: str) -> RStarConfig:
    return cfg.model_copy(update={"sampling_preset": preset})


def _action_node(action: str, sampler: Sampler) -> RunnableLambda:
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
        cfg = _cfg(task)
        gen = run_action(action, task, cfg, _checker(cfg.task))
        try:
            acc = drive(gen, sampler, config)
        except BackendDeadError as exc:
            return _fatal_update(task, action, exc)
        return _action_update(task, action, acc)

    async def _async(task: ExpandTask, config: RunnableConfig) -> dict[str, Any]:
        cfg = _cfg(task)
        gen = run_action(action, task, cfg, _checker(cfg.task))
        try:
            acc = await adrive(gen, sampler, config)
        except BackendDeadError as exc:
            return _fatal_update(task, action, exc)
        return _action_update(task, action, acc)

    return _ActionRunnable(_sync, afunc=_async, name=name)


@lru_cache(maxsize=8)
def _checker(task: str) -> AnswerChecker:
    return get_checker(task)


# --------------------------------------------------------------------------------------
# Controller nodes
# --------------------------------------------------------------------------------------
def path_ids(nodes: Mapping[str, Mapping[str, Any]], node_id: str) -> list[str]:
    """Ids from the root to ``node_id`` (following parent links)."""
    path: list[str] = []
    current: str | None = node_id
    while current is not None:
        path.append(current)
        current = nodes[current].get("parent")
    return path[::-1]


def _has_fatal(state: Mapping[str, Any]) -> bool:
    return any(err.get("fatal") for err in state.get("errors", ()))


def _init(state: RStarState) -> dict[str, Any]:
    if ROOT_ID in (state.get("nodes") or {}):
        return {}
    root: NodeRecord = {
        "id": ROOT_ID,
        "parent": None,
        "type": "root",
        "action": "",
        "text": state["question"],
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
        "nodes": {ROOT_ID: root},
        "next_rollout": 0,
        "wave": [],
        "started": time.time(),
        "stop_reason": "",
        "limits_hit": [],
    }


def _limits(state: RStarState, cfg: RStarConfig) -> list[str]:
    """Names of the limits the search has reached (checked by ``select``, between waves)."""
    hit: list[str] = []
    nodes = state.get("nodes") or {}
    usage = state.get("usage") or {}
    if cfg.max_nodes is not None and len(nodes) >= cfg.max_nodes:
        hit.append("max_nodes")
    tokens = usage.get("completion_tokens", 0.0)
    if cfg.max_total_tokens is not None and tokens >= cfg.max_total_tokens:
        hit.append("max_total_tokens")
    elapsed = time.time() - state.get("started", time.time())
    if cfg.max_wall_seconds is not None and elapsed >= cfg.max_wall_seconds:
        hit.append("max_wall_seconds")
    return hit


#: Node type each action creates.
_CHILD_TYPE = {
    "A1": "thought",
    "A2": "answer",
    "A3": "subquestion",
    "A4": "reanswer",
    "A5": "rephrase",
}


def _action_weight(action: str, cfg: RStarConfig) -> float:
    """Most generator-majority weight one run of ``action`` can add to a single answer.

    A1: ``d`` distinct thoughts that state answer X, out of ``a`` samples agreeing on X,
    each weigh ``a / n`` (``n = num_a1_steps``, ``d <= a <= n``): at most ``n`` in all.
    A2: one answer node, confidence at most 1. A3: at most ``num_subquestions`` final
    sub-questions, each weighing at most 1. A4 copies its parent's ``final`` flag, and a
    final sub-question is terminal (never expanded), so A4 never creates a candidate; A5
    creates none either.
    """
    if action == "A1":
        return float(cfg.num_a1_steps)
    if action == "A2":
        return 1.0
    if action == "A3":
        return float(cfg.num_subquestions)
    return 0.0


@lru_cache(maxsize=64)
def _subtree_expansion_weight(node_type: str, cfg: RStarConfig) -> float:
    """Most weight one expansion of a ``node_type`` node, or of any descendant, can add."""
    seen: set[str] = set()
    todo = [node_type]
    best = 0.0
    while todo:
        kind = todo.pop()
        if kind in seen:
            continue
        seen.add(kind)
        actions = legal_actions({"type": kind}, cfg)
        best = max(best, sum(_action_weight(a, cfg) for a in actions))
        todo.extend(_CHILD_TYPE[a] for a in actions)
    return best


def _max_new_weight_per_rollout(
    cfg: RStarConfig, nodes: Mapping[str, Mapping[str, Any]] | None = None
) -> float:
    """Most generator-majority weight one more rollout can add to any single answer.

    A rollout expands its selected leaf and then the random children it walks through, one
    node per depth, until a terminal node: a leaf at depth ``d`` leads to at most
    ``max_depth - d`` expansions (children at ``max_depth`` are terminal). Every node a
    future rollout can expand is an unexpanded, non-terminal node of the tree now (the
    *frontier*) or a descendant of one, which is deeper and whose type can only offer the
    actions reachable from the frontier node's type (below a one-step thought only A1/A2).
    So the bound is the maximum over the frontier of
    ``(max_depth - depth) * _subtree_expansion_weight(type)``; 0 when the frontier is
    empty (the tree is exhausted). Without ``nodes``: the bound for a fresh tree.
    """
    if nodes is None:
        return cfg.max_depth * _subtree_expansion_weight("root", cfg)
    best = 0.0
    for record in nodes.values():
        if record.get("expanded") or record.get("terminal"):
            continue
        steps = cfg.max_depth - int(record.get("depth", 0))
        if steps > 0:
            weight = steps * _subtree_expansion_weight(str(record.get("type")), cfg)
            best = max(best, weight)
    return best


def _generator_ranking(
    nodes: Mapping[str, Mapping[str, Any]], checker: AnswerChecker
) -> list[float]:
    """Group weights of the generator majority, largest first, without building candidates.

    The same sums as ``weighted_majority(build_candidates(nodes))``: every solution node
    with a readable answer adds its confidence to its answer's group. Answers with equal
    keys are merged first (equal keys are equivalent), then keys by
    :meth:`AnswerChecker.equivalent`, which, being a function of the keys, gives the groups
    :func:`weighted_majority` forms whenever equivalence is transitive over the answers
    present (always for exact keys; tolerance-based matches of nearly equal numbers are the
    theoretical exception).
    """
    by_key: dict[str, list[Any]] = {}
    for record in nodes.values():
        if not is_solution(record):
            continue
        answer = record.get("answer")
        key = checker.normalize(answer)
        if key is None:
            continue
        entry = by_key.get(key)
        if entry is None:
            by_key[key] = [answer, float(record.get("confidence", 0.0) or 0.0)]
        else:
            entry[1] += float(record.get("confidence", 0.0) or 0.0)
    groups: list[list[Any]] = []
    for answer, weight in by_key.values():
        for group in groups:
            if checker.equivalent(group[0], answer):
                group[1] += weight
                break
        else:
            groups.append([answer, weight])
    return sorted((g[1] for g in groups), reverse=True)


def _early_stop(state: RStarState, cfg: RStarConfig) -> bool:
    """Whether the generator majority can no longer change within the remaining budget.

    The generator's answer is the answer with the largest summed confidence over solution
    nodes (:func:`weighted_majority`). Confidences are fixed when a node is created, so
    only new solution nodes change the sums, and only by adding weight. With ``R``
    rollouts left, any one answer (the runner-up, or one not seen yet, which starts from
    0) can gain at most ``R * _max_new_weight_per_rollout(cfg, nodes)``. The search stops
    when the leader's margin over the runner-up is strictly larger than that: no
    continuation within the budget can change the generator majority (ties are broken by
    candidate order, so equality does not stop). It guarantees nothing about mutual
    verification, which re-scores candidates by their final Q/N.

    The bound is a worst case (every expansion adding its full weight to one answer), so it
    mostly fires near the end of the budget or once the tree is exhausted.
    """
    if not cfg.early_stop:
        return False
    remaining = cfg.num_rollouts - state.get("next_rollout", 0)
    if remaining <= 0:
        return False
    nodes = state.get("nodes") or {}
    ranking = _generator_ranking(nodes, _checker(cfg.task))
    if not ranking:
        return False
    lead = ranking[0]
    runner_up = ranking[1] if len(ranking) > 1 else 0.0
    if lead - runner_up <= 0.0:
        return False
    return lead - runner_up > remaining * _max_new_weight_per_rollout(cfg, nodes)


def _select_wave(state: Mapping[str, Any], cfg: RStarConfig) -> dict[str, Any]:
    """Choose the next wave of rollouts by UCT (or why the search stops)."""
    if _has_fatal(state):
        return {"wave": [], "stop_reason": "backend_dead"}
    hit = _limits(state, cfg)  # type: ignore[arg-type]
    if hit:
        return {"wave": [], "stop_reason": "limit", "limits_hit": hit}
    if _early_stop(state, cfg):  # type: ignore[arg-type]
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
        wave.append(_rollout_status(nodes, index, path, cfg))
    return {"wave": wave}


def _make_select() -> Any:
    def select(state: RStarState) -> dict[str, Any]:
        return _select_wave(state, config_from_state(state.get("config")))

    return select


def _rollout_status(
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


def _route_expansions(state: RStarState) -> list[Send] | str:
    if _has_fatal(state):
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
            sends.append(Send(ACTION_NODE_NAMES[action], task))
    return sends or "backprop"


def _advance(state: RStarState, config: RunnableConfig) -> dict[str, Any]:
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
    fatal = _has_fatal(state)
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
    out = _finish_wave(state, view, new_wave, cfg, config)
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
    meta = _node_metadata(leaf, fin["rollout"])
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


def _finish_wave(
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
    if not _has_fatal(state) and next_rollout < cfg.num_rollouts:
        view = {**state, "nodes": merged, "next_rollout": next_rollout}
        out.update(_select_wave(view, cfg))
    return out


def _backprop(state: RStarState, config: RunnableConfig) -> dict[str, Any]:
    """Backpropagate a wave that needed no expansion and select the next one."""
    cfg = config_from_state(state.get("config"))
    return _finish_wave(state, state["nodes"], list(state.get("wave") or []), cfg, config)


# --------------------------------------------------------------------------------------
# Candidates and generator majority
# --------------------------------------------------------------------------------------
def _step_of(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "node_id": record["id"],
        "type": record.get("type", ""),
        "action": record.get("action", ""),
        "text": record.get("text", ""),
        "subquestion": record.get("subquestion"),
        "answer": record.get("answer"),
    }


def build_candidates(
    nodes: Mapping[str, Mapping[str, Any]], checker: AnswerChecker
) -> list[dict[str, Any]]:
    """Every terminal node with an answer, as a candidate trajectory (best first).

    ``reward`` is the mean ``Q/N`` of the trajectory's nodes (a node never visited counts
    its own reward); ``confidence`` is the self-consistency of the terminal answer.
    """
    out: list[dict[str, Any]] = []
    for node_id, record in nodes.items():
        if not is_solution(record):
            continue
        answer = record.get("answer")
        if checker.normalize(answer) is None:
            continue
        ids = path_ids(nodes, node_id)
        steps = [nodes[i] for i in ids[1:]]
        values = []
        for step in steps:
            n = float(step.get("visits", 0.0))
            values.append(
                float(step.get("value", 0.0)) / n if n > 0 else float(step.get("reward", 0.0))
            )
        out.append(
            {
                "node_id": node_id,
                "answer": answer,
                "reward": sum(values) / len(values) if values else 0.0,
                "confidence": float(record.get("confidence", 0.0)),
                "score": 0.0,
                "trajectory": [_step_of(s) for s in steps],
                "masks": [],
                "agreement": None,
                "consistent": None,
            }
        )
    out.sort(key=lambda c: (-c["confidence"] * c["reward"], -c["confidence"], c["node_id"]))
    return out


def weighted_majority(
    candidates: Sequence[Mapping[str, Any]],
    checker: AnswerChecker,
    weight_key: str = "confidence",
) -> list[tuple[str, float]]:
    """Answers ranked by the summed weight of the candidates that reach them.

    A candidate joins the first group whose answer is equivalent to its own. Equivalence is
    a function of the voting keys (:meth:`AnswerChecker.normalize`), so the group a key
    joins is remembered and the comparisons run once per distinct key, not per candidate.
    """
    groups: list[list[Any]] = []
    joined: dict[str, int] = {}
    for cand in candidates:
        weight = float(cand.get(weight_key) or 0.0)
        answer = cand["answer"]
        try:
            key = checker.normalize(answer)
        except Exception:  # noqa: BLE001 - unreadable: equivalent to nothing
            key = None
        if key is None:
            groups.append([answer, weight])
            continue
        index = joined.get(key)
        if index is None:
            for i, group in enumerate(groups):
                if checker.equivalent(group[0], answer):
                    index = i
                    break
            else:
                index = len(groups)
                groups.append([answer, 0.0])
            joined[key] = index
        groups[index][1] += weight
    groups.sort(key=lambda g: -g[1])
    return [(str(g[0]), float(g[1])) for g in groups]


def _collect(state: RStarState) -> dict[str, Any]:
    cfg = config_from_state(state.get("config"))
    checker = _checker(cfg.task)
    candidates = build_candidates(state.get("nodes") or {}, checker)
    ranking = weighted_majority(candidates, checker)
    total = sum(w for _, w in ranking)
    answer, confidence = (
        (ranking[0][0], ranking[0][1] / total if total else 0.0) if ranking else (None, 0.0)
    )
    stop_reason = state.get("stop_reason") or ("backend_dead" if _has_fatal(state) else "budget")
    if not candidates and stop_reason in ("budget", "early_stop"):
        # The whole budget ran but nothing usable came out: say so, invent no answer.
        stop_reason = "no_candidates"
    return {
        "candidates": candidates,
        "answer": answer,
        "confidence": confidence,
        "stop_reason": stop_reason,
        "verification": {
            "mode": "none",
            "ran": False,
            "skipped": False,
            "fell_back": False,
            "reason": "no discriminator" if candidates else "no candidates",
            "generator_answer": answer,
            "generator_confidence": confidence,
        },
    }


def _route_after_collect(state: RStarState) -> str:
    # A dead backend ends the search: verification would only fail again.
    if _has_fatal(state) or not state.get("candidates"):
        return END
    return "verify"


# --------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------
def build_graph(
    generator: Sampler,
    discriminator: Sampler | None = None,
    *,
    checkpointer: Any = None,
    name: str = "rstar",
) -> Any:
    """Compile the controller graph.

    Args:
        generator: sampler of the generator model.
        discriminator: sampler of the discriminator model; None skips mutual verification
            (the answer is the generator's weighted majority).
        checkpointer: optional LangGraph checkpointer.
        name: the compiled graph's name.

    Returns:
        The compiled graph (a LangGraph ``CompiledStateGraph``).
    """
    builder = StateGraph(RStarState)
    builder.add_node("init", control_node(_init, "init"))
    builder.add_node("select", control_node(_make_select(), "select"))
    for action in ("A1", "A2", "A3", "A4", "A5"):
        builder.add_node(ACTION_NODE_NAMES[action], _action_node(action, generator))
    builder.add_node("advance", control_node(_advance, "advance"))
    builder.add_node("backprop", control_node(_backprop, "backprop"))
    builder.add_node("collect", control_node(_collect, "collect"))
    action_names = list(ACTION_NODE_NAMES.values())
    route = InlineRoute(_route_expansions)
    builder.add_edge(START, "init")
    builder.add_edge("init", "select")
    builder.add_conditional_edges("select", route, [*action_names, "backprop", "collect"])
    for node in action_names:
        builder.add_edge(node, "advance")
    builder.add_conditional_edges("advance", route, [*action_names, "backprop", "collect"])
    builder.add_conditional_edges("backprop", route, [*action_names, "backprop", "collect"])
    if discriminator is not None:
        from langchain_rstar.search.verify import build_verify_graph

        builder.add_node("verify", build_verify_graph(discriminator))
        builder.add_conditional_edges("collect", InlineRoute(_route_after_collect), ["verify", END])
        builder.add_edge("verify", END)
    else:
        builder.add_edge("collect", END)
    return builder.compile(checkpointer=checkpointer, name=name)
