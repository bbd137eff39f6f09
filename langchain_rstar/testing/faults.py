"""Fault injection: a model wrapper that fails, stalls and babbles on schedule.

:class:`FaultyLLM` wraps any LangChain ``BaseLLM`` and, deterministically by call number,
raises, sleeps, or returns garbage, empty text or an endless repetition instead of the
wrapped model's answer. Use it to check that a search survives a flaky backend::

    from langchain_rstar.testing.faults import FaultyLLM

    flaky = FaultyLLM(llm=my_llm, fail_every=3)        # every 3rd call raises
    slow = FaultyLLM(llm=my_llm, delay=2.0, delay_every=4)
    dying = FaultyLLM(llm=my_llm, fail_after=20)        # the server stops after 20 calls
    hung = FaultyLLM(llm=my_llm, hang_after=5)          # calls after the 5th never return
    RStarChain(generator=flaky, config=RStarConfig(max_retries=2)).invoke(question)

A *call* is one ``generate`` of the wrapper (one request with its batch of prompts and
``n`` samples each), numbered from 1. When several faults fall on the same call, the
delay comes first, then a raise wins over garbage, which wins over empty text, which wins
over repetition.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_rstar.errors import InjectedFault
from langchain_rstar.llms.base import RStarBackend, backend_traits
from langchain_rstar.sampling.text import cut_at_stop

__all__ = ["FaultyLLM", "InjectedFault", "GARBAGE"]

#: What a garbage completion looks like: control characters, a NUL, broken markup,
#: replacement characters and no answer.
GARBAGE = "\x00\x1b[31m\ufffd\ufffd }}]]>  \u202e<|endoftext|>%%$#@! \x07qzx ,,,;;"


def _hits(every: int | None, number: int) -> bool:
    return every is not None and number % every == 0


class FaultyLLM(RStarBackend, BaseLLM):
    """A ``BaseLLM`` that forwards to ``llm`` and injects faults deterministically.

    It is a transparent wrapper in the backend contract's terms
    (:class:`~langchain_rstar.llms.base.RStarBackend`): ``rstar_wrapped_llm`` names the
    wrapped model, and the wrapped model's traits (sampling keywords, top-p cost) are
    reported as its own, so the sampler calls it exactly as it would call the model.

    Attributes:
        llm: the wrapped model (any ``BaseLLM``); sampling keyword arguments (``n``,
            ``temperature``, ``seed``...) are forwarded to it unchanged.
        fail_every: raise :class:`InjectedFault` on calls k, 2k, 3k... (None: never).
        fail_after: raise on every call after the first ``fail_after`` (a backend that
            dies mid-run); None: never.
        recover_after: with ``fail_after``, calls after this number work again (the
            backend comes back); None: it never does.
        hang_after: every call after the first ``hang_after`` blocks forever (a backend
            that stops answering without closing the connection) until :meth:`release`;
            None: never.
        error: the message of injected errors.
        delay: seconds to sleep before answering (or failing) a delayed call.
        delay_every: delay calls k, 2k...; None with ``delay > 0`` delays every call.
        garbage_every: return :data:`GARBAGE` for every sample of calls k, 2k...
        empty_every: return empty text for every sample of calls k, 2k...
        repeat_every: return an endless repetition of ``repeat_text`` (``repeat_chars``
            characters long, as if the model looped until its token cap) on calls k, 2k...
        repeat_text: the repeated unit.
        repeat_chars: length of a repetitive completion.

    ``calls`` counts calls; ``faults`` counts injected faults by kind.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: BaseLLM
    fail_every: int | None = Field(None, ge=1)
    fail_after: int | None = Field(None, ge=0)
    recover_after: int | None = Field(None, ge=0)
    error: str = "injected fault: the model backend failed"
    delay: float = Field(0.0, ge=0.0)
    delay_every: int | None = Field(None, ge=1)
    garbage_every: int | None = Field(None, ge=1)
    empty_every: int | None = Field(None, ge=1)
    repeat_every: int | None = Field(None, ge=1)
    repeat_text: str = " The answer is 12. Let me check that again."
    repeat_chars: int = Field(2000, ge=1)
    hang_after: int | None = Field(None, ge=0)
    calls: int = 0
    faults: dict[str, int] = Field(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _released: threading.Event = PrivateAttr(default_factory=threading.Event)
    # Not a pydantic field: the contract's class attribute becomes the property below.
    accepts_sampling_kwargs: ClassVar[Any]  # type: ignore[misc]

    @property
    def _llm_type(self) -> str:
        return f"faulty-{self.llm._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"wrapped": self.llm._llm_type}

    @property  # type: ignore[no-redef]
    def accepts_sampling_kwargs(self) -> bool:  # type: ignore[override]
        """Whether the wrapped model takes ``n`` and sampling kwargs (forwarded as is)."""
        return bool(getattr(self.llm, "accepts_sampling_kwargs", False))

    @property
    def rstar_wrapped_llm(self) -> BaseLLM:
        """The wrapped model (the sampler talks to this wrapper as it would to it)."""
        return self.llm

    def rstar_top_p_costly(self) -> bool:
        """The wrapped model's answer (a wrapper adds no cost of its own)."""
        return backend_traits(self.llm).top_p_costly

    def release(self) -> None:
        """Let every hung call (``hang_after``) fail now, and later ones fail at once."""
        self._released.set()

    def reset(self) -> None:
        """Zero the call and fault counters."""
        with self._lock:
            self.calls = 0
            self.faults = {}

    # -- the schedule ----------------------------------------------------------------------
    def _next(self) -> tuple[int, str | None, bool]:
        """Number this call; decide its fault (hang/raise/garbage/empty/repeat) and delay."""
        with self._lock:
            self.calls += 1
            number = self.calls
            fault: str | None = None
            if self.hang_after is not None and number > self.hang_after:
                self.faults["hang"] = self.faults.get("hang", 0) + 1
                return number, "hang", False
            dead = self.fail_after is not None and number > self.fail_after
            if dead and self.recover_after is not None and number > self.recover_after:
                dead = False
            if dead or _hits(self.fail_every, number):
                fault = "raise"
            elif _hits(self.garbage_every, number):
                fault = "garbage"
            elif _hits(self.empty_every, number):
                fault = "empty"
            elif _hits(self.repeat_every, number):
                fault = "repeat"
            delayed = self.delay > 0 and (
                self.delay_every is None or _hits(self.delay_every, number)
            )
            if fault is not None:
                self.faults[fault] = self.faults.get(fault, 0) + 1
            if delayed:
                self.faults["delay"] = self.faults.get("delay", 0) + 1
            return number, fault, delayed

    def _fake(
        self, fault: str, number: int, prompts: list[str], stop: list[str] | None, n: int
    ) -> LLMResult:
        if fault == "raise":
            raise InjectedFault(f"{self.error} (call {number})")
        if fault == "garbage":
            text = GARBAGE
        elif fault == "empty":
            text = ""
        else:
            unit = self.repeat_text or "again "
            text = (unit * (self.repeat_chars // len(unit) + 1))[: self.repeat_chars]
        text = cut_at_stop(text, stop or [])
        return LLMResult(
            generations=[[Generation(text=text) for _ in range(n)] for _ in prompts],
            llm_output={"model_name": self._llm_type},
        )

    # -- BaseLLM -------------------------------------------------------------------------
    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        number, fault, delayed = self._next()
        if fault == "hang":
            self._released.wait()
            raise InjectedFault(f"hung call {number} released")
        if delayed:
            time.sleep(self.delay)
        if fault is not None:
            return self._fake(fault, number, prompts, stop, int(kwargs.get("n", 1) or 1))
        return self.llm._generate(prompts, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        number, fault, delayed = self._next()
        if fault == "hang":
            while not self._released.is_set():
                await asyncio.sleep(0.05)
            raise InjectedFault(f"hung call {number} released")
        if delayed:
            await asyncio.sleep(self.delay)
        if fault is not None:
            return self._fake(fault, number, prompts, stop, int(kwargs.get("n", 1) or 1))
        return await self.llm._agenerate(prompts, stop=stop, run_manager=run_manager, **kwargs)
