"""Loading evaluation datasets (bundled rStar test sets, local JSON/JSONL files, HF hub).

The bundled datasets are the test sets released with rStar (GSM8K, GSM-Hard, SVAMP,
MATH500, StrategyQA; ~2 MB, all MIT-licensed, see ``data/LICENSES.md``), laid out as
``<data_dir>/<name>/test.json`` (a JSON list of ``{"id", "problem", "solution", ...}``
records). They ship inside the package (``langchain_rstar/eval/data``) so that an
evaluation works right after ``pip install``, without a checkout or network; a
``shared/data`` folder or ``RSTAR_DATA_DIR`` can still point elsewhere (see
:func:`default_data_dir`). ``hf:<dataset id>[:<config>]`` loads from the Hugging Face hub
with the optional ``datasets`` package.

Example:
    >>> from langchain_rstar.eval.datasets import load_dataset
    >>> examples = load_dataset("gsm8k", limit=10)  # doctest: +SKIP
    >>> examples[0].answer  # doctest: +SKIP
    '18'
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_rstar.answers import TASK_ALIASES, get_checker

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "PACKAGE_DATA_DIR",
    "Example",
    "default_data_dir",
    "load_dataset",
    "records_to_examples",
]

#: Bundled dataset name -> task family.
DATASETS: dict[str, str] = {
    "gsm8k": "arithmetic",
    "gsm8khard": "arithmetic",
    "svamp": "arithmetic",
    "math": "math",
    "stg": "yesno",
}

#: Other spellings accepted for the bundled datasets.
_NAME_ALIASES = {
    "gsm-hard": "gsm8khard",
    "gsmhard": "gsm8khard",
    "gsm8k-hard": "gsm8khard",
    "math500": "math",
    "math-500": "math",
    "strategyqa": "stg",
}

#: Environment variable naming the directory that holds the bundled datasets.
DATA_DIR_ENV = "RSTAR_DATA_DIR"

_HF_PREFIX = "hf:"
# Fallback field names, tried only when the caller kept the default field name.
_FIELD_ALIASES = {
    "problem": ("question", "Question", "input"),
    "solution": ("answer", "Answer", "target"),
}


@dataclass
class Example:
    """One evaluation problem.

    Attributes:
        id: Record id (stringified).
        problem: The question shown to the model.
        solution: The raw solution field (str, int or float), as stored in the dataset.
        answer: The gold answer extracted by the task's checker (None if none was found).
        task: Task family: ``arithmetic``, ``math`` or ``yesno``.
    """

    id: str
    problem: str
    solution: object
    answer: str | None
    task: str


#: The benchmark sets shipped inside the package (licences in ``data/LICENSES.md``).
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"


def _candidate_data_dirs() -> list[Path]:
    package_parent = Path(__file__).resolve().parents[2]
    cwd = Path.cwd()
    return [
        cwd / "shared" / "data",
        cwd.parent / "shared" / "data",
        PACKAGE_DATA_DIR,
        package_parent.parent / "shared" / "data",
    ]


def default_data_dir() -> Path | None:
    """Directory holding the bundled datasets, or None if none is found.

    Order: the ``RSTAR_DATA_DIR`` environment variable; else the first existing of
    ``./shared/data`` and ``../shared/data`` (relative to the working directory), the
    sets shipped inside the package (:data:`PACKAGE_DATA_DIR`, always there after
    ``pip install``) and ``<repository>/../shared/data`` (relative to this package).
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    for cand in _candidate_data_dirs():
        if cand.is_dir():
            return cand
    return None


def _resolve_bundled(name: str, data_dir: str | os.PathLike[str] | None, split: str) -> Path:
    if data_dir is not None:
        searched = [Path(data_dir).expanduser()]
        how = "the data_dir argument"
    elif os.environ.get(DATA_DIR_ENV):
        searched = [Path(os.environ[DATA_DIR_ENV]).expanduser()]
        how = f"${DATA_DIR_ENV}"
    else:
        searched = _candidate_data_dirs()
        how = "the default locations"
    for base in searched:
        path = base / name / f"{split}.json"
        if path.is_file():
            return path
    looked = ", ".join(str(b / name / f"{split}.json") for b in searched)
    raise FileNotFoundError(
        f"bundled dataset {name!r} (split {split!r}) not found via {how}; looked at: {looked}. "
        f"Point at the data with load_dataset(..., data_dir=...) or the {DATA_DIR_ENV} "
        f"environment variable (a directory containing <name>/{split}.json), or pass a path "
        f"to a .json/.jsonl file."
    )


