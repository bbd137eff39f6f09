"""``rstar`` set-up: errors caught before any model loads, help texts, profiles, progress.

Issue 19 (3, 5, 8, 9) and issue 17 (3, 4): every set-up mistake ends with one line and
exit status 2 *before* a model is loaded (a local engine takes minutes to start).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_cli import FAST_CONFIG, adder_llm, eval_args

from langchain_rstar import RStarConfig, __version__, cli
from langchain_rstar.testing import ScriptedLLM
from scripts import QUESTION


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "toy.jsonl"
    rows = [
        {"id": f"t{i}", "problem": f"What is {i} plus {i + 1}?", "solution": f"#### {2 * i + 1}"}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every model load; the model is the scripted adder."""
    seen: list[Any] = []

    def build(args: Any) -> tuple[Any, str]:
        seen.append(args)
        return adder_llm(), "adder"

    monkeypatch.setattr(cli, "build_llm", build)
    return seen


def _one_line_error(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("rstar: error")]
    assert len(lines) == 1, err
    assert "Traceback" not in err


# -- #19.8 / #19.9: set-up errors before loading ----------------------------------------------
@pytest.mark.parametrize("label", ["../x", "a/b", "x y", "..", ""])
def test_bad_label_is_refused_before_loading(
    label: str, dataset: Path, tmp_path: Path, loads: list[Any], capsys: Any
) -> None:
    argv = eval_args(dataset, tmp_path / "o.jsonl", "cot")
    argv.remove("--out")
    argv.remove(str(tmp_path / "o.jsonl"))
    code = cli.main([*argv, "--label", label])
    assert code == cli.EXIT_USAGE and not loads
    _one_line_error(capsys.readouterr().err)
    assert not (tmp_path.parent / "x").exists()


