"""A5 (rephrase): the prompt restating the question as a list of its conditions."""

from __future__ import annotations

from functools import lru_cache

from langchain_rstar.prompts._format import load_exemplars

__all__ = ["REPHRASE_INSTRUCTION", "STOP_REPHRASE", "rephrase_prompt"]

REPHRASE_INSTRUCTION = (
    "Rewrite each question as a numbered list of its conditions, then the question."
)

#: The rephrasing is one line that itself ends with "Question: ..." (as the exemplars
#: show), so only a new line may end it; "Question:" would cut the question off.
STOP_REPHRASE = ["\n"]


@lru_cache(maxsize=16)
def _rephrase_block(task: str) -> str:
    data = load_exemplars(task)
    blocks = [REPHRASE_INSTRUCTION]
    for ex in data["rephrase"]:
        blocks.append(f"Question: {ex['question']}\nRephrased question: {ex['rephrased']}")
    return "\n\n".join(blocks) + "\n\n"


def rephrase_prompt(task: str, question: str) -> str:
    """Prompt for A5; the model continues after ``Rephrased question:``."""
    return f"{_rephrase_block(task)}Question: {question}\nRephrased question:"
