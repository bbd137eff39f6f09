"""Dataset loading: bundled sets, local JSON/JSONL files, the hub (faked), and errors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import langchain_rstar.eval.datasets as ds
from langchain_rstar.eval.datasets import DATASETS, Example, default_data_dir, load_dataset

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
if not (SHARED / "gsm8k" / "test.json").is_file():  # a checkout without shared/: the shipped copy
    SHARED = ds.PACKAGE_DATA_DIR
SIZES = {"gsm8k": 1319, "gsm8khard": 1319, "svamp": 1000, "math": 500, "stg": 687}


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)


def _write(path: Path, records: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _need_shared() -> None:
    if not (SHARED / "gsm8k" / "test.json").is_file():
        pytest.skip(f"bundled data not found at {SHARED}")


# ------------------------------------------------------------------------------------------
# Bundled datasets
# ------------------------------------------------------------------------------------------


def test_datasets_table() -> None:
    assert DATASETS == {
        "gsm8k": "arithmetic",
        "gsm8khard": "arithmetic",
        "svamp": "arithmetic",
        "math": "math",
        "stg": "yesno",
    }


@pytest.mark.parametrize("name", sorted(SIZES))
def test_load_bundled(name: str) -> None:
    _need_shared()
    examples = load_dataset(name, data_dir=SHARED)
    assert len(examples) == SIZES[name]
    assert all(isinstance(e, Example) for e in examples)
    assert all(isinstance(e.id, str) and e.problem for e in examples)
    assert {e.task for e in examples} == {DATASETS[name]}
    assert all(e.answer is not None for e in examples)
    assert len({e.id for e in examples}) == len(examples)


def test_load_bundled_values_and_limit() -> None:
    _need_shared()
    gsm = load_dataset("gsm8k", data_dir=SHARED, limit=3)
    assert [e.id for e in gsm] == ["0", "1", "2"]
    assert [e.answer for e in gsm] == ["18", "3", "70000"]
    assert gsm[0].solution.endswith("#### 18")
    hard = load_dataset("gsm8khard", data_dir=SHARED, limit=1)[0]
    assert hard.solution == -9867630.0 and hard.answer == "-9867630"
    svamp = load_dataset("svamp", data_dir=SHARED, limit=1)[0]
    assert svamp.solution == 51.0 and svamp.answer == "51"
    math = load_dataset("math500", data_dir=SHARED, limit=2)
    assert math[0].id == "test-precalculus-807"
    assert math[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert math[1].answer == "p - q"
    stg = load_dataset("StrategyQA", data_dir=SHARED, limit=5)
    assert [e.answer for e in stg] == ["true", "true", "true", "true", "false"]
    assert load_dataset("svamp", data_dir=SHARED, limit=0) == []


def test_data_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "gsm8k" / "test.json", [{"id": 7, "problem": "1+1?", "solution": "#### 2"}])
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    (example,) = load_dataset("gsm8k")
    assert example == Example("7", "1+1?", "#### 2", "2", "arithmetic")


def test_data_dir_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    _write(
        tmp_path / "shared" / "data" / "svamp" / "test.json", [{"problem": "q", "solution": 4.0}]
    )
    monkeypatch.chdir(tmp_path)
    assert default_data_dir() == tmp_path / "shared" / "data"
    (example,) = load_dataset("svamp")
    assert example.answer == "4" and example.id == "0"
    # ../shared/data is found as well
    sub = tmp_path / "work"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert load_dataset("svamp")[0].answer == "4"


def test_split_selects_file(tmp_path: Path) -> None:
    _write(tmp_path / "stg" / "dev.json", [{"id": "a", "problem": "Is it?", "solution": "false"}])
    (example,) = load_dataset("stg", data_dir=tmp_path, split="dev")
    assert example.answer == "false" and example.task == "yesno"


def test_missing_bundled_dataset_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("gsm8k", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "gsm8k" / "test.json") in msg
    assert ds.DATA_DIR_ENV in msg and "data_dir" in msg

    fake = [tmp_path / "nowhere1", tmp_path / "nowhere2"]
    monkeypatch.setattr(ds, "_candidate_data_dirs", lambda: fake)
    assert default_data_dir() is None
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("math")
    assert str(fake[0] / "math" / "test.json") in str(err.value)
    assert str(fake[1] / "math" / "test.json") in str(err.value)

    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match=ds.DATA_DIR_ENV):
        load_dataset("math")


def test_unknown_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a bundled dataset"):
        load_dataset("no-such-dataset", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def test_load_json_file_with_inferred_default_task(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mine.json",
        [
            {"id": 1, "problem": "2+2?", "solution": "#### 4"},
            {"id": "b", "problem": "3+3?", "solution": 6},
        ],
    )
    examples = load_dataset(str(path))
    assert [(e.id, e.answer, e.task) for e in examples] == [
        ("1", "4", "arithmetic"),
        ("b", "6", "arithmetic"),
    ]
    assert load_dataset(path, limit=1) == examples[:1]


def test_load_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    lines = [
        json.dumps({"id": 0, "problem": "p0", "solution": "\\boxed{\\frac12}"}),
        "",
        json.dumps({"id": 1, "problem": "p1", "solution": "so \\boxed{x+1}."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples = load_dataset(path)
    assert [e.task for e in examples] == ["math", "math"]
    assert [e.answer for e in examples] == ["\\frac12", "x+1"]


def test_jsonl_bad_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "a", "solution": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("records", "dirname", "task"),
    [
        ([{"problem": "q", "solution": "true"}, {"problem": "r", "solution": "no"}], "x", "yesno"),
        ([{"problem": "q", "solution": True}], "x", "yesno"),
        ([{"problem": "q", "solution": "a", "extra_info": {"answer": "5"}}], "x", "math"),
        ([{"problem": "q", "solution": "5"}], "math", "math"),
        ([{"problem": "q", "solution": "5"}], "stg", "yesno"),
        ([{"problem": "q", "solution": "5"}], "x", "arithmetic"),
    ],
)
def test_task_inference(tmp_path: Path, records: list[dict], dirname: str, task: str) -> None:
    path = _write(tmp_path / dirname / "test.json", records)
    assert {e.task for e in load_dataset(path)} == {task}


def test_explicit_task_and_fields(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "custom.json",
        [{"uid": 3, "q": "Is water wet?", "label": "Yes"}],
    )
    (example,) = load_dataset(
        path, task="strategyqa", question_field="q", answer_field="label", id_field="uid"
    )
    assert example == Example("3", "Is water wet?", "Yes", "Yes", "yesno")
    with pytest.raises(ValueError, match="unknown task"):
        load_dataset(path, task="poetry")


def test_default_field_aliases(tmp_path: Path) -> None:
    path = _write(tmp_path / "gsm.json", [{"question": "q?", "answer": "work\n#### 1,000"}])
    (example,) = load_dataset(path)
    assert example.problem == "q?" and example.answer == "1000"


def test_json_object_with_data_list(tmp_path: Path) -> None:
    path = _write(tmp_path / "obj.json", {"data": [{"problem": "q", "solution": 2}]})
    assert load_dataset(path)[0].answer == "2"
    bad = _write(tmp_path / "bad.json", {"rows": 1})
    with pytest.raises(ValueError, match="list of records"):
        load_dataset(bad)
    scalar = _write(tmp_path / "scalar.json", 5)
    with pytest.raises(ValueError, match="list of records"):
        load_dataset(scalar)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_dataset(broken)


@pytest.mark.parametrize(
    ("records", "match"),
    [
        (
            [{"problem": "ok", "solution": 1}, {"problem": "q"}],
            r"record 1: missing field 'solution'",
        ),
        ([{"solution": 1}], r"record 0: missing field 'problem'"),
        ([{"problem": "q", "solution": None}], r"record 0: missing field 'solution'"),
        ([{"problem": 5, "solution": 1}], r"record 0: field 'problem' must be a string"),
        ([{"problem": "q", "solution": 1}, 7], r"record 1: expected a JSON object"),
    ],
)
def test_bad_records(tmp_path: Path, records: list[Any], match: str) -> None:
    path = _write(tmp_path / "recs.json", records)
    with pytest.raises(ValueError, match=match):
        load_dataset(path)


def test_custom_missing_field_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "recs.json", [{"problem": "q", "solution": 1}])
    with pytest.raises(ValueError, match=r"record 0: missing field 'target'"):
        load_dataset(path, answer_field="target")


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
def test_bad_limit(tmp_path: Path, limit: Any) -> None:
    path = _write(tmp_path / "recs.json", [{"problem": "q", "solution": 1}])
    with pytest.raises(ValueError, match="limit"):
        load_dataset(path, limit=limit)


def test_records_to_examples_directly() -> None:
    examples = ds.records_to_examples(
        [{"id": 1, "problem": "p", "solution": "x", "extra_info": {"answer": "\\frac{1}{2}"}}],
        task="math",
    )
    assert examples[0].answer == "\\frac{1}{2}" and examples[0].task == "math"


# ------------------------------------------------------------------------------------------
# Hugging Face hub (faked: no network here)
# ------------------------------------------------------------------------------------------


class _FakeHFDataset:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def select(self, indices: range) -> _FakeHFDataset:
        return _FakeHFDataset([self.rows[i] for i in indices])


def test_hf_loads_through_the_datasets_library(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []

    def fake_load_dataset(dataset_id: str, config: str | None, split: str) -> _FakeHFDataset:
        calls.append((dataset_id, config, split))
        rows = [{"question": f"q{i}", "answer": f"steps\n#### {i}"} for i in range(5)]
        return _FakeHFDataset(rows)

    fake = types.ModuleType("datasets")
    fake.load_dataset = fake_load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    examples = load_dataset("hf:openai/gsm8k:main", limit=2)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [(e.id, e.problem, e.answer, e.task) for e in examples] == [
        ("0", "q0", "0", "arithmetic"),
        ("1", "q1", "1", "arithmetic"),
    ]
    examples = load_dataset("hf:someone/strategyqa", split="train")
    assert calls[-1] == ("someone/strategyqa", None, "train")
    assert examples[0].task == "yesno"


def test_hf_without_datasets_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        load_dataset("hf:openai/gsm8k")


# ------------------------------------------------------------------------------------------
# Shipped inside the package (#17.3)
# ------------------------------------------------------------------------------------------
def test_the_five_sets_ship_inside_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    """A pip user has no shared/data: the package's own copy is found from any folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        ds, "_candidate_data_dirs", lambda: [tmp_path / "nowhere", ds.PACKAGE_DATA_DIR]
    )
    assert default_data_dir() == ds.PACKAGE_DATA_DIR
    for name, size in SIZES.items():
        examples = load_dataset(name)
        assert len(examples) == size
        assert all(e.answer is not None for e in examples[:20])
    licences = (ds.PACKAGE_DATA_DIR / "LICENSES.md").read_text(encoding="utf-8")
    for source in ("GSM8K", "GSM-Hard", "SVAMP", "MATH500", "StrategyQA"):
        assert source in licences
    assert (ds.PACKAGE_DATA_DIR / "LICENSE.rStar-data").is_file()


def test_package_data_is_declared_for_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["langchain_rstar"]
    assert "eval/data/*/*.json" in patterns and "eval/data/*.md" in patterns
