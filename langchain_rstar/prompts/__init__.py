"""Prompt rendering for the five actions and the discriminator.

Every solving prompt has the same shape so that a prefix cache can serve it:

    <instruction>\n\n<few-shot exemplars>\n\nQuestion: <question>\n<path lines><tail>

The path is written in one format whatever action made each step::

    Step 1: <one-step thought or remaining steps>
    Sub-question 2: <sub-question>
    Answer 2: <its answer>

The exemplars are data (``prompts/<task>.json``), written for this package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "FINAL_SUBQUESTION_PREFIX",
    "cot_prompt",
    "load_exemplars",
    "solve_prefix",
    "rephrase_prompt",
    "path_question",
    "path_lines",
    "step_number",
]

FINAL_SUBQUESTION_PREFIX = "Now we can answer the question"

#: Stop strings of each kind of continuation.
STOP_LINE = ["\n", "Question:"]
STOP_BLOCK = ["\n\n", "\nQuestion:", "Question:"]
#: A5: the rephrasing is one line that itself ends with "Question: ..." (as the exemplars
#: show), so only a new line may end it; "Question:" would cut the question off.
STOP_REPHRASE = ["\n"]


@cache
def load_exemplars(task: str) -> dict[str, Any]:
    """The few-shot data of a task family (``arithmetic``, ``math`` or ``yesno``)."""
    try:
        text = (
            resources.files("langchain_rstar.prompts")
            .joinpath(f"{task}.json")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError as exc:  # pragma: no cover - guarded by the config literal
        raise ValueError(f"no exemplars for task {task!r}") from exc
    data: dict[str, Any] = json.loads(text)
    return data


def _exemplar_lines(steps: Sequence[Mapping[str, str]]) -> list[str]:
    lines: list[str] = []
    for k, step in enumerate(steps, start=1):
        if step["kind"] == "sub":
            lines.append(f"Sub-question {k}: {step['q']}")
            lines.append(f"Answer {k}: {step['a']}")
        else:
            lines.append(f"Step {k}: {step['text']}")
    return lines


@lru_cache(maxsize=16)
def _fewshot_block(task: str) -> str:
    data = load_exemplars(task)
    blocks = [data["instruction"]]
    for ex in data["solve"]:
        blocks.append("\n".join([f"Question: {ex['question']}", *_exemplar_lines(ex["steps"])]))
    return "\n\n".join(blocks) + "\n\n"


def solve_prefix(task: str, question: str) -> str:
    """Few-shot block followed by the question line."""
    return f"{_fewshot_block(task)}Question: {question}\n"


@lru_cache(maxsize=16)
def _rephrase_block(task: str) -> str:
    data = load_exemplars(task)
    blocks = ["Rewrite each question as a numbered list of its conditions, then the question."]
    for ex in data["rephrase"]:
        blocks.append(f"Question: {ex['question']}\nRephrased question: {ex['rephrased']}")
    return "\n\n".join(blocks) + "\n\n"


def rephrase_prompt(task: str, question: str) -> str:
    """Prompt for A5; the model continues after ``Rephrased question:``."""
    return f"{_rephrase_block(task)}Question: {question}\nRephrased question:"


#: The chain-of-thought answer's opening (A2 in ``regenerate`` mode, A4 in ``resolve`` mode).
COT_OPENING = "Let's think step by step."


@lru_cache(maxsize=16)
def _cot_block(task: str) -> str:
    data = load_exemplars(task)
    blocks = [
        data["instruction"].split(".")[0]
        + ". Think step by step in one paragraph and finish with the answer statement the "
        "examples show."
    ]
    for ex in data["solve"]:
        parts = [s["a"] if s["kind"] == "sub" else s["text"] for s in ex["steps"]]
        # one answer statement, at the end: intermediate sub-answers lose theirs
        parts = [p.split("The answer is")[0].strip() for p in parts[:-1]] + parts[-1:]
        blocks.append(f"Question: {ex['question']}\nAnswer: {COT_OPENING} {' '.join(parts)}")
    return "\n\n".join(blocks) + "\n\n"


def cot_prompt(task: str, question: str, hint: str | None = None) -> str:
    """Chain-of-thought few-shot prompt: the model writes a whole solution after
    ``Answer: Let's think step by step.``; ``hint`` (steps found so far) goes on its own
    line after the question, as the reference code appends it to the question."""
    hint_line = f"{hint.strip()}\n" if hint and hint.strip() else ""
    return f"{_cot_block(task)}Question: {question}\n{hint_line}Answer: {COT_OPENING}"


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
