"""Report: Wilson intervals, the summary table on hand-made records, the plot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar.eval.report import (
    load_records,
    markdown_table,
    plot_accuracy_vs_cost,
    summarize,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_interval_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def record(i: int, method: str, correct: bool, covered: bool, **usage: Any) -> dict[str, Any]:
    u = {
        "llm_calls": 1,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "samples": 1,
        "seconds": 0.5,
    }
    u.update(usage)
    return {
        "id": f"q{i}",
        "method": method,
        "label": method,
        "dataset": "svamp",
        "prediction": "1",
        "gold": "1" if correct else "2",
        "correct": correct,
        "covered": covered,
        "usage": u,
        "error": None,
        "model": "tiny",
    }


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    cot = [record(i, "cot", correct=i < 8, covered=i < 8) for i in range(10)]
    sc = [
        record(
            i,
            "sc",
            correct=i < 5,
            covered=i < 9,
            llm_calls=1,
            completion_tokens=400,
            prompt_tokens=100,
            seconds=2.0,
        )
        for i in range(10)
    ]
    return [write(tmp_path / "cot.jsonl", cot), write(tmp_path / "sc.jsonl", sc)]


def test_summary_numbers(files: list[Path]) -> None:
    rows = {r.label: r for r in summarize(load_records(files))}
    cot, sc = rows["cot"], rows["sc"]
    assert (cot.n, cot.correct, cot.covered) == (10, 8, 8)
    assert cot.accuracy == 0.8 and cot.coverage == 0.8 and cot.accuracy_given_coverage == 1.0
    assert cot.interval == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert (sc.correct, sc.covered) == (5, 9)
    assert sc.accuracy_given_coverage == pytest.approx(5 / 9)
    assert sc.per_question("completion_tokens") == 400
    assert sc.per_question("total_tokens") == 500
    assert sc.per_question("seconds") == 2.0
    assert cot.per_question("llm_calls") == 1


def test_markdown_table(files: list[Path]) -> None:
    table = markdown_table(summarize(load_records(files)))
    lines = table.splitlines()
    assert lines[0].startswith("| method | dataset | n | accuracy (95% CI)")
    cot_line = next(ln for ln in lines if ln.startswith("| cot "))
    assert "| 10 | 80.0% [49.0, 94.3] | 80.0% | 100.0% | 50.0 | 100 | 1.00 | 0.50 |" in cot_line
    sc_line = next(ln for ln in lines if ln.startswith("| sc "))
    assert "50.0% [23.7, 76.3]" in sc_line and "| 90.0% | 55.6% | 400 |" in sc_line
    # rows sorted by cost within a dataset: cot first
    assert lines.index(cot_line) < lines.index(sc_line)
    assert "Model: tiny." in table


def test_duplicates_across_files_count_once(files: list[Path], tmp_path: Path) -> None:
    again = write(tmp_path / "again.jsonl", [record(0, "cot", correct=False, covered=False)])
    warnings: list[str] = []
    rows = {r.label: r for r in summarize(load_records([*files, again], warn=warnings.append))}
    assert rows["cot"].n == 10 and rows["cot"].correct == 8
    assert warnings and "duplicate" in warnings[0]


def test_plot_is_a_png(files: list[Path], tmp_path: Path) -> None:
    rows = summarize(load_records(files))
    out = plot_accuracy_vs_cost(rows, tmp_path / "plots" / "acc.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_accuracy_vs_cost(rows, tmp_path / "bad.png", x="nope")


def test_rstar_runs_also_report_their_generator_majority(tmp_path: Path) -> None:
    recs = []
    for i in range(4):
        rec = record(i, "rstar", correct=i < 3, covered=True, completion_tokens=3000)
        rec["extra"] = {"generator_answer": "x", "generator_correct": i < 1}
        recs.append(rec)
    rows = summarize(load_records([write(tmp_path / "r.jsonl", recs)]))
    assert [(r.label, r.derived) for r in rows] == [("rstar [generator]", True), ("rstar", False)]
    gen, full = rows
    assert (gen.n, gen.correct, gen.covered) == (4, 1, 4)
    assert (full.correct, full.per_question("completion_tokens")) == (3, 3000)
    table = markdown_table(rows)
    assert "| rstar [generator] | svamp | 4 | 25.0% [" in table
    assert "(same search)" in table
    assert len(summarize(load_records([tmp_path / "r.jsonl"]), derive_generator=False)) == 1


@pytest.mark.parametrize("n", [1, 7, 9, 12, 14, 18, 100])
def test_wilson_bounds_contain_p_even_at_the_edges(n: int) -> None:
    # Rounding once put the low bound at +1e-17 for 0/7, and the plot then failed on a
    # negative error bar.
    assert wilson_interval(0, n)[0] == 0.0
    assert wilson_interval(n, n)[1] == 1.0


def test_plot_of_runs_with_no_correct_answer(tmp_path: Path) -> None:
    recs = [record(i, "cot", correct=False, covered=False) for i in range(7)]
    rows = summarize(load_records([write(tmp_path / "zero.jsonl", recs)]))
    out = plot_accuracy_vs_cost(rows, tmp_path / "zero.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- issue 19.9: schema-invalid records and escaped labels --------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"id": {"x": 1}},
        {"id": "z1", "usage": ["not", "a", "dict"]},
        {"id": "z2", "usage": {"completion_tokens": "many"}},
        {"id": "z3", "usage": {"seconds": float("inf")}},
        {"id": "z4", "extra": "oops"},
        {"id": "z5", "label": ["a"]},
        {"id": "z6", "correct": "yes"},
    ],
)
def test_schema_invalid_records_are_skipped_and_counted(
    files: list[Path], tmp_path: Path, bad: dict[str, Any]
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({**record(99, "cot", True, True), **bad}) + "\n")
    warnings: list[str] = []
    rows = {r.label: r for r in summarize(load_records([*files, broken], warn=warnings.append))}
    assert rows["cot"].n == 10
    assert any("1 record(s) without the result schema skipped" in w for w in warnings)
    markdown_table(list(rows.values()))


def test_markdown_table_escapes_labels(tmp_path: Path) -> None:
    evil = "x | 1 | 2\n| injected | row |<img src=x onerror=alert(1)>"
    recs = [{**record(i, "cot", True, True), "label": evil, "model": "m|<b>"} for i in range(2)]
    table = markdown_table(summarize(load_records([write(tmp_path / "e.jsonl", recs)])))
    lines = table.splitlines()
    rows = [ln for ln in lines if ln.startswith("|")]
    assert len(rows) == 3  # header, separator, one data row
    unescaped = [len(re.findall(r"(?<!\\)\|", ln)) for ln in rows]
    assert unescaped[2] == unescaped[0]
    assert re.search(r"(?<!\\)<", table) is None and "\\<img" in table
