"""Scripted models shared by the unit tests."""

from __future__ import annotations

from langchain_rstar.testing import ScriptedLLM

QUESTION = "Ann has 3 bags with 4 apples in each bag. She eats 2 apples. How many apples are left?"
GOLD = "10"

R_RIGHT = " Ann has 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10 apples are left. The answer is 10."
R_ADD = " 3 + 4 = 7 apples. The answer is 7."
R_MUL = " 3 * 4 = 12 apples. The answer is 12."


def apples_llm(**kwargs: object) -> ScriptedLLM:
    """A model whose first sample and direct-answer majority are wrong (12), while deeper
    trajectories (thought then answer, or sub-questions) reach 10 with full agreement."""
    return ScriptedLLM(
        rules=[
            (r"12 apples\.\nStep 2:$", [" 12 - 2 = 10 apples are left. The answer is 10."]),
            (
                r"Sub-question 2: Now we can answer[^\n]*\nAnswer 2:$",
                [" 12 - 2 = 10. The answer is 10."],
            ),
            (r"Answer 1:( Let's work it out step by step\.)?$", [" 3 * 4 = 12. The answer is 12."]),
            (r"Sub-question 1:$", [" How many apples are in the bags?"]),
            (r"Sub-question 2:$", [" Now we can answer the question: How many apples are left?"]),
            (
                r"Rephrased question:$",
                [
                    " Condition 1: Ann has 3 bags. Condition 2: Each bag holds 4 apples. "
                    "Condition 3: She eats 2 apples. Question: How many apples are left?"
                ],
            ),
            (r"Step \d+:$", [R_MUL, R_RIGHT, R_ADD]),
        ],
        default=[" The answer is 12."],
        **kwargs,
    )
