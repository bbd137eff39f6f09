"""Evaluation harness: every method, record fields, resume after a torn write, failures."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import RStarConfig
from langchain_rstar.errors import OutputLockedError, SettingsMismatchError
from langchain_rstar.eval.harness import (
    METHODS,
    build_method,
    open_results,
    read_records,
    render_trajectory,
    run_evaluation,
)
from langchain_rstar.testing import ScriptedLLM, prompt_tail

FAST = {
    "num_rollouts": 2,
    "num_votes": 3,
    "num_a1_steps": 2,
    "num_subquestions": 1,
    "num_masks": 1,
    "max_depth": 3,
    "max_retries": 0,
    "retry_backoff": 0.0,
}

_Q = re.compile(r"Question: What is (\d+) (plus|minus) (\d+)\?")


def arithmetic_llm(fail_on: str | None = None, **kwargs: Any) -> ScriptedLLM:
    """Answers "What is A plus/minus B?" in any prompt the package writes.

    ``plus`` questions: samples cycle right, right, wrong (majority right, greedy right).
    ``minus`` questions: wrong, wrong, right (greedy and majority wrong, but covered).
    ``fail_on``: raise when the question contains this text.
    """

    def respond(prompt: str, n: int) -> list[str]:
        tail = prompt_tail(prompt)
        if fail_on is not None and fail_on in tail:
            raise RuntimeError(f"backend error on {fail_on!r}")
        m = _Q.search(prompt[prompt.rfind("Question: What is") :])
        if m is None:
            return [" The answer is 0."] * n
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        right = a + b if op == "plus" else a - b
        pattern = [right, right, right + 1] if op == "plus" else [right + 1, right + 2, right]
        outs = []
        for j in range(n):
            v = pattern[j % 3]
            outs.append(f" {a} {'+' if op == 'plus' else '-'} {b} = {v}. The answer is {v}.")
        return outs

    return ScriptedLLM(responder=respond, **kwargs)


def examples(k: int = 5) -> list[dict[str, Any]]:
    out = []
    for i in range(k):
        a, b = 10 + i, i + 1
        op = "minus" if i % 2 else "plus"
        gold = a - b if op == "minus" else a + b
        out.append(
            {
                "id": f"q{i}",
                "problem": f"What is {a} {op} {b}?",
                "solution": f"{a} {'-' if op == 'minus' else '+'} {b} = {gold}\n#### {gold}",
                "answer": str(gold),
                "task": "arithmetic",
            }
        )
    return out


def run(method: str, out: Path, exs: list[dict[str, Any]], llm: Any = None, **kw: Any) -> Any:
    m = build_method(
        method,
        llm or arithmetic_llm(),
        config=RStarConfig(**FAST),
        num_samples=kw.pop("num_samples", None),
    )
    return run_evaluation(exs, m, out, dataset="toy", progress=False, stream=io.StringIO(), **kw)


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_complete_records(tmp_path: Path, method: str) -> None:
    out = tmp_path / f"{method}.jsonl"
    summary = run(method, out, examples(4))
    assert summary.complete and summary.written == 4
    recs = lines(out)
    assert [r["id"] for r in recs] == ["q0", "q1", "q2", "q3"]
    for rec in recs:
        assert rec["method"] == method and rec["dataset"] == "toy"
        for key in ("prediction", "gold", "correct", "covered", "trajectory", "error", "answers"):
            assert key in rec
        assert rec["error"] is None
        usage = rec["usage"]
        for key in ("llm_calls", "prompt_tokens", "completion_tokens", "samples", "seconds"):
            assert key in usage
        assert usage["llm_calls"] >= 1 and usage["completion_tokens"] > 0
        assert rec["trajectory"] and isinstance(rec["trajectory"][0], str)
        assert rec["correct"] <= rec["covered"]
    plus, minus = recs[0], recs[1]
    assert plus["correct"] and plus["gold"] == "11"
    if method == "cot":
        assert not minus["correct"] and not minus["covered"]
        assert recs[0]["usage"]["llm_calls"] == 1 and recs[0]["usage"]["samples"] == 1
    if method == "sc":
        # maj@6 of (wrong, wrong, right): wrong, but the gold is among the samples
        assert not minus["correct"] and minus["covered"]
        assert minus["usage"]["samples"] == 6 == minus["settings"]["num_samples"]
    if method.startswith("rstar"):
        assert "generator_answer" in plus["extra"]
        assert plus["extra"]["generator_correct"] is True
        assert plus["usage"]["rollouts"] >= 1
        assert plus["settings"]["num_rollouts"] == 2
    if method == "rstar":
        assert plus["extra"]["verification"] != "none" or plus["extra"]["stop_reason"]


def test_resume_after_torn_write_never_loses_or_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "sc.jsonl"
    exs = examples(6)
    run("sc", out, exs[:3])
    assert [r["id"] for r in lines(out)] == ["q0", "q1", "q2"]
    # kill -9 in the middle of writing the third line
    data = out.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(data[: last_start + 25])
    summary = run("sc", out, exs[:5])
    recs = lines(out)
    ids = [r["id"] for r in recs]
    assert sorted(ids) == ["q0", "q1", "q2", "q3", "q4"] and len(ids) == len(set(ids)) == 5
    assert summary.skipped == 2 and summary.written == 3
    # a partial line appended after a complete one
    with out.open("ab") as fh:
        fh.write(b'{"id": "q5", "method": "sc", "dataset": "toy", "correct": tr')
    summary = run("sc", out, exs[:5])
    assert summary.written == 0 and summary.skipped == 5
    assert [r["id"] for r in lines(out)] == ids
    summary = run("sc", out, exs)
    assert summary.written == 1
    assert sorted(r["id"] for r in lines(out)) == [f"q{i}" for i in range(6)]


def test_records_of_other_methods_do_not_count_as_finished(tmp_path: Path) -> None:
    out = tmp_path / "both.jsonl"
    run("cot", out, examples(2))
    summary = run("sc", out, examples(2))
    assert summary.written == 2
    assert [r["method"] for r in lines(out)] == ["cot", "cot", "sc", "sc"]


def test_settings_mismatch_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "sc.jsonl"
    run("sc", out, examples(2), num_samples=3)
    with pytest.raises(SettingsMismatchError, match="num_samples"):
        run("sc", out, examples(3), num_samples=5)
    # another label makes it a separate run in the same file
    summary = run("sc", out, examples(3), num_samples=5, label="sc@5")
    assert summary.written == 3


def test_dead_backend_writes_nothing_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "dead.jsonl"
    for method in ("cot", "rstar"):
        summary = run(method, out, examples(5), llm=arithmetic_llm(fail_on="What is"))
        assert summary.dead is not None
        assert summary.written == 0
        assert out.read_text() == ""
        assert not summary.complete


def test_one_failing_question_is_not_saved_and_is_retried(tmp_path: Path) -> None:
    out = tmp_path / "flaky.jsonl"
    summary = run("cot", out, examples(4), llm=arithmetic_llm(fail_on="12 plus 3"))
    assert [i for i, _ in summary.failed] == ["q2"]
    assert "backend error" in summary.failed[0][1]
    assert summary.dead is None and summary.written == 3
    assert "q2" not in {r["id"] for r in lines(out)}
    summary = run("cot", out, examples(4))
    assert summary.written == 1 and summary.complete
    assert sorted(r["id"] for r in lines(out)) == ["q0", "q1", "q2", "q3"]


def test_invalid_question_is_recorded_without_a_model_call(tmp_path: Path) -> None:
    out = tmp_path / "bad.jsonl"
    llm = arithmetic_llm()
    exs = examples(1) + [
        {"id": "empty", "problem": "   ", "solution": "#### 1", "task": "arithmetic"}
    ]
    run("cot", out, exs, llm=llm)
    recs = lines(out)
    assert recs[1]["id"] == "empty" and "invalid question" in recs[1]["error"]
    assert recs[1]["correct"] is False and recs[1]["gold"] == "1"
    assert len(llm.calls) == 1


@pytest.mark.parametrize("method", ["sc", "rstar"])
def test_concurrency_gives_the_same_records_as_a_sequential_run(
    tmp_path: Path, method: str
) -> None:
    def key(path: Path) -> dict[str, Any]:
        return {
            r["id"]: (r["prediction"], r["usage"]["llm_calls"], r["usage"]["completion_tokens"])
            for r in lines(path)
        }

    seq, par = tmp_path / "seq.jsonl", tmp_path / "par.jsonl"
    latency = 0.01 if method == "sc" else 0.002
    run(method, seq, examples(6), llm=arithmetic_llm(latency=latency))
    summary = run(method, par, examples(6), llm=arithmetic_llm(latency=latency), concurrency=3)
    assert summary.complete
    assert sorted(key(par)) == [f"q{i}" for i in range(6)]
    assert key(par) == key(seq)


def test_output_file_is_locked_while_running(tmp_path: Path) -> None:
    out = tmp_path / "locked.jsonl"
    with open_results(out) as (_fh, records):
        assert records == []
        with pytest.raises(OutputLockedError):
            run("cot", out, examples(1))


def test_read_records_ignores_partial_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n{"id": "c", "x":')
    warnings: list[str] = []
    assert [r["id"] for r in read_records(path, warn=warnings.append)] == ["a", "b"]
    assert len(warnings) == 1 and ":2:" in warnings[0]


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    exs = examples(2)
    exs[1]["id"] = "q0"
    with pytest.raises(ValueError, match="duplicate"):
        run("cot", tmp_path / "d.jsonl", exs)


def test_render_trajectory_formats_steps() -> None:
    steps = [
        {
            "node_id": "a",
            "type": "rephrase",
            "action": "A5",
            "text": "Condition 1: x.\nQuestion: y?",
        },
        {
            "node_id": "b",
            "type": "subquestion",
            "action": "A3",
            "text": "3 * 4 = 12. The answer is 12.",
            "subquestion": "How many apples?",
        },
        {
            "node_id": "c",
            "type": "answer",
            "action": "A2",
            "text": "12 - 2 = 10. The answer is 10.",
        },
    ]
    assert render_trajectory(steps) == [
        "Rephrased question: Condition 1: x. Question: y?",
        "Sub-question 1: How many apples?\nAnswer 1: 3 * 4 = 12. The answer is 12.",
        "Step 2: 12 - 2 = 10. The answer is 10.",
    ]


# -- issue 19 (3, 4, 5, 9): limits, resume integrity, dead backends, duplicate ids ------------
def test_question_limit_comes_from_the_config(tmp_path: Path) -> None:
    """#19.3: the harness validates with RStarConfig.max_question_chars, not 20,000."""
    long_q = {"id": "long", "problem": "What is 1 plus 2? " + "x" * 25_000, "solution": "#### 3"}
    llm = arithmetic_llm()
    m = build_method("cot", llm, config=RStarConfig(**FAST, max_question_chars=30_000))
    run_evaluation([long_q], m, tmp_path / "a.jsonl", dataset="toy", progress=False)
    rec = lines(tmp_path / "a.jsonl")[0]
    assert rec["error"] is None and len(llm.calls) == 1
    llm = arithmetic_llm()
    m = build_method("cot", llm, config=RStarConfig(**FAST, max_question_chars=10))
    summary = run_evaluation(
        examples(2), m, tmp_path / "b.jsonl", dataset="toy", progress=False, stream=io.StringIO()
    )
    recs = lines(tmp_path / "b.jsonl")
    assert all("limit is 10" in r["error"] for r in recs)
    assert summary.dead is None and not llm.calls


