"""The prompt format every action shares, and the exemplar data.

Every solving prompt has the same shape so that a prefix cache can serve it::

    <instruction>\n\n<few-shot exemplars>\n\nQuestion: <question>\n<path lines><tail>

The path is written in one format whatever action made each step::

    Step 1: <one-step thought or remaining steps>
    Sub-question 2: <sub-question>
    Answer 2: <its answer>

Why one shared module: the five actions and the discriminator differ only in their tail and
(in the ``paper`` exemplar set) in which exemplars they show; the body of the prompt (question,
path) must be rendered identically for all of them, or the discriminator would continue a
trajectory in a format the generator never wrote.

The exemplars are data (``prompts/<task>.json``), written for this package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from langchain_rstar.answers.tasks import registry_version
from langchain_rstar.prompts.task import SolutionStep, task_spec

#: ``paper``: each action shows its own exemplar family (the rStar reference's counts);
#: ``fast``: one shared block for every solving action (cheaper prompts, one prefix to cache).
EXEMPLAR_SETS = ("paper", "fast")

#: Stop strings of each kind of continuation.
STOP_LINE = ["\n", "Question:"]
STOP_BLOCK = ["\n\n", "\nQuestion:", "Question:"]


@cache
def load_exemplars(task: str) -> dict[str, Any]:
    """The ``fast`` few-shot data file of a built-in family (``arithmetic``, ``math``,
    ``yesno``) as stored; see :func:`~langchain_rstar.prompts.task.task_spec` for any task."""
    try:
        text = (
            resources.files("langchain_rstar.prompts")
            .joinpath(f"{task}.json")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError as exc:
        raise ValueError(f"no exemplars for task {task!r}") from exc
    data: dict[str, Any] = json.loads(text)
    return data


def _exemplar_lines(steps: Sequence[SolutionStep]) -> list[str]:
    lines: list[str] = []
    for k, step in enumerate(steps, start=1):
        if step.kind == "sub":
            lines.append(f"Sub-question {k}: {step.q}")
            lines.append(f"Answer {k}: {step.a}")
        else:
            lines.append(f"Step {k}: {step.text}")
    return lines


@lru_cache(maxsize=64)
def _block(task: str, family: str, exemplar_set: str, _version: int) -> str:
    spec = task_spec(task)
    if exemplar_set == "fast":
        instruction, exemplars = spec.instruction, spec.exemplars("shared")
    else:
        instruction, exemplars = spec.instruction_for(family), spec.exemplars(family)
    blocks = [instruction]
    for ex in exemplars:
        blocks.append("\n".join([f"Question: {ex.question}", *_exemplar_lines(ex.steps)]))
    return "\n\n".join(blocks) + "\n\n"


def _check_set(exemplar_set: str) -> str:
    if exemplar_set not in EXEMPLAR_SETS:
        raise ValueError(f"unknown exemplar set {exemplar_set!r}; expected one of {EXEMPLAR_SETS}")
    return exemplar_set


def fewshot_block(task: str, family: str = "cot", exemplar_set: str = "fast") -> str:
    """Instruction and exemplars of a solving prompt, ending in a blank line.

    Args:
        task: A built-in family or a registered :class:`~langchain_rstar.TaskSpec` name.
        family: ``cot`` (A2, discriminator), ``one_step`` (A1) or ``decompose`` (A3, A4);
            only the ``paper`` set tells them apart.
        exemplar_set: ``fast`` (one shared block for every action) or ``paper``.
    """
    return _block(task, family, _check_set(exemplar_set), registry_version())


def solve_prefix(
    task: str, question: str, *, family: str = "cot", exemplar_set: str = "fast"
) -> str:
    """Few-shot block followed by the question line."""
    return f"{fewshot_block(task, family, exemplar_set)}Question: {question}\n"


def path_question(question: str, path: Sequence[Mapping[str, Any]]) -> str:
    """The question the path works on: the last rephrasing on it, else the original."""
    current = question
    for record in path:
        if record.get("type") == "rephrase" and record.get("text"):
            current = str(record["text"])
    return current


def step_number(path: Sequence[Mapping[str, Any]]) -> int:
    """The number the next step on ``path`` gets (1-based)."""
    return 1 + sum(1 for r in path if r.get("type") not in ("root", "rephrase", "reanswer", None))


def path_lines(path: Sequence[Mapping[str, Any]]) -> list[str]:
    """The path's steps rendered as prompt lines, one unit per step.

    A sub-question renders as two lines (question and answer) in one unit; a re-answered
    sub-question (A4) replaces the answer of the sub-question it follows; an A2 answer
    holding several steps gives one unit per line.
    """
    units: list[str] = []
    k = 0
    for record in path:
        kind = record.get("type")
        if kind in ("root", "rephrase", None):
            continue
        raw = str(record.get("text", "")).strip()
        if kind in ("subquestion", "reanswer"):
            text = " ".join(raw.split("\n")).strip()
            sub = str(record.get("subquestion", "")).strip()
            if kind == "reanswer" and units and k > 0:
                units[-1] = f"Sub-question {k}: {sub}\nAnswer {k}: {text}"
                continue
            k += 1
            units.append(f"Sub-question {k}: {sub}\nAnswer {k}: {text}")
        else:
            k += 1
            lines = [ln.strip() for ln in raw.split("\n") if ln.strip()] or [""]
            units.append(f"Step {k}: {lines[0]}")
            units.extend(lines[1:])
    return units


def solve_body(
    task: str,
    question: str,
    path: Sequence[Mapping[str, Any]],
    *,
    family: str = "cot",
    exemplar_set: str = "fast",
) -> tuple[str, int]:
    """The prompt up to the next step: few-shot block, the path's question, its steps.

    Returns the text and the number the next step gets.
    """
    prefix = solve_prefix(
        task, path_question(question, path), family=family, exemplar_set=exemplar_set
    )
    body = prefix + "".join(line + "\n" for line in path_lines(path))
    return body, step_number(path)
