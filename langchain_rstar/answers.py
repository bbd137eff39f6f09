"""Answer extraction, equivalence and voting (v0: to be deepened by the evaluation work).

The same checker is used inside the search (for voting) and for grading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "AnswerChecker",
    "VoteResult",
    "get_checker",
    "majority_vote",
    "TASK_FAMILIES",
]

TASK_FAMILIES = ("arithmetic", "math", "yesno")

_ANSWER_RE = re.compile(r"the (?:final )?answer is[:\s]*(.+)", re.IGNORECASE)
_NUM_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


class AnswerChecker:
    """Extracts, normalises and compares answers for one task family."""

    task: str = "arithmetic"

    def extract(self, text: str) -> str | None:
        """Return the final answer stated in a model completion, or None."""
        m = None
        for m in _ANSWER_RE.finditer(text or ""):
            pass
        if m is None:
            return None
        ans = m.group(1).strip().split("\n")[0].strip()
        ans = ans.rstrip(".").strip()
        return ans or None

    def normalize(self, answer: str | None) -> str | None:
        """Canonical form of an answer (used as the voting key)."""
        if answer is None:
            return None
        nums = _NUM_RE.findall(answer)
        if not nums:
            return None
        raw = nums[0].replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            return None
        if value == int(value):
            return str(int(value))
        return repr(value)

    def equivalent(self, a: str | None, b: str | None) -> bool:
        """Whether two answers are the same."""
        na, nb = self.normalize(a), self.normalize(b)
        return na is not None and na == nb

    def gold(self, solution: str) -> str | None:
        """The gold answer inside a dataset solution field."""
        if "####" in solution:
            return solution.split("####")[-1].strip()
        return solution.strip()

    def is_correct(self, prediction: str | None, solution: str) -> bool:
        """Grade a prediction against a dataset solution."""
        return self.equivalent(prediction, self.gold(solution))


class _YesNoChecker(AnswerChecker):
    task = "yesno"

    def normalize(self, answer: str | None) -> str | None:
        if answer is None:
            return None
        low = answer.strip().lower()
        if low.startswith(("yes", "true")):
            return "yes"
        if low.startswith(("no", "false")):
            return "no"
        return None


class _MathChecker(AnswerChecker):
    task = "math"

    def normalize(self, answer: str | None) -> str | None:
        if answer is None:
            return None
        return answer.strip().strip("$").replace(" ", "") or None


def get_checker(task: str) -> AnswerChecker:
    """Return the checker for a task family or dataset name."""
    key = task.lower()
    if key in ("arithmetic", "gsm8k", "gsm8khard", "svamp", "number"):
        return AnswerChecker()
    if key in ("yesno", "stg", "strategyqa"):
        return _YesNoChecker()
    if key in ("math", "math500", "math-500"):
        return _MathChecker()
    raise ValueError(f"unknown task {task!r}; expected one of {TASK_FAMILIES}")


@dataclass
class VoteResult:
    """Outcome of a majority vote."""

    answer: str | None
    confidence: float
    counts: dict[str, int] = field(default_factory=dict)
    winners: list[int] = field(default_factory=list)


def majority_vote(answers: Sequence[str | None], checker: AnswerChecker) -> VoteResult:
    """Majority vote over answers, grouping equivalent ones.

    ``confidence`` is the share of *all* samples (unanswered ones included) that agree with
    the majority answer; ``winners`` are the indices of the samples in the majority group.
    Ties go to the group seen first.
    """
    groups: list[tuple[str, list[int]]] = []
    for i, ans in enumerate(answers):
        if ans is None or checker.normalize(ans) is None:
            continue
        for rep, idx in groups:
            if checker.equivalent(rep, ans):
                idx.append(i)
                break
        else:
            groups.append((ans, [i]))
    if not groups or not answers:
        return VoteResult(None, 0.0, {}, [])
    best_rep, best_idx = max(groups, key=lambda g: len(g[1]))
    counts = {rep: len(idx) for rep, idx in groups}
    return VoteResult(best_rep, len(best_idx) / len(answers), counts, list(best_idx))
