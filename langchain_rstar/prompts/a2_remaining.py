"""A2 (remaining steps / direct answer): the prompt asking for the rest of the solution.

The model continues after ``Step k:`` until a blank line (:data:`STOP_BLOCK`), writing every
remaining step and the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_rstar.prompts._format import STOP_BLOCK, solve_body

__all__ = ["STOP_REMAINING", "remaining_prompt"]

STOP_REMAINING = STOP_BLOCK


def remaining_prompt(
    task: str, question: str, path: Sequence[Mapping[str, Any]], *, exemplar_set: str = "fast"
) -> str:
    """Prompt for all remaining steps after ``path``; continues after ``Step k:``.

    The ``paper`` exemplar set shows the task's ``cot`` exemplars.
    """
    body, k = solve_body(task, question, path, family="cot", exemplar_set=exemplar_set)
    return f"{body}Step {k}:"
