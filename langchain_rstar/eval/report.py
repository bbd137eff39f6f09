"""Summaries of evaluation runs: a markdown table and an accuracy-versus-cost plot.

Records (see :mod:`langchain_rstar.eval.harness`) are grouped by run label (the method name
unless ``--label`` was given) and dataset. For each group:

* ``n``: questions with a record;
* accuracy with its 95% Wilson score interval;
* coverage: share of questions whose gold answer is among the method's answers (pass@N for
  self-consistency, any candidate trajectory for rStar, the single answer for CoT);
* accuracy given coverage: how often the method picks the gold answer when it has it;
* generated tokens, prompt tokens, model calls and seconds per question.

Result files are data from outside (hand-edited, truncated, written by another version):
:func:`load_records` skips, counts and reports records that do not have the result schema
instead of crashing the whole report on one of them, and :func:`markdown_table` escapes
every text cell taken from records (labels, dataset and model names), so a record cannot
add rows, columns or HTML to the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_rstar.eval.harness import read_records

__all__ = [
    "Row",
    "X_AXES",
    "load_records",
    "markdown_table",
    "md_cell",
    "plot_accuracy_vs_cost",
    "schema_problem",
    "summarize",
    "wilson_interval",
]

#: What the plot's x axis can show: record usage key and axis label.
X_AXES: dict[str, tuple[str, str]] = {
    "completion": ("completion_tokens", "generated tokens per question"),
    "total": ("total_tokens", "prompt + generated tokens per question"),
    "calls": ("llm_calls", "model calls per question"),
    "seconds": ("seconds", "seconds per question"),
}


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default).

    Returns ``(0.0, 1.0)`` when ``n`` is 0.

    Example:
        >>> lo, hi = wilson_interval(8, 10)
        >>> round(lo, 4), round(hi, 4)
        (0.4902, 0.9433)
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n]; got {successes} of {n}")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Rounding can put a bound a hair past p (e.g. a low bound of 1e-18 at p = 0).
    return max(0.0, min(p, center - half)), min(1.0, max(p, center + half))


@dataclass
class Row:
    """One (run, dataset) group of records."""

    label: str
    method: str
    dataset: str
    model: str
    n: int
    correct: int
    covered: int
    errors: int
    prompt_tokens: float
    completion_tokens: float
    llm_calls: float
    seconds: float
    tokens_estimated: bool
    derived: bool = False

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    @property
    def coverage(self) -> float:
        return self.covered / self.n if self.n else 0.0

    @property
    def accuracy_given_coverage(self) -> float | None:
        return self.correct / self.covered if self.covered else None

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    def per_question(self, key: str) -> float:
        """Mean of a usage quantity (see :data:`X_AXES`) per question."""
        value = self.total_tokens if key == "total_tokens" else float(getattr(self, key))
        return value / self.n if self.n else 0.0


def load_records(
    paths: Iterable[str | Path], *, warn: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Records of several JSONL files; a repeated (label, dataset, id) keeps its first record.

    Records without the result schema (see :func:`schema_problem`) are skipped; ``warn``
    gets the first few reasons and their count.
    """
    seen: set[tuple[str, str, str]] = set()
    out: list[dict[str, Any]] = []
    dupes = 0
    invalid = 0
    for path in paths:
        for lineno, rec in enumerate(read_records(path, warn=warn), start=1):
            problem = schema_problem(rec)
            if problem is not None:
                invalid += 1
                if warn and invalid <= 3:
                    warn(f"{path}: record {lineno} skipped: {problem}")
                continue
            key = (_label(rec), str(rec.get("dataset", "")), str(rec["id"]))
            if key in seen:
                dupes += 1
                continue
            seen.add(key)
            out.append(rec)
    if dupes and warn:
        warn(f"{dupes} duplicate record(s) (same run, dataset and id) ignored")
    if invalid and warn:
        warn(f"{invalid} record(s) without the result schema skipped")
    return out


_NUMERIC_USAGE = ("llm_calls", "prompt_tokens", "completion_tokens", "samples", "seconds")


