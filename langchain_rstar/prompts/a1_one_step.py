"""A1 (one-step thought): the prompt asking for the next single step.

The model continues after ``Step k:`` and one line is kept (:data:`STOP_LINE`).

What the prompt shows of a path that holds sub-questions (A3) depends on ``context``:

* ``"reference"`` (the ``paper`` profile), as the authors' code builds it: directly below a
  sub-question (or its A4 re-answer) every sub-answer becomes a step, its text up to
  ". The answer is", the sub-questions themselves left out, and the next step is numbered
  two past the last sub-answer (the reference's counter ends one past its loop); below
  one-step thoughts that follow sub-questions only those thoughts are shown, with their
  numbers, the sub-answers left out.
* ``"path"`` (``fast``): the whole path as every other action sees it, sub-questions and
  answers included, steps numbered in order.

A path without sub-questions reads the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_rstar.prompts._format import STOP_LINE, path_lines, solve_prefix, step_number
from langchain_rstar.prompts._format import path_question as _path_question

__all__ = ["STOP_ONE_STEP", "one_step_prompt", "reference_step_lines"]

STOP_ONE_STEP = STOP_LINE

_SUB_KINDS = ("subquestion", "reanswer")


def _step_of_subanswer(text: str) -> str:
    """A sub-answer as a step: the first line's text through the period before
    " The answer is" (the whole text when it has none)."""
    for line in text.split("\n"):
        idx = line.find(". The answer is", 1)
        if idx >= 1:
            return line[: idx + 1].strip()
    return text.strip()


def reference_step_lines(path: Sequence[Mapping[str, Any]]) -> tuple[list[str], int] | None:
    """The step lines and next step number the reference's A1 shows for ``path``, or None
    when the path holds no sub-question (then it reads as :func:`path_lines`)."""
    last_sub = max((i for i, r in enumerate(path) if r.get("type") in _SUB_KINDS), default=-1)
    if last_sub < 0:
        return None
    answers: list[str] = []
    for record in path[: last_sub + 1]:
        kind = record.get("type")
        text = " ".join(str(record.get("text", "")).split("\n")).strip()
        if kind == "subquestion":
            answers.append(text)
        elif kind == "reanswer" and answers:
            answers[-1] = text
    first = len(answers) + 2
    # below a sub-question only one-step thoughts (A1) can follow one another
    thoughts = [
        str(r.get("text", "")).strip().split("\n")[0].strip()
        for r in path[last_sub + 1 :]
        if r.get("type") == "thought"
    ]
    if not thoughts:
        lines = [f"Step {k}: {_step_of_subanswer(a)}" for k, a in enumerate(answers, start=1)]
        return lines, first
    lines = [f"Step {first + i}: {t}" for i, t in enumerate(thoughts)]
    return lines, first + len(thoughts)


def one_step_prompt(
    task: str,
    question: str,
    path: Sequence[Mapping[str, Any]],
    *,
    exemplar_set: str = "fast",
    context: str = "path",
) -> str:
    """Prompt for the next step on ``path``; the model continues after ``Step k:``.

    The ``paper`` exemplar set shows the task's ``one_step`` exemplars; ``context`` is
    ``"reference"`` or ``"path"`` (module docstring).
    """
    prefix = solve_prefix(
        task, _path_question(question, path), family="one_step", exemplar_set=exemplar_set
    )
    reference = reference_step_lines(path) if context == "reference" else None
    lines, k = reference if reference is not None else (path_lines(path), step_number(path))
    return prefix + "".join(line + "\n" for line in lines) + f"Step {k}:"
