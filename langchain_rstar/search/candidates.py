"""Candidates and the one final-answer rule.

A candidate is a terminal trajectory with an answer (:func:`build_candidates`). Every place
that names a winner uses :func:`final_answer` (the answer with the largest summed weight,
its confidence the share of the total weight) and :func:`winning_candidate` (the trajectory
shown for it): the generator majority in :func:`collect`, the verified majority in
:mod:`langchain_rstar.search.verify`, progress events and the result in
:mod:`langchain_rstar.chain`. Grouping by equivalent answer is :func:`weighted_majority`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.answers.tasks import registry_version
from langchain_rstar.result import Candidate
from langchain_rstar.search.actions import is_solution
from langchain_rstar.search.state import RStarState, config_from_state, has_fatal

__all__ = [
    "build_candidates",
    "checker_for",
    "collect",
    "final_answer",
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


def collect(state: RStarState) -> dict[str, Any]:
    """Controller node: the candidates and the generator majority (before verification)."""
    cfg = config_from_state(state.get("config"))
    checker = checker_for(cfg.task, cfg.answer_extraction)
    candidates = build_candidates(state.get("nodes") or {}, checker)
    answer, confidence = final_answer(candidates, checker)
    stop_reason = state.get("stop_reason") or ("backend_dead" if has_fatal(state) else "budget")
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
