"""Does a real search keep the engine busy? Search throughput against the engine's peak.

Everything in one run, on one :class:`~langchain_rstar.llms.VLLMEngine` (embedded model):

1. **peak**: one ``generate`` call over 64 different prompts of similar length (few-shot
   block + a GSM8K question), ``n=1``, ``--tokens`` tokens each (``ignore_eos``), with the
   search's sampling parameters: the engine's own completion tokens/s at a full batch.
2. **waves**: an rStar search with ``rollout_batch=--batch`` (parallel rollouts with
   virtual loss; all expansions of a wave are sent at once and the engine coalesces them):
   completion tokens/s over the search's wall time, and that divided by the peak.
3. **sequential, no coalescing**: the same search with ``rollout_batch=1`` through a
   wrapper that lets one request into the engine at a time.

Also printed: engine batches, requests per batch, and the share of prompt tokens served by
vLLM's prefix cache (``cached_prompt_tokens / prompt_tokens``).

Targets: search >= 0.7 of peak; waves >= 3x the sequential, uncoalesced search.

Run (keep it short on CPU; one engine at a time on the machine)::

    python benchmarks/bench_batching.py --rollouts 8 --batch 8 --max-tokens 64
    # both engine workers on one engine, waves only:
    python benchmarks/bench_batching.py --workers coalescing,continuous --skip-sequential
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseLLM
from langchain_core.outputs import LLMResult
from pydantic import ConfigDict, PrivateAttr

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.llms.base import RStarBackend


class OneAtATime(RStarBackend, BaseLLM):
    """Forwards to ``llm`` but lets only one request into it at a time (no coalescing)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: Any
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "one-at-a-time"

    def _generate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        with self._lock:
            return self.llm._generate(prompts, stop=stop, **kw)

    async def _agenerate(self, *args: Any, **kw: Any) -> LLMResult:
        raise NotImplementedError("sync only")


def gsm8k(count: int, offset: int = 0) -> list[str]:
    for root in (os.environ.get("RSTAR_DATA_DIR"), "/work/shared/data", "shared/data"):
        if root and (Path(root) / "gsm8k" / "test.json").exists():
            rows = json.loads((Path(root) / "gsm8k" / "test.json").read_text())
            return [r.get("problem") or r.get("question") for r in rows[offset : offset + count]]
    raise SystemExit("no gsm8k/test.json found (set RSTAR_DATA_DIR)")


def peak(llm: Any, config: RStarConfig, tokens: int) -> tuple[float, dict[str, Any]]:
    from langchain_rstar import prompts as P

    questions = gsm8k(64, offset=100)
    prompts = [P.solve_prefix(config.task, q) + "Step 1:" for q in questions]
    # the filters the search sends to this backend (sampling_preset resolved for it)
    resolved = config.for_backend(llm).sampling_kwargs()
    params = {k: v for k, v in resolved.items() if k != "max_tokens"}
    llm.reset_stats()
    start = time.perf_counter()
    res = llm.generate(prompts, n=1, max_tokens=tokens, ignore_eos=True, **params)
    wall = time.perf_counter() - start
    usage = res.llm_output["token_usage"]
    return usage["completion_tokens"] / wall, {"wall": wall, **usage, **llm.stats}


def search(chain: RStarChain, engine: Any, question: str) -> dict[str, Any]:
    engine.reset_stats()
    start = time.perf_counter()
    result = chain.invoke(question)
    wall = time.perf_counter() - start
    u = result.usage
    stats = engine.stats
    return {
        "wall": wall,
        "tok_s": u.completion_tokens / wall,
        "completion_tokens": u.completion_tokens,
        "prompt_tokens": u.prompt_tokens,
        "cached_prompt_tokens": u.cached_prompt_tokens,
        "llm_calls": u.llm_calls,
        "samples": u.samples,
        "framework_share": u.framework_seconds / u.wall_seconds if u.wall_seconds else 0.0,
        "batches": stats["batches"],
        "requests": stats["requests"],
        "max_batch_requests": stats["max_batch_requests"],
        "busy_s": stats["busy_s"],
        "steps": stats["steps"],
        "answer": result.answer,
    }


