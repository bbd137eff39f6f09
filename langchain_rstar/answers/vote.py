"""Majority voting over sampled answers, grouping equivalent ones.

Why here: the search (A1 votes, sub-answers), the baselines (self-consistency) and the
verifier all vote with the checker's equivalence, so the rule lives next to the checkers and
nowhere else. Grouping is by voting key in one pass (O(n)); only keys the checker marks as
mergeable are compared pairwise, and that merging phase runs under the checker's
``vote_time_budget`` as one deadline (the thread watchdog of ``_deadline.py``; a comparison
in flight when it runs out is cut, not waited for), after which the remaining keys are
grouped by equality only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_rstar.answers._deadline import _call_with_deadline
from langchain_rstar.answers.base import AnswerChecker, _may_merge

__all__ = ["VoteResult", "majority_vote"]


@dataclass
class VoteResult:
    """Outcome of a majority vote.

    Attributes:
        answer: The first-seen answer of the majority group (None if nothing was answered).
        confidence: Share of *all* samples (unanswered ones included) in the majority group.
        counts: Group size keyed by each group's first-seen answer.
        winners: Indices of the samples in the majority group, ascending.
    """

    answer: str | None
    confidence: float
    counts: dict[str, int] = field(default_factory=dict)
    winners: list[int] = field(default_factory=list)


def majority_vote(answers: Sequence[str | None], checker: AnswerChecker) -> VoteResult:
    """Majority vote over answers, grouping equivalent ones.

    Answers are grouped by :meth:`AnswerChecker.normalize` key in one pass (O(n)); groups with
    different keys are then merged when equivalent (arithmetic: only non-integer keys can
    merge; yes/no: never; math: pairwise checks between distinct keys, within the checker's
    ``vote_time_budget``). Unreadable answers (None or no key) count as unanswered.

    ``confidence`` is the share of *all* samples (unanswered ones included) that agree with
    the majority answer; ``winners`` are the indices of the samples in the majority group.
    Ties go to the group seen first.

    Args:
        answers: Extracted answers, None for samples without one.
        checker: The task's checker.
    """
    n = len(answers)
    if n == 0:
        return VoteResult(None, 0.0, {}, [])
    by_key: dict[str, int] = {}
    keys: list[str] = []
    reps: list[str] = []
    members: list[list[int]] = []
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        try:
            key = checker.normalize(ans)
        except Exception:  # pragma: no cover - defensive
            key = None
        if key is None:
            continue
        g = by_key.get(key)
        if g is None:
            by_key[key] = len(keys)
            keys.append(key)
            reps.append(ans)
            members.append([i])
        else:
            members[g].append(i)
    if not keys:
        return VoteResult(None, 0.0, {}, [])

    if len(keys) > 1 and _may_merge(checker, keys):
        # assign[j]: the key whose group key j joins (j itself: a new group). One append per
        # decided key, so a deadline that lands anywhere leaves a consistent prefix.
        assign: list[int] = []

        def merge() -> None:
            roots: list[int] = []
            open_roots: list[int] = []  # roots whose key may equal a different key
            for j in range(len(keys)):
                target = j
                mergeable = checker.mergeable_key(keys[j])
                for r in roots if mergeable else open_roots:
                    try:
                        same = checker.keys_equivalent(keys[r], keys[j])
                    except Exception:  # pragma: no cover - defensive
                        same = False
                    if same:
                        target = r
                        break
                assign.append(target)
                if target == j:
                    roots.append(j)
                    if mergeable:
                        open_roots.append(j)

        budget = getattr(checker, "vote_time_budget", None)
        if budget is None:
            merge()
        else:
            # The whole merging phase runs under one deadline; every symbolic check inside
            # runs until the earlier of its own limit and this one (issue #19.9: checking
            # the clock only between checks overshot the budget by a whole check).
            _call_with_deadline(merge, float(budget), default=None)
        assign += range(len(assign), len(keys))  # undecided keys: grouped by equality only
        for j, target in enumerate(assign):
            if target != j:
                members[target].extend(members[j])
                members[j] = []
        groups = [(reps[r], sorted(members[r])) for r in range(len(keys)) if assign[r] == r]
    else:
        groups = [(reps[g], members[g]) for g in range(len(keys))]

    best_rep, best_idx = groups[0]
    for rep, idx in groups[1:]:
        if len(idx) > len(best_idx):
            best_rep, best_idx = rep, idx
    counts = {rep: len(idx) for rep, idx in groups}
    return VoteResult(best_rep, len(best_idx) / n, counts, list(best_idx))
