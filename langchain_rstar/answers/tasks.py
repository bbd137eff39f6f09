"""Task names -> checker: the one table mapping dataset and family names to a checker class.

Why a separate module: ``base.py`` must not import the families that subclass it, and callers
(CLI, evaluation, datasets) need one function that turns ``"gsm8k"`` or ``"math500"`` into a
checker with a clear error for an unknown name.
"""

from __future__ import annotations

from collections.abc import Callable

from langchain_rstar.answers.arithmetic import ArithmeticChecker
from langchain_rstar.answers.base import AnswerChecker, _check_extraction
from langchain_rstar.answers.math import MathChecker
from langchain_rstar.answers.yesno import YesNoChecker

__all__ = ["TASK_ALIASES", "TASK_FAMILIES", "get_checker", "registry_version"]

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


#: Checkers of custom tasks (:class:`langchain_rstar.TaskSpec`), by name: a factory taking
#: the extraction mode. Filled by ``TaskSpec.register``; a built-in name cannot be taken.
_CUSTOM_CHECKERS: dict[str, Callable[[str], AnswerChecker]] = {}
#: Bumped on every registration, so that caches keyed by task name can tell a re-registered
#: name from the old one (see ``search.candidates.checker_for``).
_REGISTRY_VERSION = [0]


def _register_checker(name: str, factory: Callable[[str], AnswerChecker]) -> None:
    """Register the checker factory of a custom task ``name`` (last registration wins)."""
    if name.strip().lower() in TASK_ALIASES:
        raise ValueError(f"task name {name!r} is taken by a built-in task; choose another name")
    _CUSTOM_CHECKERS[name] = factory
    _REGISTRY_VERSION[0] += 1


def registry_version() -> int:
    """How many custom tasks have been registered so far (a cache key)."""
    return _REGISTRY_VERSION[0]


def get_checker(task: str, *, extraction: str = "marker") -> AnswerChecker:
    """Return the checker for a task family or dataset name.

    Args:
        task: ``arithmetic``, ``math``, ``yesno`` or a dataset name (``gsm8k``, ``gsm8khard``,
            ``svamp``, ``math``, ``math500``, ``stg``, ``strategyqa``); case-insensitive.
        extraction: ``"marker"`` (default: the last stated answer the family can read) or
            ``"reference"`` (the rStar reference evaluator's rule: the first number after
            "answer is", else the last number).

    A custom task (:class:`langchain_rstar.TaskSpec`) is found by its exact name once
    registered (``RStarConfig(task=spec)`` registers it).

    Raises:
        ValueError: For an unknown name or extraction mode (the message lists the valid ones).
    """
    extraction = _check_extraction(extraction)
    custom = _CUSTOM_CHECKERS.get(str(task))
    if custom is not None:
        return custom(extraction)
    family = TASK_ALIASES.get(str(task).strip().lower())
    if family == "arithmetic":
        return ArithmeticChecker(extraction=extraction)
    if family == "yesno":
        return YesNoChecker(extraction=extraction)
    if family == "math":
        return MathChecker(extraction=extraction)
    raise ValueError(
        f"unknown task {task!r}; expected a task family {TASK_FAMILIES} or one of "
        f"{sorted(set(TASK_ALIASES) - set(TASK_FAMILIES))}, or the name of a registered "
        f"TaskSpec {sorted(_CUSTOM_CHECKERS)}"
    )
