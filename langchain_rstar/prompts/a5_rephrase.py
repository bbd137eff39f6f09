"""A5 (rephrase): the prompt restating the question as a list of its conditions."""

from __future__ import annotations

from functools import lru_cache

from langchain_rstar.answers.tasks import registry_version
from langchain_rstar.prompts._format import _check_set
from langchain_rstar.prompts.task import task_spec

__all__ = ["REPHRASE_INSTRUCTION", "STOP_REPHRASE", "rephrase_prompt"]

REPHRASE_INSTRUCTION = (
    "Rewrite each question as a numbered list of its conditions, then the question."
)

#: The rephrasing is one line that itself ends with "Question: ..." (as the exemplars
#: show), so only a new line may end it; "Question:" would cut the question off.
STOP_REPHRASE = ["\n"]


@lru_cache(maxsize=64)
def _rephrase_block(task: str, exemplar_set: str, _version: int) -> str:
    spec = task_spec(task)
    instruction = spec.instructions.get("rephrase", REPHRASE_INSTRUCTION)
    blocks = [REPHRASE_INSTRUCTION if exemplar_set == "fast" else instruction]
    for ex in spec.rephrasings(exemplar_set):
        blocks.append(f"Question: {ex.question}\nRephrased question: {ex.rephrased}")
    return "\n\n".join(blocks) + "\n\n"


def rephrase_prompt(task: str, question: str, *, exemplar_set: str = "fast") -> str:
    """Prompt for A5; the model continues after ``Rephrased question:``.

    The ``paper`` exemplar set shows all of the task's ``rephrase`` examples (8 for the
    built-ins), ``fast`` the first two.
    """
    block = _rephrase_block(task, _check_set(exemplar_set), registry_version())
    return f"{block}Question: {question}\nRephrased question:"
