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

from langchain_rstar._sampling import truncate_at_stop

__all__ = ["ScriptedLLM", "prompt_tail"]


def prompt_tail(prompt: str) -> str:
    """The part of a prompt after its last ``Question:`` (the question and the path)."""
    i = prompt.rfind("Question:")
    return prompt[i:] if i >= 0 else prompt


class ScriptedLLM(BaseLLM):
    """A deterministic ``BaseLLM`` driven by rules.

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

    accepts_sampling_kwargs: ClassVar[bool] = True

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
            texts = [truncate_at_stop(t, stop or []) for t in self.samples_for(prompt, n)]
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