def schema_problem(rec: Any) -> str | None:
    """Why ``rec`` is not a result record the report can use, or None if it is.

    Checked: a mapping with a scalar ``id``; ``label``, ``method``, ``dataset`` and ``model``
    strings (or absent); ``correct`` / ``covered`` booleans (or absent); ``usage`` and
    ``extra`` mappings (or absent) with finite, non-negative usage numbers.
    """
    if not isinstance(rec, Mapping):
        return "not a JSON object"
    rid = rec.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return f"id must be a string or an integer, got {type(rid).__name__}"
    for key in ("label", "method", "dataset", "model"):
        value = rec.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} must be a string, got {type(value).__name__}"
    for key in ("correct", "covered"):
        value = rec.get(key)
        if value is not None and not isinstance(value, bool):
            return f"{key} must be true or false, got {type(value).__name__}"
    for key in ("usage", "extra"):
        value = rec.get(key)
        if value is not None and not isinstance(value, Mapping):
            return f"{key} must be an object, got {type(value).__name__}"
    usage = rec.get("usage") or {}
    for key in _NUMERIC_USAGE:
        value = usage.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"usage.{key} must be a number, got {type(value).__name__}"
        if not math.isfinite(value) or value < 0:
            return f"usage.{key} must be finite and >= 0, got {value}"
    return None


_MD_SPECIAL = re.compile(r"([\\|<>`\[\]])")
_MD_SPACE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\s]+")


