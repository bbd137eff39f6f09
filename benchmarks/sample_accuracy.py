"""Compare ``sc`` runs made with different sampling filters, on the questions they share.

Each ``rstar eval --method sc`` record keeps every sample's answer (``answers``: answer ->
count), so besides the majority vote this prints the accuracy of single samples (over all
``questions x num_samples`` of them, a much larger count than the questions) and pass@k
(the gold answer among the samples). Intervals are 95% Wilson intervals; per-sample
intervals treat samples as independent, which samples of one question are not, so read
them as a lower bound on the uncertainty. ``paired`` counts the questions where the
majority is right in one run and wrong in the other.

Usage::

    python benchmarks/sample_accuracy.py runs/svamp-sc.jsonl runs/svamp-sc-paper.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from langchain_rstar.answers import get_checker
from langchain_rstar.eval.report import wilson_interval


def _load(path: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {str(r["id"]): r for r in rows if r.get("method") == "sc" and not r.get("error")}


def _filters(row: dict[str, Any]) -> str:
    s = row.get("settings") or {}
    parts = [f"T={s.get('temperature')}"]
    for key in ("top_k", "top_p", "min_p"):
        if s.get(key) is not None:
            parts.append(f"{key}={s[key]}")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    runs = {path: _load(path) for path in args.runs}
    common = sorted(set.intersection(*(set(r) for r in runs.values())), key=str)
    print(f"{len(common)} questions finished in all {len(runs)} runs")
    majority_right: dict[Path, set[str]] = {}
    for path, rows in runs.items():
        right = covered = samples = right_samples = tokens = 0
        majority_right[path] = set()
        for qid in common:
            row = rows[qid]
            checker = get_checker(row.get("task") or "arithmetic")
            gold = str(row["gold"])
            counts = row.get("answers") or {}
            hits = sum(c for a, c in counts.items() if checker.equivalent(a, gold))
            n = int((row.get("usage") or {}).get("samples") or sum(counts.values()))
            samples += n
            right_samples += hits
            # ``correct`` / ``covered`` as `rstar eval` graded them (evaluation.grade).
            covered += bool(row.get("covered"))
            if row.get("correct"):
                right += 1
                majority_right[path].add(qid)
            tokens += int((row.get("usage") or {}).get("completion_tokens") or 0)
        q = len(common)
        lo, hi = wilson_interval(right, q)
        slo, shi = wilson_interval(right_samples, samples)
        clo, chi = wilson_interval(covered, q)
        print(
            f"{path.name}: {_filters(rows[common[0]]) if common else ''}\n"
            f"  majority {right}/{q} = {right / q:.1%} [{lo:.1%}, {hi:.1%}]   "
            f"pass@k {covered}/{q} = {covered / q:.1%} [{clo:.1%}, {chi:.1%}]   "
            f"per sample {right_samples}/{samples} = {right_samples / samples:.2%} "
            f"[{slo:.2%}, {shi:.2%}]   {tokens / q:,.0f} tokens/q"
        )
    paths = list(runs)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            only_a = len(majority_right[a] - majority_right[b])
            only_b = len(majority_right[b] - majority_right[a])
            print(f"paired: right only in {a.name}: {only_a}, only in {b.name}: {only_b}")


if __name__ == "__main__":
    main()
