"""A3 (sub-question): the prompts asking for the next sub-question, then for its answer.

A sub-question starting with :data:`FINAL_SUBQUESTION_PREFIX` asks the original question; its
answer is a solution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_rstar.prompts._format import STOP_LINE, solve_body

__all__ = [
    "FINAL_SUBQUESTION_PREFIX",
    "STOP_SUBQUESTION",
    "is_final_subquestion",
    "subanswer_prompt",
    "subquestion_prompt",
]

FINAL_SUBQUESTION_PREFIX = "Now we can answer the question"

STOP_SUBQUESTION = STOP_LINE


def is_final_subquestion(subquestion: str) -> bool:
    """Whether a sub-question asks the original question (starts with the final prefix)."""
    return subquestion.strip().lower().startswith(FINAL_SUBQUESTION_PREFIX.lower())


def subquestion_prompt(
    task: str, question: str, path: Sequence[Mapping[str, Any]], *, exemplar_set: str = "fast"
) -> str:
    """Prompt for the next sub-question; continues after ``Sub-question k:``.

    The ``paper`` exemplar set shows the task's ``decompose`` exemplars.
    """
    body, k = solve_body(task, question, path, family="decompose", exemplar_set=exemplar_set)
    return f"{body}Sub-question {k}:"


def subanswer_prompt(
    task: str,
    question: str,
    path: Sequence[Mapping[str, Any]],
    subquestion: str,
    *,
    exemplar_set: str = "fast",
) -> str:
    """Prompt for the answer of ``subquestion``; continues after ``Answer k:``."""
    body, k = solve_body(task, question, path, family="decompose", exemplar_set=exemplar_set)
    return f"{body}Sub-question {k}: {subquestion}\nAnswer {k}:"
