"""Prompt length per action, ``paper`` vs ``fast`` exemplar set (no model is run).

The ``paper`` exemplar set shows each action its own few-shot family in the rStar
reference's counts (8 step-by-step solutions, 4 one-step solutions, 4 decompositions,
8 rephrasings); ``fast`` shows one shared 4-example block. Longer prompts cost prompt
tokens on every model call (less with a prefix cache: each action's block is a fixed
prefix). This prints the tokens of each action's prompt at the root of the tree (A4: after
one sub-question), for each built-in task family, and the paper/fast ratio. Usage::

    python benchmarks/bench_prompts.py                       # the embedded model's tokenizer
    python benchmarks/bench_prompts.py --tokenizer DIR       # a tokenizer.json folder
    python benchmarks/bench_prompts.py --words               # whitespace words instead

Without a tokenizer found in the package's model cache, whitespace words are counted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from langchain_rstar import prompts as P

QUESTIONS = {
    "arithmetic": (
        "Ann has 3 bags with 4 apples in each bag. She eats 2 apples. How many apples are left?"
    ),
    "math": "What is the least common multiple of $12$ and $18$?",
    "yesno": "Could a blue whale fit in an Olympic swimming pool?",
}


def _counter(tokenizer_dir: str | None, words: bool) -> tuple[Callable[[str], int], str]:
    if not words:
        candidates: list[Path] = []
        if tokenizer_dir:
            candidates.append(Path(tokenizer_dir) / "tokenizer.json")
        else:
            from langchain_rstar.llms.embedded import cache_dir

            candidates.extend(sorted((cache_dir() / "models").glob("*/tokenizer.json")))
        for path in candidates:
            if path.is_file():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(path))

                def tokens(text: str, tok: Tokenizer = tok) -> int:
                    return len(tok.encode(text).ids)

                return tokens, f"tokens ({path.parent.name})"
    return (lambda text: len(text.split())), "whitespace words"


def prompts_for(task: str, exemplar_set: str) -> dict[str, str]:
    q = QUESTIONS[task]
    root = [{"id": "0", "type": "root"}]
    sub = {"id": "0/A3.0", "type": "subquestion", "subquestion": "What is asked first?"}
    kw = {"exemplar_set": exemplar_set}
    return {
        "A1": P.one_step_prompt(task, q, root, **kw),
        "A2": P.remaining_prompt(task, q, root, **kw),
        "A3 ask": P.subquestion_prompt(task, q, root, **kw),
        "A3 answer": P.subanswer_prompt(task, q, root, "What is asked first?", **kw),
        "A4": P.reanswer_prompt(task, q, root, sub["subquestion"], **kw),
        "A5": P.rephrase_prompt(task, q, **kw),
        "discriminator": P.completion_prompt(task, q, "Step 1:", **kw),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", help="folder with a tokenizer.json")
    parser.add_argument("--words", action="store_true", help="count whitespace words")
    args = parser.parse_args(argv)
    count, unit = _counter(args.tokenizer, args.words)
    print(f"prompt length in {unit} at the root (A4: after one sub-question)\n")
    header = f"{'task':<11}{'action':<15}{'paper':>7}{'fast':>7}{'paper/fast':>12}"
    print(header)
    print("-" * len(header))
    for task in QUESTIONS:
        paper, fast = prompts_for(task, "paper"), prompts_for(task, "fast")
        for action in paper:
            p, f = count(paper[action]), count(fast[action])
            print(f"{task:<11}{action:<15}{p:>7}{f:>7}{p / f:>12.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
