"""The discriminator's prompt: complete a masked candidate trajectory.

The discriminator sees the same few-shot block and question as the generator, then the
candidate's first steps (the masked prefix, already ending in its cue such as ``Step k:``),
and writes the rest of the solution until a blank line.
"""

from __future__ import annotations

from langchain_rstar.prompts._format import STOP_BLOCK, solve_prefix

__all__ = ["STOP_COMPLETION", "completion_prompt"]

STOP_COMPLETION = STOP_BLOCK


def completion_prompt(task: str, question: str, prefix: str, *, exemplar_set: str = "fast") -> str:
    """Prompt completing the masked ``prefix`` of a candidate for ``question``.

    The ``paper`` exemplar set shows the task's ``cot`` exemplars.
    """
    return solve_prefix(task, question, family="cot", exemplar_set=exemplar_set) + prefix
