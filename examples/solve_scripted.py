"""rStar end to end with a SCRIPTED model: no GPU, no download, no network.

The "model" here is :class:`langchain_rstar.testing.ScriptedLLM`: it answers the package's
prompts from fixed rules written for one question. Its answers are canned, so this example
shows how the search, the verification and the outputs fit together, not how well a real
model reasons. For a real run use ``RStarChain()`` (the embedded model) or pass any
LangChain LLM / chat model as ``generator``.

Run::

    python examples/solve_scripted.py                # streams progress, prints the result
    python examples/solve_scripted.py --tree tree.html   # also writes the tree as HTML
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langchain_rstar import RStarChain, RStarConfig, RStarProgress, RStarResult
from langchain_rstar.testing import ScriptedLLM

QUESTION = "A baker makes 5 trays of 6 muffins and sells 7 muffins. How many muffins are left?"


def scripted_llm() -> ScriptedLLM:
    """A canned model for :data:`QUESTION` (right answer 23): its direct answers are often
    wrong (30 or 11), while step-by-step paths reach 23."""
    right = " 5 * 6 = 30 muffins.\nStep 2: 30 - 7 = 23 muffins are left. The answer is 23."
    whole = " 5 * 6 = 30 muffins, and 30 - 7 = 23 are left. The answer is 23."
    cot = r"\nAnswer: Let's think step by step\.$"  # a whole solution (A2 / A4, paper profile)
    return ScriptedLLM(
        rules=[
            (r"Hint[^\n]* 30\b.*" + cot, [whole]),
            (r"How many muffins does the baker make\?" + cot, [" 5 * 6 = 30. The answer is 30."]),
            (
                cot,
                [" 5 * 6 = 30 muffins. The answer is 30.", whole, " 6 + 5 = 11. The answer is 11."],
            ),
            (r"30 muffins\.\nStep 2:$", [" 30 - 7 = 23 muffins are left. The answer is 23."]),
            (
                r"Sub-question 2: Now we can answer[^\n]*\nAnswer 2:$",
                [" 30 - 7 = 23. The answer is 23."],
            ),
            (r"Answer 1:( Let's work it out step by step\.)?$", [" 5 * 6 = 30. The answer is 30."]),
            (r"Sub-question 1:$", [" How many muffins does the baker make?"]),
            (r"Sub-question 2:$", [" Now we can answer the question: How many muffins are left?"]),
            (
                r"Rephrased question:$",
                [
                    " Condition 1: There are 5 trays. Condition 2: Each tray holds 6 muffins. "
                    "Condition 3: 7 muffins are sold. Question: How many muffins are left?"
                ],
            ),
            (
                r"Step \d+:$",
                [" 5 * 6 = 30 muffins. The answer is 30.", right, " 6 + 5 = 11. The answer is 11."],
            ),
            (
                # Verification: a solution cut off inside a line (the word masks) is
                # completed the right way.
                r"\A(?!.*step by step\.\Z).*\n(?:Step|Sub-question) 1:.*[^\s:]\Z",
                [" and 7 of the 30 muffins are sold, so 30 - 7 = 23 are left. The answer is 23."],
            ),
        ],
        default=[" The answer is 30."],
    )


def build_chain(num_rollouts: int = 8) -> RStarChain:
    """An rStar chain on the scripted model (generator and its own discriminator)."""
    return RStarChain(
        generator=scripted_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=num_rollouts, num_votes=4),
    )


def main(argv: Sequence[str] | None = None) -> RStarResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tree", help="write the search tree to this HTML file")
    args = parser.parse_args(argv)

    print("NOTE: scripted model - canned answers, for illustration only.\n")
    chain = build_chain(args.rollouts)
    result: RStarResult | None = None
    for event in chain.stream(QUESTION):
        if isinstance(event, RStarProgress):
            print(
                f"rollout {event.rollout + 1}/{event.num_rollouts}: best answer "
                f"{event.best_answer} (confidence {event.confidence:.2f}, "
                f"{event.completion_tokens} tokens)"
            )
        else:
            result = event
    assert result is not None
    print(f"\nQuestion: {result.question}")
    print(f"Answer:   {result.answer}  (confidence {result.confidence:.2f})")
    v = result.verification
    print(f"Verification ({v.verifier or 'none'}): {v.reason}")
    print("Winning trajectory:")
    for i, step in enumerate(result.trajectory, 1):
        print(f"  {i}. [{step.action}] {step.text}")
    if args.tree:
        print(f"\nTree written to {result.save_html(args.tree)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