def show(label: str, r: dict[str, Any], top: float) -> None:
    cached = r["cached_prompt_tokens"] / r["prompt_tokens"] if r["prompt_tokens"] else 0.0
    print(
        f"  {label:<34} {r['tok_s']:7.1f} tok/s = {r['tok_s'] / top:4.2f} of peak | "
        f"{r['completion_tokens']} tokens, {r['samples']} samples in {r['wall']:.1f} s | "
        f"{r['llm_calls']} requests in {r['batches']} engine batches "
        f"({r['requests'] / max(r['batches'], 1):.1f}/batch, max {r['max_batch_requests']}) | "
        f"prefix cache {cached * 100:.0f}% of prompt tokens | "
        f"engine busy {r['busy_s'] / r['wall'] * 100:.0f}% of the wall time "
        f"({r['tok_s'] * r['wall'] / max(r['busy_s'], 1e-9):.1f} tok per busy s"
        + (f", {r['steps']} steps" if r["steps"] else "")
        + ") | "
        f"framework {r['framework_share'] * 100:.1f}% | answer {r['answer']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8, help="rollout_batch of the wave run")
    parser.add_argument("--max-tokens", type=int, default=64, help="token cap per step")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per prompt for the peak")
    parser.add_argument("--question", type=int, default=0, help="GSM8K test index")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument(
        "--workers",
        default="",
        help="comma list of coalescing,continuous: run the waves search under each engine "
        "worker, on the same engine (default: the engine's own mode)",
    )
    parser.add_argument("--engine-kwargs", default="{}", help="JSON for VLLMEngine(**...)")
    parser.add_argument("--config", default="{}", help="JSON of RStarConfig overrides")
    args = parser.parse_args()

    from langchain_rstar.llms.vllm_engine import VLLMEngine

    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} cpus={os.cpu_count()}")
    engine = VLLMEngine(**json.loads(args.engine_kwargs))
    start = time.perf_counter()
    engine.start()
    print(f"engine ready in {time.perf_counter() - start:.0f} s ({engine.model_name})")
    overrides = json.loads(args.config)
    config = RStarConfig(num_rollouts=args.rollouts, max_tokens=args.max_tokens, **overrides)
    print(
        f"search config: {config.model_dump(exclude_defaults=True)}; sampling sent: "
        f"{config.for_backend(engine).sampling_kwargs()}"
    )
    engine.generate(["Question: 1+1?\nStep 1:"], n=2, max_tokens=4)  # warm up
    top, info = peak(engine, config, args.tokens)
    print(
        f"  peak: 64 prompts x {args.tokens} tokens in one call: {top:7.1f} tok/s "
        f"({info['completion_tokens']} tokens in {info['wall']:.1f} s, {info['batches']} batch)",
        flush=True,
    )
    question = gsm8k(1, offset=args.question)[0]
    waves = RStarChain(
        generator=engine,
        config=config.model_copy(update={"rollout_batch": args.batch}),
    )
    modes = [m for m in args.workers.split(",") if m] or [
        "continuous" if engine.continuous_batching else "coalescing"
    ]
    runs: dict[str, dict[str, Any]] = {}
    for mode in modes:
        if mode not in ("coalescing", "continuous"):
            raise SystemExit(f"unknown worker {mode!r}")
        if (mode == "continuous") != engine.continuous_batching:
            engine.set_continuous_batching(mode == "continuous")
        runs[mode] = w = search(waves, engine, question)
        show(f"waves (rollout_batch={args.batch}, {mode})", w, top)
    if not args.skip_sequential:
        seq = RStarChain(
            generator=OneAtATime(llm=engine),
            config=config.model_copy(update={"rollout_batch": 1}),
        )
        s = search(seq, engine, question)
        show("sequential, one request at a time", s, top)
        for mode, w in runs.items():
            print(f"  waves ({mode}) / sequential throughput: {w['tok_s'] / s['tok_s']:.2f}x")
    for mode, w in runs.items():
        print(f"  waves ({mode}) / peak: {w['tok_s'] / top:.2f}")
    engine.close()


if __name__ == "__main__":
    main()
