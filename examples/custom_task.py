"""A task of your own: weekday puzzles with a custom ``TaskSpec`` and answer checker.

rStar is not only for math. A task is an instruction, few-shot exemplars per action family
(step-by-step solutions, one-step solutions, sub-question decompositions, rephrasings) and
an :class:`~langchain_rstar.answers.AnswerChecker` that says what the answer in a completion
is and when two answers are the same. Here the answers are days of the week: "Tue",
"tuesday" and "TUESDAY." are one answer when the search votes.

Run::

    python examples/custom_task.py              # the embedded small model (slow on CPU)
    python examples/custom_task.py --scripted   # a scripted model: no model, no network

The scripted model is canned (it answers by rule, sometimes wrongly) and only shows the
wiring; it does not reason.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from langchain_rstar import RStarChain, RStarConfig, RStarResult, TaskSpec
from langchain_rstar.answers import AnswerChecker
from langchain_rstar.testing import ScriptedLLM

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

QUESTION = "Today is Friday. My parcel arrives in 11 days. On which day of the week does it arrive?"


class WeekdayChecker(AnswerChecker):
    """Reads a day of the week; full names and 3-letter abbreviations, any case."""

    task = "weekday"

    def extract(self, text: str) -> str | None:
        # the last day named after "answer is", else None (no guessing from the reasoning)
        match = re.search(r"answer is\s*:?\s*([A-Za-z]+)(?![^\n]*answer is)", text or "", re.I)
        return match.group(1) if match else None

    def normalize(self, answer: str | None) -> str | None:
        word = (answer or "").strip().strip(".").lower()
        if len(word) < 3:
            return None
        return next((day for day in DAYS if day.startswith(word)), None)


WEEKDAYS = TaskSpec(
    name="weekday",
    instruction=(
        'Answer each calendar question with a day of the week. Finish with "The answer is <day>."'
    ),
    checker=WeekdayChecker,
    cot=[
        {
            "question": "Today is Monday. What day of the week is it in 9 days?",
            "steps": [
                "A week has 7 days, so 9 days is 1 week and 2 days.",
                "2 days after Monday is Wednesday. The answer is Wednesday.",
            ],
        },
        {
            "question": "Today is Sunday. What day of the week was it 3 days ago?",
            "steps": ["3 days before Sunday is Thursday. The answer is Thursday."],
        },
        {
            "question": "Today is Wednesday. What day of the week is it in 14 days?",
            "steps": [
                "14 days is exactly 2 weeks.",
                "After whole weeks it is the same day, Wednesday. The answer is Wednesday.",
            ],
        },
    ],
    one_step=[
        {
            "question": "Today is Thursday. What day of the week is it in 10 days?",
            "steps": [
                "10 days is 1 week and 3 days.",
                "1 week after Thursday is Thursday again.",
                "3 days after Thursday is Sunday. The answer is Sunday.",
            ],
        },
    ],
    decompose=[
        {
            "question": "Today is Tuesday. What day of the week is it in 16 days?",
            "steps": [
                ("How many days are left after whole weeks?", "16 = 2 * 7 + 2, so 2 days."),
                (
                    "Now we can answer the question: What day is 2 days after Tuesday?",
                    "2 days after Tuesday is Thursday. The answer is Thursday.",
                ),
            ],
        },
    ],
    rephrase=[
        {
            "question": "Today is Monday. What day of the week is it in 9 days?",
            "rephrased": (
                "Condition 1: Today is Monday. Condition 2: We count 9 days forward. "
                "Question: What day of the week is it then?"
            ),
        },
    ],
)


def scripted_llm() -> ScriptedLLM:
    """Canned replies for :data:`QUESTION` (Friday + 11 days = Tuesday)."""
    return ScriptedLLM(
        rules=[
            (
                r"Rephrased question:$",
                [
                    " Condition 1: Today is Friday. Condition 2: The parcel arrives 11 days "
                    "later. Question: On which day of the week does it arrive?"
                ],
            ),
            (r"Sub-question 1:$", [" How many days are left after whole weeks?"]),
            (r"Answer 1:$", [" 11 = 7 + 4, so 4 days."]),
            (
                r"Sub-question 2:$",
                [" Now we can answer the question: What day is 4 days after Friday?"],
            ),
            (r"Answer 2:$", [" 4 days after Friday is Tuesday. The answer is TUESDAY."]),
            (
                r"Step \d+:$",
                [
                    " 11 days is 1 week and 4 days; 4 days after Friday is Tuesday. "
                    "The answer is Tue.",
                    " 11 days after Friday is Monday. The answer is Monday.",
                    " 1 week and 4 days after Friday is Tuesday. The answer is Tuesday.",
                ],
            ),
            (
                # Verification (paper profile): a solution cut off inside a line by the word
                # masks is completed the right way.
                r"\A(?!.*step by step\.\Z).*\n(?:Step|Sub-question) 1:.*[^\s:]\Z",
                [" and 11 days is 1 week and 4 days, so it is Tuesday. The answer is Tuesday."],
            ),
        ],
        # anything else (e.g. the discriminator completing a masked solution mid-sentence)
        default=[" 4 days after Friday is Tuesday. The answer is Tuesday."],
    )


def build_chain(scripted: bool, num_rollouts: int) -> RStarChain:
    config = RStarConfig(task=WEEKDAYS, num_rollouts=num_rollouts)
    if scripted:
        return RStarChain(generator=scripted_llm(), discriminator=True, config=config)
    return RStarChain(config=config)  # the embedded model generates and verifies


def main(argv: Sequence[str] | None = None) -> RStarResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripted", action="store_true", help="use a canned model")
    parser.add_argument("--rollouts", type=int, default=8)
    args = parser.parse_args(argv)
    if args.scripted:
        print("NOTE: scripted model - canned answers, for illustration only.\n")
    result = build_chain(args.scripted, args.rollouts).invoke(QUESTION)
    print(f"Question: {result.question}")
    print(f"Answer:   {result.answer}  (confidence {result.confidence:.2f})")
    print(f"Verification: {result.verification.reason}")
    for i, step in enumerate(result.trajectory, 1):
        print(f"  {i}. [{step.action}] {step.text}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
