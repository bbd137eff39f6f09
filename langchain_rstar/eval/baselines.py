"""Baselines that share rStar's model, prompts and accounting: few-shot CoT and self-consistency.

Both baselines write the same prompt as the search's direct-answer action at the root
(A2): the task's few-shot block (:func:`langchain_rstar.prompts.remaining_prompt`; with the
``paper`` exemplar set the 8 step-by-step solutions, as the reference's CoT baseline), the
question, then ``Step 1:``; generation stops at the first blank line. Every model call
goes through :class:`~langchain_rstar.sampling.sampler.Sampler`, the same object the search uses,
so retries, timeouts and token counts are accounted for in exactly the same way.

* :class:`ChainOfThought` (``cot``): one greedy sample (temperature 0).
* :class:`SelfConsistency` (``sc``): ``num_samples`` samples of the same prompt at the
  search's sampling temperature; the answer is their majority (maj@N), and the question is
  *covered* when any sample reaches the gold answer (pass@N).

Each ``solve`` returns a :class:`MethodOutput`; a model call that failed after its retries
raises :class:`QuestionFailed` (the question has no result), and a dead backend raises
:class:`~langchain_rstar.errors.BackendDeadError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseLanguageModel

from langchain_rstar import prompts as P
from langchain_rstar.answers import AnswerChecker, get_checker, majority_vote
from langchain_rstar.config import RStarConfig
from langchain_rstar.errors import BackendDeadError, QuestionFailed
from langchain_rstar.sampling.sampler import Sampler
from langchain_rstar.sampling.types import SampleCall, SampleOutcome

__all__ = [
    "BackendDeadError",
    "ChainOfThought",
    "MethodOutput",
    "QuestionFailed",
    "SelfConsistency",
    "UsageMeter",
    "default_sc_samples",
    "failed_calls",
    "render_steps",
]


def failed_calls(errors: Sequence[Mapping[str, Any]]) -> int:
    """How many of a run's recorded errors are failed model calls: entries marked
    ``warning`` (degenerate votes: every call answered) are not."""
    return sum(1 for e in errors if not e.get("warning"))


@dataclass
class MethodOutput:
    """What one method made of one question.

    Attributes:
        prediction: the chosen answer (None when the method found none).
        confidence: the method's own confidence in it (vote share for voting methods).
        answers: every distinct answer the method produced, with how many samples (or
            candidate trajectories) reached it; coverage is computed from these.
        trajectory: the winning reasoning, one string per step.
        usage: ``llm_calls``, ``prompt_tokens``, ``completion_tokens``, ``samples``,
            ``model_seconds``, ``tokens_estimated`` (seconds are measured by the harness).
        call_errors: failed model calls that the method recovered from.
        extra: method-specific details (e.g. the generator majority of ``rstar``).
    """

    prediction: str | None
    confidence: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)
    trajectory: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    call_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class UsageMeter:
    """Adds up the usage of :class:`SampleOutcome` objects (the search's own keys)."""

    KEYS = ("llm_calls", "prompt_tokens", "completion_tokens", "samples")

    def __init__(self) -> None:
        self.totals: dict[str, float] = {k: 0.0 for k in self.KEYS}
        self.model_seconds = 0.0
        self.tokens_estimated = False

    def add(self, outcome: SampleOutcome) -> None:
        for key in self.KEYS:
            self.totals[key] += float(outcome.usage.get(key, 0.0))
        self.model_seconds += float(outcome.usage.get("model_seconds", 0.0))
        if outcome.usage.get("tokens_estimated"):
            self.tokens_estimated = True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: int(v) for k, v in self.totals.items()}
        out["model_seconds"] = round(self.model_seconds, 4)
        out["tokens_estimated"] = self.tokens_estimated
        return out


def render_steps(completion: str, first_step: int = 1) -> list[str]:
    """A ``Step 1:`` continuation as one string per line (``Step 1: ...``, ``Step 2: ...``)."""
    lines = [ln.strip() for ln in (completion or "").split("\n") if ln.strip()]
    if not lines:
        return []
    return [f"Step {first_step}: {lines[0]}", *lines[1:]]


def default_sc_samples(config: RStarConfig) -> int:
    """Samples for self-consistency with a generation budget comparable to rStar's.

    Every rollout of the search expands at least one node, and every expansion runs the
    direct-answer action (A2), which alone samples ``num_votes`` solutions to the end (A3
    and A4 add ``num_votes`` answers per sub-question on top). So rStar writes at least
    ``num_rollouts * num_votes`` (partial) solutions per question, and self-consistency
    gets that many whole ones: 160 with the paper's defaults (16 x 10), 16 with a
    cut-down CPU budget (4 x 4). Clamped to [4, 256]. Pass ``num_samples`` to match a
    measured token budget instead (``rstar report`` shows tokens per question).
    """
    return max(4, min(256, config.num_rollouts * config.num_votes))