def test_resume_with_another_model_is_refused(tmp_path: Path) -> None:
    """#19.4: the model is part of the resume check."""
    out = tmp_path / "m.jsonl"
    run("cot", out, examples(2), model="model-a")
    with pytest.raises(SettingsMismatchError, match="model-a"):
        run("cot", out, examples(3), model="model-b")
    assert run("cot", out, examples(3), model="model-a").written == 1


def test_resume_with_another_method_or_seed_under_one_label_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "l.jsonl"
    run("cot", out, examples(2), label="mine")
    with pytest.raises(SettingsMismatchError, match="method 'cot'"):
        run("sc", out, examples(2), label="mine", num_samples=2)
    out2 = tmp_path / "s.jsonl"
    m = build_method("rstar", arithmetic_llm(), config=RStarConfig(**FAST, seed=1))
    run_evaluation(examples(1), m, out2, dataset="toy", progress=False)
    m = build_method("rstar", arithmetic_llm(), config=RStarConfig(**FAST, seed=2))
    with pytest.raises(SettingsMismatchError, match="seed"):
        run_evaluation(examples(2), m, out2, dataset="toy", progress=False)


class _DeadMethod:
    name = "rstar"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def settings(self) -> dict[str, Any]:
        return {}

    def solve(self, question: str, task: str | None = None) -> Any:
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize("concurrency", [1, 2])
def test_backend_error_stops_the_run_at_the_first_question(
    tmp_path: Path, concurrency: int
) -> None:
    """#19.5: RStarBackendError is a dead backend, not an "unexpected error" per question."""
    from langchain_rstar import RStarBackendError

    method = _DeadMethod(RStarBackendError("backend dead: connection refused"))
    err = io.StringIO()
    summary = run_evaluation(
        examples(5),
        method,
        tmp_path / "d.jsonl",
        dataset="toy",
        progress=False,
        stream=err,
        concurrency=concurrency,
    )
    assert summary.dead is not None and "connection refused" in summary.dead
    assert method.calls == concurrency  # only the questions already in flight
    assert not summary.failed and "unexpected" not in err.getvalue()


def test_duplicate_id_detection_is_linear(tmp_path: Path) -> None:
    import time

    from langchain_rstar.eval.harness import duplicate_ids

    exs = [{"id": f"q{i}", "problem": "What is 1 plus 1?"} for i in range(40_000)]
    exs.append({"id": "q123", "problem": "x"})
    start = time.perf_counter()
    with pytest.raises(ValueError, match="'q123'"):
        run("cot", tmp_path / "d.jsonl", exs)
    assert time.perf_counter() - start < 2.0
    assert duplicate_ids(["a", "b", "a", "c", "b", "a"]) == ["a", "b"]
