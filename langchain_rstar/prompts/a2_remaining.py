"""A2 (remaining steps / direct answer): the prompt asking for the rest of the solution.

``a2_mode="continue"`` (``fast``): the model continues after ``Step k:`` until a blank line
(:data:`STOP_BLOCK`), writing every remaining step and the answer (:func:`remaining_prompt`).

``a2_mode="regenerate"`` (``paper``, the reference code's ``generate_direct_answers``): the
model writes a whole solution from a chain-of-thought few-shot prompt, the path so far given
as a hint after the question (:func:`cot_prompt`). A4 in ``resolve`` mode uses the same
prompt on "question context + sub-question".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_rstar.answers.tasks import registry_version
from langchain_rstar.prompts._format import STOP_BLOCK, solve_body
from langchain_rstar.prompts.task import task_spec

__all__ = ["COT_OPENING", "STOP_REMAINING", "cot_prompt", "remaining_prompt"]

#: Opens every chain-of-thought answer (the prompt ends with it; so do the exemplars).
COT_OPENING = "Let's think step by step."

STOP_REMAINING = STOP_BLOCK


def remaining_prompt(
    task: str, question: str, path: Sequence[Mapping[str, Any]], *, exemplar_set: str = "fast"
) -> str:
    """Prompt for all remaining steps after ``path``; continues after ``Step k:``.

    The ``paper`` exemplar set shows the task's ``cot`` exemplars.
    """
    body, k = solve_body(task, question, path, family="cot", exemplar_set=exemplar_set)
    return f"{body}Step {k}:"


@lru_cache(maxsize=64)
def _cot_block(task: str, exemplar_set: str, _version: int) -> str:
    spec = task_spec(task)
    family = "cot" if exemplar_set == "paper" else "shared"
    blocks = [spec.instruction_for("cot")]
    for ex in spec.exemplars(family):
        lines = [s.a if s.kind == "sub" else s.text for s in ex.steps]
        # one answer statement, at the end: intermediate sub-answers lose theirs
        lines = [line.split("The answer is")[0].strip() for line in lines[:-1]] + lines[-1:]
        blocks.append("\n".join([f"Question: {ex.question}", f"Answer: {COT_OPENING}", *lines]))
    return "\n\n".join(blocks) + "\n\n"


def cot_prompt(
    task: str, question: str, hint: str | None = None, *, exemplar_set: str = "paper"
) -> str:
    """Chain-of-thought prompt: a whole solution after ``Answer: Let's think step by step.``

    ``hint`` (the steps found so far) goes on the lines after the question, as the reference
    code appends it to the question. The ``paper`` exemplar set shows the task's ``cot``
    exemplars, ``fast`` its shared block; each exemplar is a whole solution, one step a line.
    """
    hint_lines = f"{hint.strip()}\n" if hint and hint.strip() else ""
    block = _cot_block(task, exemplar_set, registry_version())
    return f"{block}Question: {question}\n{hint_lines}Answer: {COT_OPENING}"
