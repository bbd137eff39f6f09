"""Candidates and the one final-answer rule.

A candidate is a trajectory ending in a solution node (:func:`build_candidates`). Which
nodes make the pool is ``RStarConfig.candidate_pool``: ``terminal`` (``fast``) takes each
terminal solution node once, weighted by its confidence; ``tree_and_rollouts`` (``paper``)
is the reference code's pool (``find_valid_solution_nodes`` over the final tree, which stops
at the first solution node of a branch, plus the end node of every rollout, as its
``do_eval.py`` and ``do_discriminate.py`` read them), each node carrying its ``frequency``
(1 for being in the tree, plus 1 per rollout that ended on it).

Every place that names a winner uses :func:`final_answer` (the answer with the largest
summed weight, its confidence the share of the total weight) and :func:`winning_candidate`
(the trajectory shown for it): the generator majority in :func:`collect` (weight
:func:`generator_weight_key`), the verified majority in :mod:`langchain_rstar.search.verify`,
progress events and the result in :mod:`langchain_rstar.chain`. Grouping by equivalent answer
is :func:`weighted_majority`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.answers.tasks import registry_version
from langchain_rstar.config import RStarConfig
from langchain_rstar.result import Candidate
from langchain_rstar.search.actions import is_solution
from langchain_rstar.search.state import ROOT_ID, RStarState, config_from_state, has_fatal

__all__ = [
    "build_candidates",
    "checker_for",
    "collect",
    "final_answer",
    "generator_candidates",
    "generator_weight_key",
    "path_ids",
    "weighted_majority",
    "winning_candidate",
]


def checker_for(task: str, extraction: str = "marker") -> AnswerChecker:
    """The answer checker of a task and extraction mode (cached: checkers are stateless).

    The cache key includes the task registry's version, so a re-registered custom
    :class:`~langchain_rstar.TaskSpec` name gets its new checker.
    """
    return _checker_cached(task, extraction, registry_version())


@lru_cache(maxsize=16)
def _checker_cached(task: str, extraction: str, _version: int) -> AnswerChecker:
    return get_checker(task, extraction=extraction)


def path_ids(nodes: Mapping[str, Mapping[str, Any]], node_id: str) -> list[str]:
    """Ids from the root to ``node_id`` (following parent links)."""
    path: list[str] = []
    current: str | None = node_id
    while current is not None:
        path.append(current)
        current = nodes[current].get("parent")
    return path[::-1]


def _step_of(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "node_id": record["id"],
        "type": record.get("type", ""),
        "action": record.get("action", ""),
        "text": record.get("text", ""),
        "subquestion": record.get("subquestion"),
        "answer": record.get("answer"),
    }


def _readable(record: Mapping[str, Any], checker: AnswerChecker) -> bool:
    answer = record.get("answer")
    return answer is not None and checker.normalize(answer) is not None


def _end_answer(record: Mapping[str, Any], checker: AnswerChecker) -> str | None:
    """The answer a rollout's end node gives: its own, else what its text yields.

    The reference's evaluator reads every end node's last step (``do_eval.py``), so with its
    extraction (``answer_extraction="reference"``: the last number when no "answer is") a
    thought or an intermediate sub-answer cut by the depth limit still votes; with the
    ``marker`` extraction such text yields nothing.
    """
    if _readable(record, checker):
        return str(record["answer"])
    if record.get("type") not in ("thought", "subquestion", "reanswer", "answer"):
        return None
    answer = checker.extract(str(record.get("text") or ""))
    return answer if answer is not None and checker.normalize(answer) is not None else None


def _pool(
    nodes: Mapping[str, Mapping[str, Any]],
    checker: AnswerChecker,
    finished: Sequence[Mapping[str, Any]] | None,
) -> tuple[dict[str, int], dict[str, str]]:
    """The ``tree_and_rollouts`` pool: node id -> frequency (see the module docs), and the
    answers of end nodes that do not state one themselves."""
    counts: dict[str, int] = {}
    answers: dict[str, str] = {}
    todo = [ROOT_ID] if ROOT_ID in nodes else []
    while todo:
        node_id = todo.pop()
        record = nodes[node_id]
        if is_solution(record):
            if _readable(record, checker):
                counts[node_id] = 1
            continue  # the reference does not look below a solution node
        todo.extend(reversed(list(record.get("children") or [])))
    for rollout in finished or ():
        path = rollout.get("path") or []
        end = nodes.get(path[-1]) if path else None
        answer = _end_answer(end, checker) if end is not None else None
        if end is not None and answer is not None:
            counts[end["id"]] = counts.get(end["id"], 0) + 1
            if end.get("answer") != answer:
                answers[end["id"]] = answer
    return counts, answers


def build_candidates(
    nodes: Mapping[str, Mapping[str, Any]],
    checker: AnswerChecker,
    finished: Sequence[Mapping[str, Any]] | None = None,
    pool: str = "terminal",
) -> list[dict[str, Any]]:
    """The candidate trajectories of the generator's pool (best first).

    ``pool="terminal"``: every terminal solution node with a readable answer, once.
    ``pool="tree_and_rollouts"``: the reference's pool over the tree and the ``finished``
    rollouts, each candidate with its ``frequency``.

    ``reward`` is the mean ``Q/N`` of the trajectory's nodes (a node never visited counts
    its own reward); ``confidence`` is the self-consistency of the terminal answer.
    """
    answers: dict[str, str] = {}
    if pool == "tree_and_rollouts":
        counts: dict[str, int] | None
        counts, answers = _pool(nodes, checker, finished)
        chosen: Sequence[str] = list(counts)
    else:
        counts = None
        chosen = [i for i, r in nodes.items() if is_solution(r) and _readable(r, checker)]
    out: list[dict[str, Any]] = []
    for node_id in chosen:
        record = nodes[node_id]
        answer = answers.get(node_id, record.get("answer"))
        ids = path_ids(nodes, node_id)
        steps = [nodes[i] for i in ids[1:]]
        values = []
        for step in steps:
            n = float(step.get("visits", 0.0))
            values.append(
                float(step.get("value", 0.0)) / n if n > 0 else float(step.get("reward", 0.0))
            )
        cand: dict[str, Any] = {
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
        if counts is not None:
            cand["frequency"] = counts[node_id]
        out.append(cand)
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


def final_answer(
    candidates: Sequence[Mapping[str, Any]],
    checker: AnswerChecker,
    weight_key: str = "confidence",
) -> tuple[str | None, float]:
    """The final-answer rule: the answer with the largest summed ``weight_key``.

    Its confidence is its share of the total weight (0.0 when the total is 0). ``(None,
    0.0)`` when there is no candidate.
    """
    ranking = weighted_majority(candidates, checker, weight_key)
    if not ranking:
        return None, 0.0
    total = sum(w for _, w in ranking)
    return ranking[0][0], ranking[0][1] / total if total else 0.0


def winning_candidate(
    candidates: Sequence[Candidate], answer: str | None, checker: AnswerChecker
) -> Candidate | None:
    """The candidate whose trajectory is shown for ``answer``.

    Among the candidates reaching an answer equivalent to ``answer``: the highest verified
    score, then ``confidence * reward``, then confidence (the first such on ties).
    """
    if answer is None:
        return None
    winners = [c for c in candidates if checker.equivalent(c.answer, answer)]
    if not winners:
        return None
    return max(winners, key=lambda c: (c.score, c.confidence * c.reward, c.confidence))


def generator_weight_key(cfg: RStarConfig) -> str:
    """The candidate field the generator majority sums: ``frequency`` for the reference's
    pool (counted by frequency), else ``confidence``."""
    return "frequency" if cfg.candidate_pool == "tree_and_rollouts" else "confidence"


def generator_candidates(
    values: Mapping[str, Any], cfg: RStarConfig
) -> tuple[list[dict[str, Any]], str | None, float]:
    """The pool of a search state (``nodes`` and ``finished``) and its generator majority."""
    checker = checker_for(cfg.task, cfg.answer_extraction)
    candidates = build_candidates(
        values.get("nodes") or {}, checker, values.get("finished"), cfg.candidate_pool
    )
    answer, confidence = final_answer(candidates, checker, generator_weight_key(cfg))
    return candidates, answer, confidence


#: The name a spent ``max_wall_seconds`` budget has in ``limits_hit``.
WALL_LIMIT = "max_wall_seconds"


def collect(state: RStarState) -> dict[str, Any]:
    """Controller node: the candidates and the generator majority (before verification)."""
    cfg = config_from_state(state.get("config"))
    candidates, answer, confidence = generator_candidates(state, cfg)
    stop_reason = state.get("stop_reason") or ("backend_dead" if has_fatal(state) else "budget")
    if not candidates and stop_reason in ("budget", "early_stop"):
        # The whole budget ran but nothing usable came out: say so, invent no answer.
        stop_reason = "no_candidates"
    reason = "no discriminator" if candidates else "no candidates"
    out_of_time = WALL_LIMIT in (state.get("limits_hit") or [])
    if out_of_time and candidates:
        # The wall-time budget is spent: verification (which max_wall_seconds would not
        # bound) is skipped and the generator majority stands (route_after_collect).
        reason = "max_wall_seconds reached: verification skipped, generator majority kept"
    return {
        "candidates": candidates,
        "answer": answer,
        "confidence": confidence,
        "stop_reason": stop_reason,
        "verification": {
            "mode": "none",
            "ran": False,
            "skipped": out_of_time and bool(candidates),
            "fell_back": False,
            "reason": reason,
            "generator_answer": answer,
            "generator_confidence": confidence,
        },
    }
