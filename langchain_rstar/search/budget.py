"""Budget, limits and early-stop math of the search (pure functions, no I/O).

:func:`recursion_limit` sizes LangGraph's superstep limit from the config;
:func:`limits_hit` checks the hard limits (nodes, tokens, wall time) between waves;
:func:`early_stop` stops when the generator majority can no longer change within the
remaining rollouts, from a worst-case bound on the weight one rollout can add
(:func:`max_new_weight_per_rollout`, built on ``ActionSpec.max_weight``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from langchain_rstar.answers import AnswerChecker
from langchain_rstar.config import RStarConfig
from langchain_rstar.search.actions import ACTION_SPECS, is_solution, legal_actions
from langchain_rstar.search.candidates import (
    build_candidates,
    checker_for,
    generator_weight_key,
    weighted_majority,
)
from langchain_rstar.search.state import RStarState

__all__ = [
    "early_stop",
    "generator_ranking",
    "limits_hit",
    "max_new_weight_per_rollout",
    "recursion_limit",
    "subtree_expansion_weight",
]


def recursion_limit(config: RStarConfig) -> int:
    """Supersteps a search needs at most: set by the package, never by the user."""
    waves = -(-config.num_rollouts // config.rollout_batch)
    per_wave = 2 * (config.max_depth + 2) + 3
    return waves * per_wave + 50


def limits_hit(state: RStarState, cfg: RStarConfig) -> list[str]:
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


@lru_cache(maxsize=64)
def subtree_expansion_weight(node_type: str, cfg: RStarConfig) -> float:
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
        best = max(best, sum(ACTION_SPECS[a].max_weight(cfg) for a in actions))
        todo.extend(ACTION_SPECS[a].child_type for a in actions)
    return best


def max_new_weight_per_rollout(
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
    ``(max_depth - depth) * subtree_expansion_weight(type)``; 0 when the frontier is
    empty (the tree is exhausted). Without ``nodes``: the bound for a fresh tree.

    With ``candidate_pool="tree_and_rollouts"`` every candidate weighs its frequency: a new
    solution node weighs 1 (at most what a confidence weighs, so the per-action bounds
    hold), and the rollout's end node counts once more: 1 is added, also to an exhausted
    tree's 0.
    """
    extra = 1.0 if cfg.candidate_pool == "tree_and_rollouts" else 0.0
    if nodes is None:
        return cfg.max_depth * subtree_expansion_weight("root", cfg) + extra
    best = extra
    for record in nodes.values():
        if record.get("expanded") or record.get("terminal"):
            continue
        steps = cfg.max_depth - int(record.get("depth", 0))
        if steps > 0:
            weight = steps * subtree_expansion_weight(str(record.get("type")), cfg)
            best = max(best, weight + extra)
    return best


def generator_ranking(
    nodes: Mapping[str, Mapping[str, Any]], checker: AnswerChecker
) -> list[float]:
    """Group weights of the generator majority, largest first, without building candidates.

    The ``terminal`` pool only (``candidate_pool="tree_and_rollouts"`` ranks through
    :func:`build_candidates`). The same sums as
    ``weighted_majority(build_candidates(nodes))``: every solution node
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


def early_stop(state: RStarState, cfg: RStarConfig) -> bool:
    """Whether the generator majority can no longer change within the remaining budget.

    The generator's answer is the answer with the largest summed confidence over solution
    nodes (:func:`weighted_majority`). Confidences are fixed when a node is created, so
    only new solution nodes change the sums, and only by adding weight. With ``R``
    rollouts left, any one answer (the runner-up, or one not seen yet, which starts from
    0) can gain at most ``R * max_new_weight_per_rollout(cfg, nodes)``. The search stops
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
    checker = checker_for(cfg.task, cfg.answer_extraction)
    if cfg.candidate_pool == "tree_and_rollouts":
        pool = build_candidates(nodes, checker, state.get("finished"), cfg.candidate_pool)
        ranking = [w for _, w in weighted_majority(pool, checker, generator_weight_key(cfg))]
    else:
        ranking = generator_ranking(nodes, checker)
    if not ranking:
        return False
    lead = ranking[0]
    runner_up = ranking[1] if len(ranking) > 1 else 0.0
    if lead - runner_up <= 0.0:
        return False
    return lead - runner_up > remaining * max_new_weight_per_rollout(cfg, nodes)