def _read_json_records(path: Path, split: str) -> list[Any]:
    if path.suffix.lower() == ".jsonl":
        records: list[Any] = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: line {lineno} is not valid JSON: {err}") from err
        return records
    with path.open(encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from err
    if isinstance(data, Mapping):
        for key in (split, "data", "examples", "records"):
            if isinstance(data.get(key), list):
                return list(data[key])
        raise ValueError(
            f"{path}: expected a JSON list of records (or an object with a {split!r}/'data' list)"
        )
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def _infer_task(records: list[Any], names: Iterable[str] = (), hub_id: str = "") -> str:
    """Task family from name hints, else from the solutions' shape (default arithmetic).

    Args:
        records: The raw records.
        names: Exact names to match against the bundled datasets (a file's stem and parent
            directory name, e.g. ``shared/data/math/test.json`` -> ``math``).
        hub_id: A Hugging Face dataset id, matched by substring (``openai/gsm8k``).
    """
    for name in names:
        key = name.lower()
        key = _NAME_ALIASES.get(key, key)
        if key in DATASETS:
            return DATASETS[key]
    hub = hub_id.lower()
    for word, fam in (
        ("strategyqa", "yesno"),
        ("gsm", "arithmetic"),
        ("svamp", "arithmetic"),
        ("math", "math"),
    ):
        if word in hub:
            return fam
    sample = [r for r in records[:50] if isinstance(r, Mapping)]
    sols = [r.get("solution", r.get("answer")) for r in sample]
    if sols and all(
        isinstance(s, bool) or (isinstance(s, str) and s.strip().lower() in _YESNO_GOLDS)
        for s in sols
    ):
        return "yesno"
    if any(
        isinstance(r.get("extra_info"), Mapping) or "\\boxed" in str(r.get("solution", ""))
        for r in sample
    ):
        return "math"
    return "arithmetic"


_YESNO_GOLDS = frozenset({"true", "false", "yes", "no"})


def _field(record: Mapping[str, Any], name: str, index: int, *, default_name: str) -> Any:
    if name in record and record[name] is not None:
        return record[name]
    tried = [name]
    if name == default_name:
        for alias in _FIELD_ALIASES.get(name, ()):
            tried.append(alias)
            if alias in record and record[alias] is not None:
                return record[alias]
    raise ValueError(
        f"record {index}: missing field {name!r}"
        + (f" (also tried {tried[1:]})" if len(tried) > 1 else "")
        + f"; record keys: {sorted(map(str, record))[:20]}"
    )


def records_to_examples(
    records: Iterable[Any],
    *,
    task: str,
    question_field: str = "problem",
    answer_field: str = "solution",
    id_field: str = "id",
    limit: int | None = None,
) -> list[Example]:
    """Turn raw records (mappings) into :class:`Example` objects.

    Args:
        records: Mappings with a question, a solution and (optionally) an id field.
        task: Task family or dataset name (see :func:`langchain_rstar.answers.get_checker`).
        question_field: Field holding the problem text.
        answer_field: Field holding the solution (str or number).
        id_field: Field holding the id; records without it get their index as id.
        limit: Keep only the first ``limit`` records.

    Raises:
        ValueError: A record is not a mapping or lacks a required field (the message names
            the record index and the field).
    """
    checker = get_checker(task)
    family = checker.task
    out: list[Example] = []
    for index, record in enumerate(records):
        if limit is not None and index >= limit:
            break
        if not isinstance(record, Mapping):
            raise ValueError(f"record {index}: expected a JSON object, got {type(record).__name__}")
        problem = _field(record, question_field, index, default_name="problem")
        if not isinstance(problem, str):
            raise ValueError(
                f"record {index}: field {question_field!r} must be a string, "
                f"got {type(problem).__name__}"
            )
        solution = _field(record, answer_field, index, default_name="solution")
        raw_id = record.get(id_field)
        rec_id = str(index) if raw_id is None else str(raw_id)
        extra = record.get("extra_info")
        if isinstance(extra, Mapping) and extra.get("answer") is not None:
            answer = checker.gold(extra["answer"])
        else:
            answer = checker.gold(solution)
        out.append(Example(rec_id, problem, solution, answer, family))
    return out


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")


def _load_hf(spec: str, *, split: str, limit: int | None) -> tuple[list[Any], str]:
    try:
        hf = importlib.import_module("datasets")
    except ImportError as err:
        raise ImportError(
            "loading 'hf:' datasets needs the Hugging Face `datasets` package: pip install datasets"
        ) from err
    dataset_id, _, config = spec.partition(":")
    if not dataset_id:
        raise ValueError("expected 'hf:<dataset id>[:<config>]', e.g. 'hf:openai/gsm8k:main'")
    ds = hf.load_dataset(dataset_id, config or None, split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return [dict(r) for r in ds], dataset_id


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    task: str | None = None,
    question_field: str = "problem",
    answer_field: str = "solution",
    id_field: str = "id",
    split: str = "test",
) -> list[Example]:
    """Load an evaluation dataset as a list of :class:`Example`.

    Args:
        name_or_path: One of

            * a bundled name (``gsm8k``, ``gsm8khard``, ``svamp``, ``math``, ``stg``; also
              ``math500``, ``strategyqa``, ``gsm-hard``), read from
              ``<data_dir>/<name>/<split>.json``;
            * a path to a ``.json`` file (a list of records) or a ``.jsonl`` file;
            * ``hf:<dataset id>[:<config>]`` to load from the Hugging Face hub with the
              optional ``datasets`` package (e.g. ``hf:openai/gsm8k:main`` with
              ``question_field="question", answer_field="answer"``).
        limit: Keep only the first ``limit`` records.
        data_dir: Directory holding the bundled datasets (default: :func:`default_data_dir`).
        task: Task family or dataset name for grading. Bundled datasets know theirs; for files
            it is inferred from the path (a parent directory named like a bundled dataset) or
            the records (yes/no solutions, ``\\boxed`` solutions), defaulting to arithmetic.
        question_field: Field holding the problem text (default ``problem``; ``question`` is
            tried when it is missing).
        answer_field: Field holding the solution (default ``solution``; ``answer`` is tried
            when it is missing).
        id_field: Field holding the record id (missing ids become the record index).
        split: Split to read (bundled: file name ``<split>.json``; hub: split name).

    Returns:
        The examples, in file order.

    Raises:
        FileNotFoundError: A bundled dataset or file cannot be found (says where it looked).
        ValueError: Malformed file or records, unknown task, or bad ``limit``.
        ImportError: ``hf:`` was used without the ``datasets`` package.
    """
    _check_limit(limit)
    if task is not None:
        get_checker(task)  # validate early
    spec = os.fspath(name_or_path)
    records: list[Any]

    if spec.startswith(_HF_PREFIX):
        records, dataset_id = _load_hf(spec[len(_HF_PREFIX) :], split=split, limit=limit)
        family = task or _infer_task(records, hub_id=dataset_id)
    else:
        key = spec.strip().lower()
        key = _NAME_ALIASES.get(key, key)
        path = Path(spec).expanduser()
        if key in DATASETS and not path.is_file():
            path = _resolve_bundled(key, data_dir, split)
            family = task or DATASETS[key]
            records = _read_json_records(path, split)
        else:
            if not path.is_file():
                known = ", ".join(sorted(DATASETS))
                raise FileNotFoundError(
                    f"{spec!r} is neither a bundled dataset ({known}), an 'hf:<id>' spec, nor "
                    f"an existing .json/.jsonl file (resolved to {path.resolve()})"
                )
            records = _read_json_records(path, split)
            family = task or _infer_task(records, (path.stem, path.resolve().parent.name))
    if family.lower() not in TASK_ALIASES:  # pragma: no cover - _infer_task is closed
        raise ValueError(f"unknown task {family!r}")
    return records_to_examples(
        records,
        task=family,
        question_field=question_field,
        answer_field=answer_field,
        id_field=id_field,
        limit=limit,
    )
