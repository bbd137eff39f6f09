"""Keep only the questions every given run finished, so methods compare on the same ids.

Usage:
    python benchmarks/common_subset.py runs/svamp-cot.jsonl runs/svamp-sc.jsonl \
        runs/svamp-rstar.jsonl --out runs/common
    rstar report runs/common/*.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    records: dict[Path, list[dict]] = {}
    for path in args.runs:
        lines = path.read_text(encoding="utf-8").splitlines()
        records[path] = [json.loads(line) for line in lines if line.strip()]
    common = set.intersection(*({str(r["id"]) for r in recs} for recs in records.values()))
    args.out.mkdir(parents=True, exist_ok=True)
    for path, recs in records.items():
        kept = [r for r in recs if str(r["id"]) in common]
        with open(args.out / path.name, "w", encoding="utf-8") as fh:
            for r in kept:
                fh.write(json.dumps(r) + "\n")
        print(f"{path.name}: {len(kept)} of {len(recs)} records on the {len(common)} common ids")


if __name__ == "__main__":
    main()
