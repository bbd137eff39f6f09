"""How much sampling one question costs: sequences and completion tokens per question.

The rStar reference implementation spends about 3,000 sampled sequences and about 367k
completion tokens per GSM8K question (32 rollouts, 5 one-step thoughts, 5 sub-questions,
10 votes, plus mutual verification). This script counts the same quantities for this
package from ``RStarResult.usage`` (generator and discriminator together; samples served
by the vote cache are not counted, they cost nothing):

* on the scripted model (varied, deterministic samples; tokens there are words, so only the
  sequence counts are meaningful) at the package defaults (the ``paper`` profile), the
  ``fast`` profile, and the reference's GSM8K script settings (32 rollouts, 5 one-step
  thoughts, 5 sub-questions);
* with ``--real N``, on the first N GSM8K questions with the embedded model
  (:func:`langchain_rstar.llms.default_llm`), at the package defaults, or at
  ``--rollouts``.

Run::

    python benchmarks/bench_work.py
    python benchmarks/bench_work.py --real 2 --rollouts 4     # short real run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_overhead import PAPER, QUESTION, varied_responder  # noqa: E402

from langchain_rstar import RStarChain, RStarConfig  # noqa: E402
from langchain_rstar.testing import ScriptedLLM  # noqa: E402

REFERENCE = {"sequences": 3000, "completion_tokens": 367_000}


def count(chain: RStarChain, question: str) -> dict[str, Any]:
    start = time.perf_counter()
    result = chain.invoke(question)
    u = result.usage
    return {
        "sequences": u.samples,
        "completion_tokens": u.completion_tokens,
        "prompt_tokens": u.prompt_tokens,
        "cached_prompt_tokens": u.cached_prompt_tokens,
        "llm_calls": u.llm_calls,
        "rollouts": u.rollouts,
        "nodes": u.nodes,
        "candidates": len(result.candidates),
        "verified": result.verification.ran,
        "wall": time.perf_counter() - start,
        "answer": result.answer,
    }


def show(label: str, r: dict[str, Any], tokens_real: bool) -> None:
    seq_ratio = r["sequences"] / REFERENCE["sequences"]
    tok = (
        f"completion_tokens={r['completion_tokens']:>7} "
        f"({r['completion_tokens'] / REFERENCE['completion_tokens'] * 100:5.1f}% of ref)"
        if tokens_real
        else f"words={r['completion_tokens']:>7}"
    )
    print(
        f"{label:<44} sequences={r['sequences']:>5} ({seq_ratio * 100:5.1f}% of ref) {tok} "
        f"calls={r['llm_calls']:>4} rollouts={r['rollouts']:>3} nodes={r['nodes']:>4} "
        f"candidates={r['candidates']:>3} verified={r['verified']} wall={r['wall']:.1f}s "
        f"answer={r['answer']}"
    )


def scripted() -> None:
    def chain(verify: bool, profile: str = "paper", **cfg: Any) -> RStarChain:
        return RStarChain(
            generator=ScriptedLLM(responder=varied_responder, record_calls=False),
            discriminator=True if verify else False,
            config=RStarConfig(profile=profile, **cfg),
        )

    print("scripted model (varied samples; tokens are words):")
    defaults = RStarConfig()
    print(
        f"  defaults ({defaults.profile} profile): rollouts={defaults.num_rollouts} "
        f"a1={defaults.num_a1_steps} subq={defaults.num_subquestions} "
        f"votes={defaults.num_votes} depth={defaults.max_depth}"
    )
    show("  defaults, generator only", count(chain(False), QUESTION), False)
    show("  defaults, with verification", count(chain(True), QUESTION), False)
    show("  fast profile, generator only", count(chain(False, "fast"), QUESTION), False)
    show("  fast profile, with verification", count(chain(True, "fast"), QUESTION), False)
    show(
        "  fast + early_stop, with verification",
        count(chain(True, "fast", early_stop=True), QUESTION),
        False,
    )
    show("  GSM8K script settings, generator only", count(chain(False, **PAPER), QUESTION), False)
    show("  GSM8K script settings, with verification", count(chain(True, **PAPER), QUESTION), False)


def real(n: int, rollouts: int | None, max_tokens: int | None) -> None:
    from langchain_rstar.llms import default_llm

    path = None
    for root in (os.environ.get("RSTAR_DATA_DIR"), "/work/shared/data", "shared/data"):
        if root and (Path(root) / "gsm8k" / "test.json").exists():
            path = Path(root) / "gsm8k" / "test.json"
            break
    if path is None:
        raise SystemExit("no gsm8k/test.json found (set RSTAR_DATA_DIR)")
    rows = json.loads(path.read_text())[:n]
    llm = default_llm()
    overrides: dict[str, Any] = {}
    if rollouts:
        overrides["num_rollouts"] = rollouts
    if max_tokens:
        overrides["max_tokens"] = max_tokens
    config = RStarConfig(**overrides)
    print(f"embedded model ({type(llm).__name__}), config overrides {overrides or 'none'}:")
    chain = RStarChain(generator=llm, discriminator=True, config=config)
    totals: dict[str, float] = {}
    for i, row in enumerate(rows):
        question = row.get("problem") or row.get("question")
        r = count(chain, question)
        show(f"  gsm8k[{i}] gold={row.get('solution')}", r, True)
        for key in ("sequences", "completion_tokens", "wall"):
            totals[key] = totals.get(key, 0.0) + r[key]
    if rows:
        per_q = {k: v / len(rows) for k, v in totals.items()}
        scale = RStarConfig().num_rollouts / config.num_rollouts
        print(
            f"  mean per question: {per_q['sequences']:.0f} sequences, "
            f"{per_q['completion_tokens']:.0f} completion tokens, {per_q['wall']:.0f} s; "
            f"scaled to the default {RStarConfig().num_rollouts} rollouts (x{scale:g}, "
            f"roughly linear): {per_q['sequences'] * scale:.0f} sequences "
            f"({per_q['sequences'] * scale / REFERENCE['sequences'] * 100:.1f}% of ref), "
            f"{per_q['completion_tokens'] * scale:.0f} tokens "
            f"({per_q['completion_tokens'] * scale / REFERENCE['completion_tokens'] * 100:.1f}% "
            "of ref)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=0, help="GSM8K questions on the real model")
    parser.add_argument("--rollouts", type=int, default=None, help="num_rollouts for --real")
    parser.add_argument("--max-tokens", type=int, default=None, help="max_tokens for --real")
    parser.add_argument("--no-scripted", action="store_true")
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} cpus={os.cpu_count()}; "
        f"reference per GSM8K question: {REFERENCE}"
    )
    if not args.no_scripted:
        scripted()
    if args.real:
        real(args.real, args.rollouts, args.max_tokens)


if __name__ == "__main__":
    main()
