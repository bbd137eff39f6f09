"""The ``rstar`` command line, offline: solve, eval (resume, failure) and report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import RStarResult, cli
from langchain_rstar.testing import ScriptedLLM
from scripts import QUESTION

FAST_CONFIG = json.dumps(
    {
        "num_votes": 3,
        "num_a1_steps": 2,
        "num_subquestions": 1,
        "num_masks": 1,
        "max_depth": 3,
        "max_retries": 0,
        "retry_backoff": 0.0,
    }
)

_Q = re.compile(r"Question: What is (\d+) plus (\d+)\?")


def adder_llm(broken: bool = False) -> ScriptedLLM:
    """Right on even samples, off by one on odd ones; ``broken`` raises on every call."""

    def respond(prompt: str, n: int) -> list[str]:
        if broken:
            raise ConnectionError("server at 127.0.0.1:8000 is down")
        m = _Q.search(prompt[prompt.rfind("Question: What is") :])
        total = int(m.group(1)) + int(m.group(2)) if m else 0
        return [f" The sum is {total + j % 2}. The answer is {total + j % 2}." for j in range(n)]

    return ScriptedLLM(responder=respond)


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "toy.jsonl"
    rows = [
        {"id": f"t{i}", "problem": f"What is {i} plus {i + 1}?", "solution": f"#### {2 * i + 1}"}
        for i in range(6)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def model(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"llm": adder_llm()}
    monkeypatch.setattr(cli, "build_llm", lambda args: (state["llm"], "adder"))
    return state


def eval_args(dataset: Path, out: Path, method: str, *extra: str) -> list[str]:
    return [
        "eval",
        "--dataset",
        str(dataset),
        "--method",
        method,
        "--out",
        str(out),
        "--task",
        "arithmetic",
        "--num-rollouts",
        "2",
        "--config",
        FAST_CONFIG,
        "--no-progress",
        *extra,
    ]


def ids(path: Path) -> list[str]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(ln)["id"] for ln in text.splitlines()]


def test_solve_scripted_json_parses_as_result(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["solve", QUESTION, "--scripted", "--json", "--quiet", "--num-rollouts", "4"])
    captured = capsys.readouterr()
    assert code == 0
    result = RStarResult.model_validate_json(captured.out)
    assert result.question == QUESTION
    assert result.answer is not None and result.usage.llm_calls > 0
    assert "scripted" in captured.err


def test_solve_scripted_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["solve", QUESTION, "--scripted", "--quiet", "--num-rollouts", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Model: scripted")
    assert re.search(r"^Answer: 10 \(confidence", out, re.M)
    assert "Trajectory:\n  Step 1:" in out
    assert re.search(r"^Usage: \d+ model calls", out, re.M)


def test_solve_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "tree.html"
    code = cli.main(
        ["solve", QUESTION, "--scripted", "--quiet", "--num-rollouts", "2", "--tree", str(html)]
    )
    if hasattr(RStarResult, "save_html"):
        assert code == 0 and html.is_file() and html.stat().st_size > 0
    else:
        assert code == 1 and "save_html" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["cot", "sc", "rstar-gen", "rstar"])
def test_eval_methods(dataset: Path, tmp_path: Path, model: dict[str, Any], method: str) -> None:
    out = tmp_path / f"{method}.jsonl"
    extra = ("--num-samples", "4") if method == "sc" else ()
    assert cli.main(eval_args(dataset, out, method, "--limit", "3", *extra)) == 0
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["id"] for r in recs] == ["t0", "t1", "t2"]
    assert all(
        r["method"] == method and r["dataset"] == "toy" and r["model"] == "adder" for r in recs
    )
    if method == "cot":
        assert all(r["correct"] for r in recs)
    if method == "sc":
        assert all(r["covered"] for r in recs) and recs[0]["usage"]["samples"] == 4


def test_eval_resume_after_kill(dataset: Path, tmp_path: Path, model: dict[str, Any]) -> None:
    out = tmp_path / "runs" / "sc.jsonl"
    args = eval_args(dataset, out, "sc", "--num-samples", "3")
    assert cli.main([*args, "--limit", "3"]) == 0
    assert ids(out) == ["t0", "t1", "t2"]
    # kill -9 mid-write: the last line is cut half way, then a stray partial line
    data = out.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(data[: start + (len(data) - start) // 2])
    assert cli.main([*args, "--limit", "5"]) == 0
    got = ids(out)
    assert len(got) == len(set(got)) == 5 and sorted(got) == [f"t{i}" for i in range(5)]
    with out.open("ab") as fh:
        fh.write(b'{"id": "t5", "meth')
    assert cli.main([*args, "--limit", "5"]) == 0
    assert ids(out) == got


def test_eval_offset(dataset: Path, tmp_path: Path, model: dict[str, Any]) -> None:
    out = tmp_path / "off.jsonl"
    assert cli.main(eval_args(dataset, out, "cot", "--offset", "4", "--limit", "5")) == 0
    assert ids(out) == ["t4", "t5"]


def test_eval_dead_backend(
    dataset: Path, tmp_path: Path, model: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    model["llm"] = adder_llm(broken=True)
    for method in ("cot", "rstar"):
        out = tmp_path / f"dead-{method}.jsonl"
        code = cli.main(eval_args(dataset, out, method, "--limit", "5"))
        assert code == cli.EXIT_DEAD
        assert out.read_text() == ""
        err = capsys.readouterr().err
        assert "not working" in err and "down" in err
    # the backend is back: the same command resumes from scratch
    model["llm"] = adder_llm()
    assert cli.main(eval_args(dataset, out, "rstar", "--limit", "5")) == 0
    assert len(ids(out)) == 5


def test_eval_bad_arguments(dataset: Path, tmp_path: Path, model: dict[str, Any]) -> None:
    out = tmp_path / "x.jsonl"
    assert cli.main([*eval_args(dataset, out, "cot"), "--config", '{"temperature": -1}']) == 2
    assert cli.main([*eval_args(dataset, out, "cot"), "--num-samples", "3"]) == 2
    assert cli.main(eval_args(tmp_path / "missing.jsonl", out, "cot")) == 2
    with pytest.raises(SystemExit):
        cli.main(["eval", "--dataset", str(dataset), "--method", "nope"])


def test_report_command(
    dataset: Path, tmp_path: Path, model: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "cot.jsonl", tmp_path / "sc.jsonl"
    assert cli.main(eval_args(dataset, a, "cot", "--limit", "4")) == 0
    assert cli.main(eval_args(dataset, b, "sc", "--limit", "4", "--num-samples", "2")) == 0
    capsys.readouterr()
    md, png = tmp_path / "r.md", tmp_path / "r.png"
    assert cli.main(["report", str(a), str(b), "--markdown", str(md), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "| cot | toy | 4 | 100.0% [51.0, 100.0] |" in out
    assert md.read_text() == out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["report", str(tmp_path / "none.jsonl")]) == 2


def test_no_command_prints_help() -> None:
    assert cli.main([]) == 2
