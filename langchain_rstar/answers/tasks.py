"""Task names -> checker: the one table mapping dataset and family names to a checker class.

Why a separate module: ``base.py`` must not import the families that subclass it, and callers
(CLI, evaluation, datasets) need one function that turns ``"gsm8k"`` or ``"math500"`` into a
checker with a clear error for an unknown name.
"""

from __future__ import annotations

from langchain_rstar.answers.arithmetic import ArithmeticChecker
from langchain_rstar.answers.base import AnswerChecker, _check_extraction
from langchain_rstar.answers.math import MathChecker
from langchain_rstar.answers.yesno import YesNoChecker

__all__ = ["TASK_ALIASES", "TASK_FAMILIES", "get_checker"]

TASK_FAMILIES = ("arithmetic", "math", "yesno")

#: Accepted names for :func:`get_checker` (dataset names and family names) -> family.
TASK_ALIASES: dict[str, str] = {
    "arithmetic": "arithmetic",
    "number": "arithmetic",
    "numeric": "arithmetic",
    "gsm8k": "arithmetic",
    "gsm8khard": "arithmetic",
    "gsm-hard": "arithmetic",
    "gsmhard": "arithmetic",
    "svamp": "arithmetic",
    "math": "math",
    "math500": "math",
    "math-500": "math",
    "yesno": "yesno",
    "stg": "yesno",
    "strategyqa": "yesno",
}


def get_checker(task: str, *, extraction: str = "marker") -> AnswerChecker:
    """Return the checker for a task family or dataset name.

    Args:
        task: ``arithmetic``, ``math``, ``yesno`` or a dataset name (``gsm8k``, ``gsm8khard``,
            ``svamp``, ``math``, ``math500``, ``stg``, ``strategyqa``); case-insensitive.
        extraction: ``"marker"`` (default: the last stated answer the family can read) or
            ``"reference"`` (the rStar reference evaluator's rule: the first number after
            "answer is", else the last number).

    Raises:
        ValueError: For an unknown name or extraction mode (the message lists the valid ones).
    """
    extraction = _check_extraction(extraction)
    family = TASK_ALIASES.get(str(task).strip().lower())
    if family == "arithmetic":
        return ArithmeticChecker(extraction=extraction)
    if family == "yesno":
        return YesNoChecker(extraction=extraction)
    if family == "math":
        return MathChecker(extraction=extraction)
    raise ValueError(
        f"unknown task {task!r}; expected a task family {TASK_FAMILIES} or one of "
        f"{sorted(set(TASK_ALIASES) - set(TASK_FAMILIES))}"
    )