def test_default_out_path_stays_under_runs(
    dataset: Path, tmp_path: Path, loads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = eval_args(dataset, tmp_path / "o.jsonl", "cot", "--limit", "1", "--label", "v1.2_b-3")
    i = argv.index("--out")
    del argv[i : i + 2]
    assert cli.main(argv) == 0
    assert (tmp_path / "runs" / "toy-v1.2_b-3.jsonl").is_file()


def test_duplicate_ids_are_a_usage_error_before_loading(
    tmp_path: Path, loads: list[Any], capsys: Any
) -> None:
    path = tmp_path / "dup.jsonl"
    rows = [{"id": "a", "problem": "What is 1 plus 2?", "solution": "#### 3"}] * 2
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(eval_args(path, tmp_path / "o.jsonl", "cot")) == cli.EXIT_USAGE
    assert not loads
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "duplicate ids" in err and "'a'" in err


@pytest.mark.parametrize("where", ["under_a_file", "is_a_dir"])
def test_unwritable_out_is_a_usage_error_before_loading(
    where: str, dataset: Path, tmp_path: Path, loads: list[Any], capsys: Any
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" / "o.jsonl" if where == "under_a_file" else tmp_path
    assert cli.main(eval_args(dataset, out, "cot")) == cli.EXIT_USAGE
    assert not loads
    _one_line_error(capsys.readouterr().err)


def test_resume_with_other_settings_is_refused_before_loading(
    dataset: Path, tmp_path: Path, loads: list[Any], capsys: Any
) -> None:
    out = tmp_path / "o.jsonl"
    assert cli.main(eval_args(dataset, out, "sc", "--limit", "2", "--num-samples", "2")) == 0
    loads.clear()
    code = cli.main(eval_args(dataset, out, "sc", "--num-samples", "3"))
    assert code == cli.EXIT_USAGE and not loads
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "num_samples" in err


def test_resume_with_another_model_is_refused(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "o.jsonl"
    monkeypatch.setattr(cli, "build_llm", lambda args: (adder_llm(), "model-a"))
    assert cli.main(eval_args(dataset, out, "cot", "--limit", "2")) == 0
    monkeypatch.setattr(cli, "build_llm", lambda args: (adder_llm(), "model-b"))
    assert cli.main(eval_args(dataset, out, "cot")) == cli.EXIT_USAGE
    assert "model-a" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2


def test_solve_tree_to_unwritable_path_fails_before_loading(
    tmp_path: Path, loads: list[Any], capsys: Any
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["solve", QUESTION, "--quiet", "--tree", str(blocker / "t.html")])
    assert code == cli.EXIT_USAGE and not loads
    _one_line_error(capsys.readouterr().err)


# -- #19.3 / #19.5 through the command line ----------------------------------------------------
def test_eval_uses_the_configured_question_limit(
    dataset: Path, tmp_path: Path, loads: list[Any]
) -> None:
    out = tmp_path / "o.jsonl"
    config = json.dumps({**json.loads(FAST_CONFIG), "max_question_chars": 5})
    argv = eval_args(dataset, out, "cot", "--limit", "2")
    argv[argv.index("--config") + 1] = config
    assert cli.main(argv) == 0
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["error"] for r in recs] == [recs[0]["error"]] * 2
    assert "limit is 5" in recs[0]["error"]


def test_dead_backend_stops_at_the_first_question(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    llm = adder_llm(broken=True)
    monkeypatch.setattr(cli, "build_llm", lambda args: (llm, "adder"))
    out = tmp_path / "dead.jsonl"
    assert cli.main(eval_args(dataset, out, "rstar")) == cli.EXIT_DEAD
    asked = {p.split("Question: What is")[-1].split("?")[0] for ps, _ in llm.calls for p in ps}
    assert asked == {" 0 plus 1"}  # the run stopped at the first question's dead backend
    assert "unexpected error" not in capsys.readouterr().err


# -- #17.3: help texts and version --------------------------------------------------------------
def test_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rstar {__version__}"


def _help(*argv: str) -> None:
    parser = cli.make_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--help"])


def test_help_texts(capsys: Any) -> None:
    _help("report")
    out = capsys.readouterr().out
    assert "95%" in out and "95%%" not in out
    _help("solve")
    out = capsys.readouterr().out
    assert "Solve one question" in out and "answer family" in out and "--profile" in out
    _help("eval")
    out = " ".join(capsys.readouterr().out.split())
    assert "self-consistency" in out and "answer family" in out
    assert "hf:<dataset id>" in out and "--profile" in out and "--verbose" in out


# -- #17.4 / item 4: profiles, grouped candidates, quiet logs, progress ----------------------
def test_profile_without_the_classmethod_is_a_clear_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delattr(RStarConfig, "paper", raising=False)
    code = cli.main(["solve", QUESTION, "--scripted", "--quiet", "--profile", "paper"])
    assert code == cli.EXIT_USAGE
    assert "no paper() profile" in capsys.readouterr().err


def test_profile_sets_the_config_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    def fast(cls: type) -> RStarConfig:
        return RStarConfig(num_rollouts=3, num_votes=2, max_depth=3)

    monkeypatch.setattr(RStarConfig, "fast", classmethod(fast), raising=False)
    args = cli.make_parser().parse_args(["solve", "q", "--profile", "fast", "--num-votes", "4"])
    config = cli.build_config(args)
    assert (config.num_rollouts, config.num_votes, config.max_depth) == (3, 4, 3)


def test_candidates_are_grouped_by_equivalent_answer() -> None:
    answers = ["1 dollar", "1", "4 dollars - 4 = 1 dollar", "2", "1"]
    assert cli.group_answers(answers, "arithmetic") == [("1", 4), ("2", 1)]
    assert cli.group_answers(["yes", "Yes", "no"], "yesno")[0][1] == 2


def test_engine_logs_are_quiet_by_default(
    dataset: Path, tmp_path: Path, loads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VLLM_LOGGING_LEVEL", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS"):
        monkeypatch.setenv(name, "x")  # so that the teardown restores the original state
        monkeypatch.delenv(name)
    assert cli.main(eval_args(dataset, tmp_path / "o.jsonl", "cot", "--limit", "1")) == 0
    import os

    assert os.environ["VLLM_LOGGING_LEVEL"] == "ERROR"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert "ignore::FutureWarning" in os.environ["PYTHONWARNINGS"]


def test_solve_shows_a_verification_phase(capsys: Any) -> None:
    code = cli.main(["solve", QUESTION, "--scripted", "--num-rollouts", "3"])
    assert code == 0
    err = capsys.readouterr().err
    assert "rollouts" in err and "verification" in err


class _LazyEngine(ScriptedLLM):
    """A scripted model that, like VLLMEngine, starts on ``start()`` (or fails to)."""

    started: int = 0
    broken: bool = False

    def start(self) -> _LazyEngine:
        if self.broken:
            raise RuntimeError("no memory for the KV cache")
        self.started += 1
        return self


def test_engine_start_is_its_own_timed_phase(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    llm = _LazyEngine(default=[" The answer is 1."])
    monkeypatch.setattr(cli, "build_llm", lambda args: (llm, "lazy"))
    assert cli.main(["solve", QUESTION, "--num-rollouts", "2"]) == 0
    err = capsys.readouterr().err
    assert llm.started == 1
    assert "starting the model engine" in err and re.search(r"model ready: lazy \(\d+ s\)", err)
    assert err.index("model ready") < err.index("rollouts")


def test_engine_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(cli, "build_llm", lambda args: (_LazyEngine(broken=True), "lazy"))
    assert cli.main(["solve", QUESTION, "--quiet"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "KV cache" in err
