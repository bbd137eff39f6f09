"""Throughput of the local backends on the embedded Gemma 3 270M.

Prints generated tokens per second for

* one sequence, greedy, 128 tokens;
* n=32 samples of one prompt (temperature 0.8), top-k 40 only vs top-k 40 + top-p 0.95
  (``--cases`` also offers temperature only, min-p 0.05, top-k 40 + min-p 0.05);
* 64 different prompts in one ``generate`` call, same two sampling settings;
* 64 different prompts sent by 64 threads at once (one prompt each): what the
  coalescing worker turns into engine batches;
* (``--cases staggered``) 16 requests of n=4 arriving one per ``--stagger-s`` seconds:
  throughput and mean latency, with ``LLM.generate`` batches vs ``--continuous``.

Every sample is forced to the full length (``ignore_eos`` / ``min_new_tokens``) so the
token counts are comparable. Usage::

    python benchmarks/bench_backends.py                     # VLLMEngine, compiled
    python benchmarks/bench_backends.py --eager             # VLLMEngine, enforce_eager
    python benchmarks/bench_backends.py --backend transformers --tokens 32
    python benchmarks/bench_backends.py --cases staggered --tokens 64             # generate()
    python benchmarks/bench_backends.py --cases staggered --tokens 64 --continuous

The machine's load average is printed too: on a shared machine the numbers move a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from typing import Any

PROMPT = "Question: Natalia sold clips to 48 of her friends in April. How many clips?\nAnswer:"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        a, b, c = os.getloadavg()
        return f"load {a:.1f}/{b:.1f}/{c:.1f}"
    except OSError:
        return "load ?"


def measure(llm: Any, prompts: list[str], repeat: int, **kwargs: Any) -> dict[str, float]:
    """Run ``llm.generate(prompts, **kwargs)`` ``repeat`` times; tokens/s (best, median)."""
    rates: list[float] = []
    walls: list[float] = []
    tokens = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = llm.generate(prompts, **kwargs)
        wall = time.perf_counter() - t0
        tokens = res.llm_output["token_usage"]["completion_tokens"]
        rates.append(tokens / wall)
        walls.append(wall)
    return {
        "best": max(rates),
        "median": statistics.median(rates),
        "tokens": tokens,
        "wall": min(walls),
    }


def measure_threads(
    llm: Any, prompts: list[str], interval_s: float = 0.0, **kwargs: Any
) -> dict[str, float]:
    """One thread per prompt; tokens/s, mean latency and engine batches used.

    ``interval_s=0``: all threads are released at once (a barrier); otherwise they start
    ``interval_s`` apart (staggered arrivals).
    """
    latencies: list[float] = []
    counts: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(prompts) + 1) if interval_s <= 0 else None

    def call(p: str) -> None:
        if barrier is not None:
            barrier.wait()
        t = time.perf_counter()
        res = llm.generate([p], **kwargs)
        with lock:
            latencies.append(time.perf_counter() - t)
            counts.append(res.llm_output["token_usage"]["completion_tokens"])

    threads = [threading.Thread(target=call, args=(p,)) for p in prompts]
    if barrier is not None:
        for th in threads:
            th.start()
    reset = getattr(llm, "reset_stats", None)
    if reset:
        reset()
    t0 = time.perf_counter()
    if barrier is not None:
        barrier.wait()
    else:
        for th in threads:
            th.start()
            time.sleep(interval_s)
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    stats = getattr(llm, "stats", {})
    return {
        "best": sum(counts) / wall,
        "median": sum(counts) / wall,
        "tokens": sum(counts),
        "wall": wall,
        "mean_latency": statistics.mean(latencies),
        "batches": stats.get("batches", float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["vllm", "transformers"], default="vllm")
    parser.add_argument("--model", default=None, help="model folder/id (default: embedded)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per sample")
    parser.add_argument("--n", type=int, default=32, help="samples of one prompt")
    parser.add_argument("--prompts", type=int, default=64, help="different prompts per batch")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (best is shown)")
    parser.add_argument("--eager", action="store_true", help="vLLM enforce_eager (no compile)")
    parser.add_argument("--kv-gb", type=float, default=4.0, help="vLLM CPU KV cache GiB")
    parser.add_argument(
        "--cases",
        default="greedy,n,n_topp,batch,batch_topp,threads",
        help="comma list of: greedy, n, n_temp, n_minp, n_topk_minp, n_topp, batch, "
        "batch_topp, threads, staggered",
    )
    parser.add_argument(
        "--continuous",
        action="store_true",
        help="VLLMEngine(continuous_batching=True); without it this benchmark pins "
        "coalesced generate() batches (continuous_batching=False), not the engine's default",
    )
    parser.add_argument(
        "--no-shortlist",
        action="store_true",
        help="shortlist_top_p=False: the backend's own top-p (sorts the vocabulary)",
    )
    parser.add_argument("--stagger-s", type=float, default=1.0, help="staggered: gap (s)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    from langchain_rstar.llms.embedded import resolve_model

    model = resolve_model(args.model)
    import torch

    versions = f"torch {torch.__version__}"
    if args.backend == "vllm":
        import vllm

        from langchain_rstar.llms import VLLMEngine

        versions += f", vllm {vllm.__version__}"
        llm: Any = VLLMEngine(
            model=model,
            kv_cache_space_gb=args.kv_gb,
            max_model_len=2048,
            engine_kwargs={"enforce_eager": True} if args.eager else {},
            continuous_batching=args.continuous,
            shortlist_top_p=False if args.no_shortlist else None,
        )
        force_len = {"ignore_eos": True}
    else:
        from langchain_rstar.llms import TransformersLLM

        llm = TransformersLLM(
            model=model, batch_size=args.prompts, shortlist_top_p=not args.no_shortlist
        )
        force_len = {"min_new_tokens": args.tokens}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {_cpu_name()}, {os.cpu_count()} CPUs, {versions}")
    print(
        f"# backend={args.backend} eager={args.eager} continuous={args.continuous} "
        f"shortlist_top_p={not args.no_shortlist} model={model}"
    )
    t0 = time.perf_counter()
    if args.backend == "vllm":
        llm.start()
    else:
        llm.load()
    print(f"start: {time.perf_counter() - t0:.1f} s ({_load()})", flush=True)
    llm.generate([PROMPT], max_tokens=4, temperature=0)  # warm-up

    tok = args.tokens
    many = [
        f"Question: What is {i} + {3 * i + 1}? Think step by step.\nAnswer:"
        for i in range(args.prompts)
    ]
    topk = {"temperature": 0.8, "top_k": 40, "seed": 0}
    topp = dict(topk, top_p=0.95)
    wanted = set(args.cases.split(","))
    cases: list[tuple[str, str, list[str], dict[str, Any]]] = [
        ("greedy", f"1 sequence, greedy, {tok} tokens", [PROMPT], {"temperature": 0}),
        ("n", f"n={args.n} of one prompt, top-k 40", [PROMPT], dict(topk, n=args.n)),
        (
            "n_temp",
            f"n={args.n} of one prompt, temperature only",
            [PROMPT],
            {"temperature": 0.8, "seed": 0, "n": args.n},
        ),
        (
            "n_minp",
            f"n={args.n} of one prompt, min-p 0.05",
            [PROMPT],
            {"temperature": 0.8, "seed": 0, "min_p": 0.05, "n": args.n},
        ),
        (
            "n_topk_minp",
            f"n={args.n} of one prompt, top-k 40 + min-p 0.05",
            [PROMPT],
            dict(topk, min_p=0.05, n=args.n),
        ),
        (
            "n_topp",
            f"n={args.n} of one prompt, top-k 40 + top-p 0.95",
            [PROMPT],
            dict(topp, n=args.n),
        ),
        ("batch", f"{args.prompts} prompts in one call, top-k 40", many, topk),
        ("batch_topp", f"{args.prompts} prompts in one call, top-k 40 + top-p 0.95", many, topp),
    ]
    results: list[dict[str, Any]] = []
    for key, label, prompts, kw in cases:
        if key not in wanted:
            continue
        r = measure(llm, prompts, args.repeat, max_tokens=tok, **force_len, **kw)
        results.append({"case": label, **r})
        print(
            f"{label:<48} {r['best']:8.1f} tok/s  ({r['tokens']} tokens in {r['wall']:.1f} s, "
            f"{_load()})",
            flush=True,
        )
    if "threads" in wanted and args.backend == "vllm":
        r = measure_threads(llm, many, max_tokens=tok, **force_len, **topk)
        label = f"{args.prompts} threads x 1 prompt, top-k 40"
        results.append({"case": label, **r})
        print(
            f"{label:<48} {r['best']:8.1f} tok/s  ({r['tokens']} tokens in {r['wall']:.1f} s, "
            f"{r['batches']} engine batches, {_load()})",
            flush=True,
        )
    if "staggered" in wanted:
        few = many[:16]
        r = measure_threads(
            llm, few, args.stagger_s, max_tokens=tok, **force_len, **dict(topk, n=4)
        )
        label = f"16 requests x n=4, one every {args.stagger_s:g} s"
        results.append({"case": label, **r})
        print(
            f"{label:<48} {r['best']:8.1f} tok/s  ({r['tokens']} tokens in {r['wall']:.1f} s, "
            f"mean latency {r['mean_latency']:.1f} s, {r['batches']} batches, {_load()})",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"backend": args.backend, "eager": args.eager, "results": results}, fh)
    close = getattr(llm, "close", None)
    if close:
        close()


if __name__ == "__main__":
    main()
