"""Test doubles: a scripted LLM that answers the package's prompts deterministically.

Useful for unit tests, examples and overhead benchmarks: no model, no network.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_rstar.llms.base import RStarBackend
from langchain_rstar.sampling.text import cut_at_stop

__all__ = ["APPLES_QUESTION", "ScriptedLLM", "apples_llm", "prompt_tail"]


def prompt_tail(prompt: str) -> str:
    """The part of a prompt after its last ``Question:`` (the question and the path)."""
    i = prompt.rfind("Question:")
    return prompt[i:] if i >= 0 else prompt


class ScriptedLLM(RStarBackend, BaseLLM):
    """A deterministic ``BaseLLM`` driven by rules, a first-class rStar backend.

    It subclasses the backend contract (:class:`~langchain_rstar.llms.base.RStarBackend`)
    like a real engine: ``generate`` takes ``n`` and the sampling keywords per call and
    returns ``n`` samples per prompt with token counts.

    Each rule is ``(pattern, completions)``: the first rule whose regular expression is found
    (``re.search``, DOTALL) in the prompt's tail (see :func:`prompt_tail`) answers; sample
    ``j`` of a prompt is ``completions[j % len(completions)]``. Stop strings are honoured.
    Alternatively ``responder(prompt, n) -> list[str]`` computes the samples.

    Attributes:
        rules: the rules, tried in order.
        default: completions when no rule matches.
        responder: optional function replacing the rules.
        latency: seconds each ``generate`` call sleeps (to imitate a model).
        calls: a log of ``(prompts, kwargs)`` per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    accepts_sampling_kwargs: ClassVar[bool] = True  # type: ignore[misc]

    rules: list[tuple[str, list[str]]] = Field(default_factory=list)
    default: list[str] = Field(default_factory=lambda: [" The answer is 0."])
    responder: Callable[[str, int], list[str]] | None = None
    latency: float = 0.0
    record_calls: bool = True
    calls: list[tuple[list[str], dict[str, Any]]] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _compiled: list[tuple[re.Pattern[str], list[str]]] | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _patterns(self) -> list[tuple[re.Pattern[str], list[str]]]:
        if self._compiled is None:
            self._compiled = [(re.compile(p, re.DOTALL), c) for p, c in self.rules]
        return self._compiled

    def samples_for(self, prompt: str, n: int) -> list[str]:
        """The ``n`` completions this model gives ``prompt`` (before stop strings)."""
        if self.responder is not None:
            return list(self.responder(prompt, n))[:n]
        tail = prompt_tail(prompt)
        completions: Sequence[str] = self.default
        for pattern, outs in self._patterns():
            if pattern.search(tail):
                completions = outs
                break
        return [completions[j % len(completions)] for j in range(n)]

    def _result(
        self, prompts: list[str], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> LLMResult:
        n = int(kwargs.get("n", 1))
        if self.record_calls:
            with self._lock:
                self.calls.append((list(prompts), dict(kwargs)))
        generations = []
        prompt_tokens = completion_tokens = 0
        for prompt in prompts:
            texts = [cut_at_stop(t, stop or []) for t in self.samples_for(prompt, n)]
            generations.append([Generation(text=t) for t in texts])
            prompt_tokens += len(prompt.split())
            completion_tokens += sum(len(t.split()) for t in texts)
        return LLMResult(
            generations=generations,
            llm_output={
                "token_usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                },
                "model_name": "scripted",
            },
        )

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        if self.latency:
            time.sleep(self.latency)
        return self._result(prompts, stop, kwargs)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._result(prompts, stop, kwargs)


#: The question :func:`apples_llm` is scripted for (its right answer is 10).
APPLES_QUESTION = (
    "Ann has 3 bags with 4 apples in each bag. She eats 2 apples. How many apples are left?"
)


def apples_llm(**kwargs: Any) -> ScriptedLLM:
    """A scripted model for :data:`APPLES_QUESTION`, for demos, examples and tests.

    Its first sample, and the root's direct-answer majority, say 12 (wrong); deeper
    trajectories (a thought then the answer, or sub-questions) reach 10 with full
    agreement, so only search and voting find the right answer. As a discriminator it
    completes a solution cut off inside a line (the ``paper`` profile's word masks) the
    right way, to 10, whatever the prefix began; a prefix that ends with a step cue gets
    the generator's samples. Its answers to other questions mean nothing.

    Args:
        **kwargs: further :class:`ScriptedLLM` fields (e.g. ``latency``).
    """
    right = " Ann has 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10 apples are left. The answer is 10."
    cot = r"\nAnswer: Let's think step by step\.$"  # A2 regenerate / A4 resolve (paper)
    return ScriptedLLM(
        rules=[
            (
                r"Hint[^\n]* 12\b.*" + cot,
                [" 3 * 4 = 12 apples, and 12 - 2 = 10. The answer is 10."],
            ),
            (r"How many apples are in the bags\?" + cot, [" 3 * 4 = 12. The answer is 12."]),
            (
                cot,
                [
                    " 3 * 4 = 12 apples. The answer is 12.",
                    " 3 * 4 = 12 apples, and 12 - 2 = 10. The answer is 10.",
                    " 3 + 4 = 7 apples. The answer is 7.",
                ],
            ),
            (r"12 apples\.\nStep 2:$", [" 12 - 2 = 10 apples are left. The answer is 10."]),
            (
                r"Sub-question 2: Now we can answer[^\n]*\nAnswer 2:$",
                [" 12 - 2 = 10. The answer is 10."],
            ),
            (r"Answer 1:( Let's work it out step by step\.)?$", [" 3 * 4 = 12. The answer is 12."]),
            (r"Sub-question 1:$", [" How many apples are in the bags?"]),
            (r"Sub-question 2:$", [" Now we can answer the question: How many apples are left?"]),
            (
                r"Rephrased question:$",
                [
                    " Condition 1: Ann has 3 bags. Condition 2: Each bag holds 4 apples. "
                    "Condition 3: She eats 2 apples. Question: How many apples are left?"
                ],
            ),
            (
                r"Step \d+:$",
                [
                    " 3 * 4 = 12 apples. The answer is 12.",
                    right,
                    " 3 + 4 = 7 apples. The answer is 7.",
                ],
            ),
            (
                # A masked solution cut inside a line (not a cue ending in ':', not A4's
                # "step by step." hint): complete it to the right answer.
                r"\A(?!.*step by step\.\Z).*\n(?:Step|Sub-question) 1:.*[^\s:]\Z",
                [" and 2 of the 12 apples are eaten, so 12 - 2 = 10 are left. The answer is 10."],
            ),
        ],
        default=[" The answer is 12."],
        **kwargs,
    )
