"""What the ``paper`` and ``fast`` profiles cost per question, by action (issue #14).

For both profiles at 16 and 32 rollouts, over the first 20 SVAMP questions bundled with the
package, this prints per question: model calls, sampled sequences, generated tokens and
prompt tokens for each action (A1..A5) and for the discriminator, and the paper/fast ratio
of the totals. The numbers are taken from the model runs themselves (a callback reads each
run's action from the metadata the package attaches to it), not from the search's own
accounting.

* Scripted model (default): :class:`~langchain_rstar.testing.ScriptedLLM` with varied,
  deterministic samples for every prompt kind; "tokens" are words there, so compare the
  *ratios* and the sequence counts, not the token values. The generator verifies with a
  second scripted model (the paper's setup; verification settings are the main branch's).
* ``--real N``: the first N questions on the embedded model (Gemma 3 270M on CPU; run it
  under ``engine-slot``), at ``--rollouts`` (e.g. 2), tokens are real.

For orientation, the authors' reference code at its GSM8K script settings draws on the order
of 1,400 generator sequences per question at 16 rollouts (issue #14).

Run::

    python benchmarks/bench_profiles.py
    python benchmarks/bench_profiles.py --json benchmarks/results/profiles-scripted.json
    engine-slot python benchmarks/bench_profiles.py --real 1 --rollouts 2
    python benchmarks/bench_profiles.py --real 3 --rollouts 2 --base-url http://127.0.0.1:8311/v1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.eval.datasets import load_dataset
from langchain_rstar.testing import ScriptedLLM

KINDS = ("A1", "A2", "A3", "A4", "A5", "discriminator")
FIELDS = ("calls", "sequences", "generated", "prompt")
REFERENCE_SEQUENCES_16 = 1400

_STEP = re.compile(r"Step (\d+):$")
_SUBQ = re.compile(r"Sub-question (\d+):$")
_ANSWER = re.compile(r"Answer \d+:( Let's work it out step by step\.)?$")
_COT = "Answer: Let's think step by step."


class Tally(BaseCallbackHandler):
    """Counts each model run under the action its metadata names (thread-safe: verification
    runs its calls in parallel)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kind_of: dict[UUID, str] = {}
        self.counts: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        kind = "discriminator" if "rstar_candidate" in meta else str(meta.get("rstar_action"))
        with self.lock:
            self.kind_of[run_id] = kind

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.on_llm_start(serialized, [], **kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        usage = (response.llm_output or {}).get("token_usage") or {}
        with self.lock:
            row = self.counts[self.kind_of.pop(run_id, "unknown")]
            row["calls"] += 1
            row["sequences"] += sum(len(g) for g in response.generations)
            row["generated"] += float(usage.get("completion_tokens", 0))
            row["prompt"] += float(usage.get("prompt_tokens", 0))


def _h(prompt: str, j: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{j}:{prompt}".encode()).digest()[:4], "big")


def _answer(h: int) -> str:
    r = h % 20
    return "10" if r < 12 else ("12" if r < 17 else "7")


def varied(prompt: str, n: int) -> list[str]:
    """Varied, deterministic samples for every prompt kind of both profiles."""
    tail = prompt[-120:]
    last = prompt.rstrip().rsplit("Question:", 1)[-1].split("\n", 1)[0]
    ask = last.strip().rstrip(".").rsplit(".", 1)[-1].strip() or "the question"
    out: list[str] = []
    for j in range(n):
        h = _h(prompt, j)
        ans = _answer(h)
        if tail.endswith(_COT):  # a whole solution (A2 regenerate, A4 resolve)
            steps = " ".join(f"Part {i} of the work gives {h % (7 + i)}." for i in range(h % 4))
            out.append(f" {steps} Together that is {ans}. The answer is {ans}.")
        elif tail.endswith("Rephrased question:"):
            out.append(f" Condition 1: some numbers are given. Question: {ask}")
        elif m := _STEP.search(tail):
            k = int(m.group(1))
            if h % 3 == 0:
                out.append(f" So the total is {ans}. The answer is {ans}.")
            else:
                out.append(
                    f" Partial result number {h % 7} for this step.\n"
                    f"Step {k + 1}: Combining gives {ans}. The answer is {ans}."
                )
        elif m := _SUBQ.search(tail):
            if int(m.group(1)) >= 3 or h % 4 == 0:
                out.append(f" Now we can answer the question: {ask}")
            else:
                out.append(f" What is intermediate quantity {h % 5}?")
        elif _ANSWER.search(tail):
            out.append(f" Computing part {h % 3} gives {ans}. The answer is {ans}.")
        else:  # a masked candidate the discriminator completes
            out.append(f" Then {h % 9} more. The answer is {ans}.")
    return out


def measure(
    profile: str,
    rollouts: int,
    questions: Sequence[str],
    make_llm: Any,
    verify: bool = True,
    fields: dict[str, Any] | None = None,
    concurrent: bool = False,
) -> dict[str, Any]:
    """One profile over ``questions``; they run concurrently (``chain.batch``) when
    ``concurrent`` (a real model batches their requests), else one after another."""
    tally = Tally()
    config = RStarConfig(profile=profile, num_rollouts=rollouts, **(fields or {}))  # type: ignore[arg-type]
    generator = make_llm()
    chain = RStarChain(
        generator=generator,
        discriminator=make_llm() if verify else False,
        config=config,
    )
    start = time.perf_counter()
    if concurrent:
        batch = chain.batch(list(questions), {"callbacks": [tally]})
        answers = [r.answer for r in batch]
    else:
        answers = [chain.invoke(q, {"callbacks": [tally]}).answer for q in questions]
    wall = time.perf_counter() - start
    per_q = {
        kind: {f: tally.counts[kind][f] / len(questions) for f in FIELDS}
        for kind in (*KINDS, *(k for k in tally.counts if k not in KINDS))
    }
    total = {f: sum(per_q[k][f] for k in per_q) for f in FIELDS}
    generator_total = {f: sum(per_q[k][f] for k in per_q if k != "discriminator") for f in FIELDS}
    return {
        "profile": profile,
        "rollouts": rollouts,
        "questions": len(questions),
        "per_question": per_q,
        "total": total,
        "generator_total": generator_total,
        "wall_seconds_per_question": wall / len(questions),
        "answers": answers,
    }


def show(r: dict[str, Any], token_word: str) -> None:
    print(
        f"\n{r['profile']} profile, {r['rollouts']} rollouts, per question "
        f"(mean of {r['questions']}; {r['wall_seconds_per_question']:.2f} s each):"
    )
    print(
        f"  {'action':<14}{'calls':>9}{'sequences':>11}{'gen ' + token_word:>13}"
        f"{'prompt ' + token_word:>15}"
    )
    rows = [*r["per_question"].items(), ("generator", r["generator_total"]), ("all", r["total"])]
    for kind, row in rows:
        print(
            f"  {kind:<14}{row['calls']:>9.1f}{row['sequences']:>11.1f}"
            f"{row['generated']:>13.0f}{row['prompt']:>15.0f}"
        )


def ratios(paper: dict[str, Any], fast: dict[str, Any]) -> dict[str, float]:
    return {
        f"{scope}_{f}": paper[scope][f] / fast[scope][f]
        for scope in ("generator_total", "total")
        for f in FIELDS
        if fast[scope][f]
    }


def ablate(
    rollouts: int, questions: Sequence[str], make_llm: Any, verify: bool, concurrent: bool = False
) -> list[dict[str, Any]]:
    """Paper, then paper with each ``FAST_PROFILE`` field set to its fast value alone, then
    fast: all-model sequences and generated tokens per question, as a share of paper's."""
    from langchain_rstar.config import FAST_PROFILE

    base = measure("paper", rollouts, questions, make_llm, verify, concurrent=concurrent)
    rows = []
    print(
        f"\nablation at {rollouts} rollouts ({len(questions)} questions): paper with one fast field"
    )
    print(
        f"  {'field = fast value':<44}{'sequences':>11}{'x paper':>9}"
        f"{'generated':>11}{'x paper':>9}"
    )

    def row(label: str, r: dict[str, Any]) -> None:
        seq, gen = r["total"]["sequences"], r["total"]["generated"]
        bseq, bgen = base["total"]["sequences"], base["total"]["generated"]
        print(f"  {label:<44}{seq:>11.1f}{seq / bseq:>9.2f}{gen:>11.0f}{gen / bgen:>9.2f}")
        rows.append(
            {
                "label": label,
                "sequences": seq,
                "generated": gen,
                "sequences_ratio": seq / bseq,
                "generated_ratio": gen / bgen,
            }
        )

    row("paper (no deviation)", base)
    for name, value in FAST_PROFILE.items():
        row(
            f"{name} = {value!r}",
            measure("paper", rollouts, questions, make_llm, verify, {name: value}, concurrent),
        )
    fast = measure("fast", rollouts, questions, make_llm, verify, concurrent=concurrent)
    row("fast (every deviation)", fast)
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20, help="SVAMP questions (first N)")
    parser.add_argument("--rollouts", type=int, nargs="*", default=[16, 32])
    parser.add_argument("--real", type=int, default=0, help="use the embedded model on N questions")
    parser.add_argument(
        "--base-url",
        help="with --real: the embedded model behind this OpenAI-compatible server "
        "(benchmarks/eval_profiles.sh starts one) instead of an in-process engine",
    )
    parser.add_argument("--served-model", default="gemma-3-270m", help="with --base-url")
    parser.add_argument("--no-verify", action="store_true", help="generator only")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="paper with ONE fast deviation at a time (each FAST_PROFILE field alone): "
        "what each deviation saves, at the first --rollouts value",
    )
    args = parser.parse_args(argv)

    n_questions = args.real or args.questions
    questions = [ex.problem for ex in load_dataset("svamp", limit=n_questions)]
    if args.real:
        if args.base_url:
            from langchain_openai import OpenAI

            engine: Any = OpenAI(
                base_url=args.base_url, model=args.served_model, api_key="EMPTY", max_retries=0
            )
        else:
            from langchain_rstar.llms import default_llm

            engine = default_llm()

        def make_llm() -> Any:
            return engine

        token_word = "tokens"
    else:

        def make_llm() -> Any:
            return ScriptedLLM(responder=varied, record_calls=False)

        token_word = "words"

    print(
        f"bench_profiles: {n_questions} SVAMP questions, {'embedded' if args.real else 'scripted'}"
    )
    out: dict[str, Any] = {"runs": [], "ratios": {}}
    if args.ablate:
        out["ablation"] = ablate(
            args.rollouts[0], questions, make_llm, not args.no_verify, bool(args.real)
        )
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        return out
    for rollouts in args.rollouts:
        got = {}
        for profile in ("paper", "fast"):
            got[profile] = measure(
                profile,
                rollouts,
                questions,
                make_llm,
                verify=not args.no_verify,
                concurrent=bool(args.real),
            )
            show(got[profile], token_word)
            out["runs"].append(got[profile])
        r = ratios(got["paper"], got["fast"])
        out["ratios"][str(rollouts)] = r
        print(
            f"\n  paper/fast at {rollouts} rollouts: generator sequences "
            f"{r.get('generator_total_sequences', float('nan')):.2f}x, generated "
            f"{token_word} {r.get('generator_total_generated', float('nan')):.2f}x, calls "
            f"{r.get('generator_total_calls', float('nan')):.2f}x; with the discriminator: "
            f"sequences {r.get('total_sequences', float('nan')):.2f}x, generated "
            f"{r.get('total_generated', float('nan')):.2f}x"
        )
        if rollouts == 16:
            seq = got["paper"]["generator_total"]["sequences"]
            print(
                f"  paper generator sequences per question at 16 rollouts: {seq:.0f} "
                f"(the reference code: on the order of {REFERENCE_SEQUENCES_16})"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
