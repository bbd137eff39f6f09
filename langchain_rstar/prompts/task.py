"""``TaskSpec``: a task the search can solve -- instruction, few-shot exemplars, answer checker.

Why a spec object: the generator's prompts (five actions), the discriminator's prompt and the
answer checker (extraction, voting key, equivalence) must agree on one task; a user adding a
task (a date puzzle, a multi-hop question) gives all of them in one place, and the three
built-in families (``arithmetic``, ``math``, ``yesno``) are instances of the same class, read
from the package's own exemplar files (``<task>.json`` for the ``fast`` exemplar set,
``<task>_paper.json`` for the ``paper`` set).

Exemplar families (the rStar reference's counts for the built-ins in brackets):

* ``cot`` -- whole step-by-step solutions [8]: A2 (remaining steps) and the discriminator;
* ``one_step`` -- solutions written one small step per line [4]: A1;
* ``decompose`` -- sub-question / answer solutions [4]: A3 and A4;
* ``rephrase`` -- a question and its list of conditions [8]: A5;
* ``shared`` -- the ``fast`` exemplar set: one block shown to every solving action
  (default: the first two ``cot`` and first two ``decompose`` exemplars).

How a config names a task: ``RStarConfig(task=spec)`` registers the spec under ``spec.name``
and stores the *name*, so a config stays plain data (serialisable, sent between graph nodes
and processes as a string). A name is resolved in the process that runs the search: a
LangGraph Server or a Ray worker must import the module that registers the spec (or call
``spec.register()``) before a config naming it is used. Registering a name again replaces the
old spec (so a notebook cell can be re-run); built-in names cannot be replaced.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.answers.tasks import TASK_FAMILIES, _register_checker

__all__ = ["Exemplar", "Rephrasing", "TaskSpec", "task_spec"]

Family = Literal["cot", "one_step", "decompose", "rephrase", "shared"]


class SolutionStep(BaseModel):
    """One line of a worked solution: a step, or a sub-question with its answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["step", "sub"] = "step"
    text: str = ""
    q: str = ""
    a: str = ""

    @model_validator(mode="after")
    def _filled(self) -> SolutionStep:
        if self.kind == "step" and not self.text.strip():
            raise ValueError("a step needs its text")
        if self.kind == "sub" and not (self.q.strip() and self.a.strip()):
            raise ValueError("a sub-question step needs both q (sub-question) and a (answer)")
        return self


class Exemplar(BaseModel):
    """A worked example: a question and its solution lines.

    ``steps`` items may be given as strings (a step) or ``(sub_question, answer)`` pairs.
    The last line should state the answer the way the task's checker reads it (for example
    "The answer is 42.").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1)
    steps: tuple[SolutionStep, ...] = Field(min_length=1)

    @field_validator("steps", mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.append({"kind": "step", "text": item})
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append({"kind": "sub", "q": item[0], "a": item[1]})
            else:
                out.append(item)
        return out


class Rephrasing(BaseModel):
    """An A5 example: a question and its restatement as a list of conditions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1)
    rephrased: str = Field(min_length=1)


