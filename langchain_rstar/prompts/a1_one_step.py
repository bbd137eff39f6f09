"""A1 (one-step thought): the prompt asking for the next single step.

The model continues after ``Step k:`` and one line is kept (:data:`STOP_LINE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_rstar.prompts._format import STOP_LINE, solve_body

__all__ = ["STOP_ONE_STEP", "one_step_prompt"]

STOP_ONE_STEP = STOP_LINE


def one_step_prompt(
    task: str, question: str, path: Sequence[Mapping[str, Any]], *, exemplar_set: str = "fast"
) -> str:
    """Prompt for the next step on ``path``; the model continues after ``Step k:``.

    The ``paper`` exemplar set shows the task's ``one_step`` exemplars.
    """
    body, k = solve_body(task, question, path, family="one_step", exemplar_set=exemplar_set)
    return f"{body}Step {k}:"