def md_cell(text: Any) -> str:
    """``text`` safe inside one markdown table cell: one line, markup characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_SPACE.sub(" ", str(text)).strip())


def _label(rec: Mapping[str, Any]) -> str:
    return str(rec.get("label") or rec.get("method") or "?")


def summarize(records: Iterable[Mapping[str, Any]], *, derive_generator: bool = True) -> list[Row]:
    """Group records by (label, dataset) and total them; rows sorted by dataset, then cost.

    Args:
        records: result records.
        derive_generator: for ``rstar`` runs, add a row ``<label> [generator]`` graded on
            the same search's answer before verification (``extra.generator_correct``): the
            ``rstar-gen`` result without a second run. Its cost is not known apart from
            verification, so the row has no cost figures (``derived``).
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault((_label(rec), str(rec.get("dataset", ""))), []).append(rec)
    rows = []
    for (label, dataset), recs in groups.items():
        usage = [r.get("usage") or {} for r in recs]
        models = sorted({str(r.get("model") or "") for r in recs} - {""})
        row = Row(
            label=label,
            method=str(recs[0].get("method", label)),
            dataset=dataset,
            model=", ".join(models),
            n=len(recs),
            correct=sum(1 for r in recs if r.get("correct")),
            covered=sum(1 for r in recs if r.get("covered") or r.get("correct")),
            errors=sum(1 for r in recs if r.get("error")),
            prompt_tokens=sum(float(u.get("prompt_tokens", 0)) for u in usage),
            completion_tokens=sum(float(u.get("completion_tokens", 0)) for u in usage),
            llm_calls=sum(float(u.get("llm_calls", 0)) for u in usage),
            seconds=sum(float(u.get("seconds", 0)) for u in usage),
            tokens_estimated=any(u.get("tokens_estimated") for u in usage),
        )
        rows.append(row)
        gen = [(r.get("extra") or {}).get("generator_correct") for r in recs]
        if derive_generator and row.method == "rstar" and all(g is not None for g in gen):
            rows.append(
                Row(
                    label=f"{label} [generator]",
                    method="rstar-gen",
                    dataset=dataset,
                    model=row.model,
                    n=row.n,
                    correct=sum(1 for g in gen if g),
                    covered=row.covered,
                    errors=row.errors,
                    prompt_tokens=0.0,
                    completion_tokens=0.0,
                    llm_calls=0.0,
                    seconds=0.0,
                    tokens_estimated=False,
                    derived=True,
                )
            )
    rows.sort(key=lambda r: (r.dataset, r.derived, r.per_question("completion_tokens"), r.label))
    # a derived row goes right above its rstar row
    out: list[Row] = []
    for r in rows:
        if not r.derived:
            twin = next(
                (
                    d
                    for d in rows
                    if d.derived and d.dataset == r.dataset and d.label == f"{r.label} [generator]"
                ),
                None,
            )
            if twin is not None:
                out.append(twin)
            out.append(r)
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The summary as a GitHub markdown table (one line per run and dataset)."""
    head = (
        "| method | dataset | n | accuracy (95% CI) | coverage | acc. given coverage "
        "| gen. tokens/q | prompt tokens/q | calls/q | s/q |"
    )
    sep = "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"
    lines = [head, sep]
    for r in rows:
        lo, hi = r.interval
        if r.derived and r.label.endswith(" [generator]"):
            name = md_cell(r.label[: -len(" [generator]")]) + " [generator]"
        elif r.label == r.method or r.derived:
            name = md_cell(r.label)
        else:
            name = f"{md_cell(r.label)} ({md_cell(r.method)})"
        if r.errors:
            name += f" [{r.errors} invalid]"
        est = "~" if r.tokens_estimated else ""
        if r.derived:
            cost = "| (same search) | | | |"
        else:
            cost = (
                f"| {est}{_num(r.per_question('completion_tokens'))} "
                f"| {est}{_num(r.per_question('prompt_tokens'))} "
                f"| {_num(r.per_question('llm_calls'))} | {_num(r.per_question('seconds'))} |"
            )
        lines.append(
            f"| {name} | {md_cell(r.dataset)} | {r.n} | {_pct(r.accuracy)} "
            f"[{100 * lo:.1f}, {100 * hi:.1f}] | {_pct(r.coverage)} "
            f"| {_pct(r.accuracy_given_coverage)} {cost}"
        )
    notes = []
    if any(r.derived for r in rows):
        notes.append(
            "[generator]: the rstar search's own answer before mutual verification "
            "(rstar-gen, same run; its cost is the search's cost minus verification)."
        )
    if any(r.tokens_estimated for r in rows):
        notes.append("~ token counts estimated (backend reported none: 4 characters a token).")
    models = sorted({r.model for r in rows if r.model})
    if models:
        notes.append(f"Model: {'; '.join(md_cell(m) for m in models)}.")
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "") + "\n"


def plot_accuracy_vs_cost(rows: Sequence[Row], path: str | Path, x: str = "completion") -> Path:
    """Save a PNG of accuracy (with 95% Wilson error bars) against cost per question.

    Args:
        rows: from :func:`summarize`.
        path: the PNG file.
        x: ``completion`` (generated tokens, default), ``total``, ``calls`` or ``seconds``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}")
    key, xlabel = X_AXES[x]
    rows = [r for r in rows if not r.derived]
    datasets = sorted({r.dataset for r in rows})
    markers = "osD^vP*Xh"
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    cmap = plt.get_cmap("tab10")
    methods = sorted({r.label for r in rows})
    for r in rows:
        xv = r.per_question(key)
        lo, hi = r.interval
        color = cmap(methods.index(r.label) % 10)
        marker = markers[datasets.index(r.dataset) % len(markers)]
        ax.errorbar(
            [xv],
            [100 * r.accuracy],
            yerr=[[max(0.0, 100 * (r.accuracy - lo))], [max(0.0, 100 * (hi - r.accuracy))]],
            fmt=marker,
            color=color,
            capsize=3,
            markersize=7,
        )
        # Coverage (gold among the method's answers) as a hollow marker above accuracy:
        # where accuracies sit at the floor, the gap shows what selection leaves behind.
        ax.plot(
            [xv],
            [100 * r.coverage],
            marker=marker,
            markerfacecolor="none",
            color=color,
            markersize=8,
            linestyle="none",
        )
        if r.coverage > r.accuracy:
            ax.plot([xv, xv], [100 * r.accuracy, 100 * r.coverage], ":", color=color, lw=1)
        tag = r.label if len(datasets) == 1 else f"{r.label} / {r.dataset}"
        ax.annotate(
            f"{tag} (n={r.n})",
            (xv, 100 * r.accuracy),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    positive = [r.per_question(key) for r in rows if r.per_question(key) > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%, filled, 95% Wilson) / coverage (%, hollow)")
    title = "Accuracy against cost"
    if len(datasets) == 1:
        title += f" on {datasets[0]}"
    models = sorted({r.model for r in rows if r.model})
    if len(models) == 1:
        title += f" ({models[0]})"
    ax.set_title(title, fontsize=10)
    top = max([r.interval[1] for r in rows] + [r.coverage for r in rows] + [0.05])
    ax.set_ylim(0, min(100.0, 100 * top * 1.15 + 2))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