class TaskSpec(BaseModel):
    """A task for the search: its instruction, few-shot exemplars and answer checker.

    Args:
        name: The name configs use (``RStarConfig(task=spec)`` stores it). Not a built-in name.
        instruction: The line opening every solving prompt (also the default instruction of
            every exemplar family).
        checker: How answers are read and compared: an :class:`~langchain_rstar.answers.
            AnswerChecker` instance, or a callable (such as a checker class) taking the
            keyword ``extraction`` (``"marker"`` or ``"reference"``) and returning one.
            An instance is used as it is, whatever ``answer_extraction`` says.
        cot: Whole step-by-step solutions (A2 and the discriminator in the ``paper`` set).
            At least one.
        one_step: One-small-step-per-line solutions (A1); default: ``cot``.
        decompose: Sub-question solutions (A3, A4); the last sub-question starts with "Now we
            can answer the question". Default: ``cot``.
        rephrase: A5 examples; none: A5 prompts with the instruction only.
        shared: The ``fast`` set's one block for every solving action; default: the first
            two ``cot`` and first two ``decompose`` exemplars.
        shared_rephrase: The ``fast`` set's A5 examples; default: the first two ``rephrase``.
        instructions: Per-family instruction overrides (keys ``cot``, ``one_step``,
            ``decompose``, ``rephrase``).
        reference_extraction: Whether the checker implements the rStar reference
            evaluator's extraction (``answer_extraction="reference"``, the ``paper``
            default). The reference defines it for numbers, MATH and yes/no only (the
            built-ins say True); for a custom task (default False) the checker is always
            built with ``extraction="marker"``, so its own :meth:`AnswerChecker.extract`
            reads the answers.

    Example:
        >>> from langchain_rstar.answers import AnswerChecker
        >>> class Word(AnswerChecker):
        ...     def normalize(self, answer):
        ...         return (answer or "").strip().lower() or None
        >>> spec = TaskSpec(name="doc-words", instruction="Answer with one word.",
        ...                 checker=Word(), cot=[{"question": "Opposite of hot?",
        ...                 "steps": ["The opposite of hot is cold. The answer is cold."]}])
        >>> spec.get_checker().equivalent("Cold", "cold")
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(min_length=1, max_length=100)
    instruction: str = Field(min_length=1)
    checker: Any
    cot: tuple[Exemplar, ...] = Field(min_length=1)
    one_step: tuple[Exemplar, ...] = ()
    decompose: tuple[Exemplar, ...] = ()
    rephrase: tuple[Rephrasing, ...] = ()
    shared: tuple[Exemplar, ...] = ()
    shared_rephrase: tuple[Rephrasing, ...] | None = None
    instructions: dict[str, str] = Field(default_factory=dict)
    reference_extraction: bool = False

    @field_validator("checker")
    @classmethod
    def _check_checker(cls, value: Any) -> Any:
        if isinstance(value, AnswerChecker) or callable(value):
            return value
        raise ValueError(
            "checker must be an AnswerChecker instance or a callable taking extraction= and "
            f"returning one, got {type(value).__name__}"
        )

    @field_validator("instructions")
    @classmethod
    def _check_instruction_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"cot", "one_step", "decompose", "rephrase"}
        if unknown:
            raise ValueError(
                f"unknown instruction families {sorted(unknown)}; expected cot, one_step, "
                "decompose or rephrase"
            )
        return value

    def get_checker(self, extraction: str = "marker") -> AnswerChecker:
        """The task's answer checker for an extraction mode."""
        if isinstance(self.checker, AnswerChecker):
            return self.checker
        checker = self.checker(extraction=extraction if self.reference_extraction else "marker")
        if not isinstance(checker, AnswerChecker):
            raise TypeError(
                f"the checker factory of task {self.name!r} returned "
                f"{type(checker).__name__}, not an AnswerChecker"
            )
        return checker

    def exemplars(self, family: str) -> tuple[Exemplar, ...]:
        """The solving exemplars of ``family`` (``cot``, ``one_step``, ``decompose``,
        ``shared``), with the documented fallbacks."""
        if family == "cot":
            return self.cot
        if family == "one_step":
            return self.one_step or self.cot
        if family == "decompose":
            return self.decompose or self.cot
        if family == "shared":
            return self.shared or (self.cot[:2] + self.decompose[:2])
        raise ValueError(f"unknown exemplar family {family!r}")

    def rephrasings(self, exemplar_set: str) -> tuple[Rephrasing, ...]:
        """A5 examples of an exemplar set (``paper`` or ``fast``)."""
        if exemplar_set == "fast":
            return self.rephrase[:2] if self.shared_rephrase is None else self.shared_rephrase
        return self.rephrase

    def instruction_for(self, family: str) -> str:
        """The instruction opening a prompt of ``family``."""
        return self.instructions.get(family, self.instruction)

    def register(self) -> TaskSpec:
        """Make the spec findable by its name (configs, checkers, prompts); returns it."""
        if self.name in TASK_FAMILIES or _BUILTIN_SPECS.get(self.name) is self:
            return self
        current = _CUSTOM_SPECS.get(self.name)
        if current is not self:
            _register_checker(self.name, self.get_checker)
            _CUSTOM_SPECS[self.name] = self
        return self


#: Custom specs by name (see :meth:`TaskSpec.register`).
_CUSTOM_SPECS: dict[str, TaskSpec] = {}
_BUILTIN_SPECS: dict[str, TaskSpec] = {}


def _read_json(filename: str) -> dict[str, Any]:
    text = resources.files("langchain_rstar.prompts").joinpath(filename).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _checker_factory(family: str) -> Callable[..., AnswerChecker]:
    def factory(extraction: str = "marker") -> AnswerChecker:
        return get_checker(family, extraction=extraction)

    return factory


@cache
def _builtin(family: str) -> TaskSpec:
    fast = _read_json(f"{family}.json")
    paper = _read_json(f"{family}_paper.json")
    spec = TaskSpec(
        name=family,
        instruction=fast["instruction"],
        checker=_checker_factory(family),
        cot=paper["cot"],
        one_step=paper["one_step"],
        decompose=paper["decompose"],
        rephrase=paper["rephrase"],
        shared=fast["solve"],
        shared_rephrase=fast["rephrase"],
        instructions=paper["instructions"],
        reference_extraction=True,
    )
    _BUILTIN_SPECS[family] = spec
    return spec


def task_spec(task: str | TaskSpec) -> TaskSpec:
    """The spec of a task name (a built-in family or a registered spec), or ``task`` itself.

    Raises:
        ValueError: For a name that is neither (the message lists the known ones).
    """
    if isinstance(task, TaskSpec):
        return task
    if task in TASK_FAMILIES:
        return _builtin(task)
    spec = _CUSTOM_SPECS.get(task)
    if spec is None:
        raise ValueError(
            f"unknown task {task!r}; expected one of {list(TASK_FAMILIES)} or the name of a "
            f"registered TaskSpec {sorted(_CUSTOM_SPECS)} (RStarConfig(task=spec) or "
            "spec.register() registers one)"
        )
    return spec
