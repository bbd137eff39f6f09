"""A4 (re-answer): the prompt asking to answer the last sub-question again, step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_rstar.prompts._format import STOP_LINE, solve_body

__all__ = ["REANSWER_HINT", "STOP_REANSWER", "reanswer_prompt"]

#: Opens the new answer (and stays in the node's text).
REANSWER_HINT = "Let's work it out step by step."

STOP_REANSWER = STOP_LINE


def reanswer_prompt(
    task: str,
    question: str,
    path_before: Sequence[Mapping[str, Any]],
    subquestion: str,
    *,
    exemplar_set: str = "fast",
) -> str:
    """Prompt re-answering ``subquestion``; ``path_before`` is the path *without* the
    sub-question's node. Continues after ``Answer k:`` and :data:`REANSWER_HINT`.

    The ``paper`` exemplar set shows the task's ``decompose`` exemplars.
    """
    body, k = solve_body(task, question, path_before, family="decompose", exemplar_set=exemplar_set)
    return f"{body}Sub-question {k}: {subquestion}\nAnswer {k}: {REANSWER_HINT}"