class _SingleCallMethod:
    """Shared plumbing of the baselines: one sampler, one prompt format."""

    name = "base"

    def __init__(self, llm: BaseLanguageModel | Sampler, config: RStarConfig | None = None) -> None:
        self.config = config or RStarConfig()
        if isinstance(llm, Sampler):
            self.sampler = llm
        else:
            self.sampler = Sampler(
                llm,
                max_retries=self.config.max_retries,
                retry_backoff=self.config.retry_backoff,
                call_timeout=self.config.call_timeout,
            )

    def prompt(self, question: str, task: str | None = None) -> str:
        """The prompt both baselines send: the search's A2 prompt at the root (few-shot
        block of the config's ``exemplar_set``, question, ``Step 1:``)."""
        return P.remaining_prompt(
            task or self.config.task, question, [], exemplar_set=self.config.exemplar_set
        )

    def settings(self) -> dict[str, Any]:
        """What distinguishes this run (stored with every record)."""
        return {
            "task": self.config.task,
            "max_tokens": self.config.max_tokens,
            "exemplar_set": self.config.exemplar_set,
            "answer_extraction": self.config.answer_extraction,
        }

    def _sample(
        self, question: str, task: str, n: int, params: dict[str, Any], seed: int | None
    ) -> tuple[list[str], UsageMeter, SampleOutcome]:
        meter = UsageMeter()
        call = SampleCall(
            prompts=[self.prompt(question, task)],
            n=n,
            stop=list(P.STOP_BLOCK),
            role="generator",
            params=params,
            seed=seed,
            run_name=self.name,
            metadata={"method": self.name},
        )
        outcome = self.sampler.sample(call)
        meter.add(outcome)
        texts = outcome.texts[0] if outcome.texts else None
        if texts is None:
            last = outcome.errors[-1]["error"] if outcome.errors else "no output"
            raise QuestionFailed(f"{self.name}: the model call failed: {last}", outcome.errors)
        return list(texts), meter, outcome

    def _checker(self, task: str | None) -> AnswerChecker:
        return get_checker(task or self.config.task, extraction=self.config.answer_extraction)


class ChainOfThought(_SingleCallMethod):
    """Greedy few-shot chain of thought (``cot``): one sample at temperature 0.

    Args:
        llm: the model (or a ready :class:`Sampler`).
        config: an :class:`RStarConfig`; its ``task``, ``max_tokens``, retries and
            timeout apply.
    """

    name = "cot"

    def solve(self, question: str, task: str | None = None) -> MethodOutput:
        task = task or self.config.task
        params = {"temperature": 0.0, "max_tokens": self.config.max_tokens}
        texts, meter, outcome = self._sample(question, task, 1, params, self.config.seed)
        checker = self._checker(task)
        text = texts[0] if texts else ""
        answer = checker.extract(text)
        if answer is not None and checker.normalize(answer) is None:
            answer = None
        return MethodOutput(
            prediction=answer,
            confidence=1.0 if answer is not None else 0.0,
            answers={answer: 1} if answer is not None else {},
            trajectory=render_steps(text),
            usage=meter.as_dict(),
            call_errors=failed_calls(outcome.errors),
        )


class SelfConsistency(_SingleCallMethod):
    """Self-consistency (``sc``): majority of ``num_samples`` sampled chains of thought.

    Args:
        llm: the model (or a ready :class:`Sampler`).
        config: an :class:`RStarConfig`; its sampling parameters (temperature, top-k,
            top-p, min-p, max_tokens, seed) are the ones the search uses.
        num_samples: samples per question; None uses :func:`default_sc_samples`.
    """

    name = "sc"

    def __init__(
        self,
        llm: BaseLanguageModel | Sampler,
        config: RStarConfig | None = None,
        num_samples: int | None = None,
    ) -> None:
        super().__init__(llm, config)
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.num_samples = num_samples or default_sc_samples(self.config)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            **self.config.sampling_kwargs(),
            "num_samples": self.num_samples,
        }

    def solve(self, question: str, task: str | None = None) -> MethodOutput:
        task = task or self.config.task
        texts, meter, outcome = self._sample(
            question, task, self.num_samples, self.config.sampling_kwargs(), self.config.seed
        )
        checker = self._checker(task)
        answers = [checker.extract(t) for t in texts]
        vote = majority_vote(answers, checker)
        trajectory = (
            render_steps(texts[vote.winners[0]])
            if vote.winners
            else (render_steps(texts[0]) if texts else [])
        )
        return MethodOutput(
            prediction=vote.answer,
            confidence=vote.confidence,
            answers=dict(vote.counts),
            trajectory=trajectory,
            usage=meter.as_dict(),
            call_errors=failed_calls(outcome.errors),
            extra={"samples_answered": sum(1 for a in answers if a is not None)},
        )
