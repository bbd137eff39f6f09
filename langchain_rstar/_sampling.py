"""Getting ``n`` samples per prompt out of any LangChain language model.

The search speaks LangChain's own protocol: prompts in, generations out. This module maps
the search's sampling parameters onto what each kind of model accepts, falls back to
repeated prompts for models that ignore ``n``, retries failing calls with backoff, enforces
a per-call timeout, and accounts tokens and time. A failure never raises out of
:meth:`Sampler.sample`: it comes back as an error record and ``None`` texts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.messages import HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig

__all__ = ["SampleCall", "SampleOutcome", "Sampler", "truncate_at_stop", "BackendDeadError"]


class BackendDeadError(RuntimeError):
    """Raised when the model failed so many calls in a row that the search cannot go on."""


@dataclass
class SampleCall:
    """A request for ``n`` samples of each prompt, all with the same parameters.

    Attributes:
        prompts: the prompts.
        n: samples per prompt.
        stop: stop strings.
        role: ``generator`` or ``discriminator`` (which model answers).
        params: sampling parameters (temperature, top_k, top_p, min_p, max_tokens).
        seed: sampling seed for this call (None: unseeded).
        run_name: name of the LLM run in traces.
        metadata: metadata attached to the LLM run.
    """

    prompts: list[str]
    n: int
    stop: list[str]
    role: str = "generator"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    run_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleOutcome:
    """Samples of a :class:`SampleCall`: ``texts[i]`` is None when prompt i failed."""

    texts: list[list[str] | None]
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    intervals: list[list[float]] = field(default_factory=list)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if not s:
            continue
        i = text.find(s)
        if 0 <= i < cut:
            cut = i
    return text[:cut]


def _mode_of(llm: BaseLanguageModel) -> str:
    if getattr(llm, "accepts_sampling_kwargs", False):
        return "native"
    module = type(llm).__module__
    if module.startswith("langchain_openai") or module.startswith("langchain_community.llms.openai"):
        return "openai_chat" if isinstance(llm, BaseChatModel) else "openai"
    if isinstance(llm, BaseChatModel):
        return "chat"
    if isinstance(llm, BaseLLM):
        return "generic"
    raise TypeError(
        f"expected a LangChain BaseLLM or BaseChatModel, got {type(llm).__name__}"
    )


class Sampler:
    """Samples from one LangChain model on behalf of the search.

    Args:
        llm: a LangChain ``BaseLLM`` or ``BaseChatModel``.
        max_retries: retries of a failing call.
        retry_backoff: first backoff in seconds (doubles each retry).
        call_timeout: seconds before a call counts as failed (None: no limit).
        dead_after: consecutive failed calls (after retries) before the backend counts as
            dead and :class:`BackendDeadError` is raised.
    """

    def __init__(
        self,
        llm: BaseLanguageModel,
        *,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        call_timeout: float | None = None,
        dead_after: int = 3,
    ) -> None:
        self.llm = llm
        self.mode = _mode_of(llm)
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.call_timeout = call_timeout
        self.dead_after = dead_after
        self._consecutive_failures = 0

    # -- request building ------------------------------------------------------------
    def _kwargs(self, call: SampleCall, n: int) -> dict[str, Any]:
        params = dict(call.params)
        if self.mode == "native":
            out = {k: v for k, v in params.items() if v is not None}
            out["n"] = n
            if call.seed is not None:
                out["seed"] = call.seed
            return out
        if self.mode in ("openai", "openai_chat"):
            out = {"n": n}
            for key in ("temperature", "top_p", "max_tokens"):
                if params.get(key) is not None:
                    out[key] = params[key]
            extra = {k: params[k] for k in ("top_k", "min_p") if params.get(k) is not None}
            if extra:
                out["extra_body"] = extra
            if call.seed is not None:
                out["seed"] = call.seed
            return out
        return {}

    def _expected(self) -> bool:
        """Whether the backend returns ``n`` samples per prompt by itself."""
        return self.mode in ("native", "openai", "openai_chat")

    def _invoke_llm(
        self, prompts: list[str], call: SampleCall, n: int, config: RunnableConfig | None
    ) -> LLMResult:
        kwargs = self._kwargs(call, n)
        common: dict[str, Any] = {
            "stop": call.stop or None,
            "callbacks": (config or {}).get("callbacks"),
            "run_name": call.run_name,
            "metadata": call.metadata or None,
        }
        if isinstance(self.llm, BaseChatModel):
            return self.llm.generate(
                [[HumanMessage(content=p)] for p in prompts], **common, **kwargs
            )
        assert isinstance(self.llm, BaseLLM)
        return self.llm.generate(prompts, **common, **kwargs)

    async def _ainvoke_llm(
        self, prompts: list[str], call: SampleCall, n: int, config: RunnableConfig | None
    ) -> LLMResult:
        kwargs = self._kwargs(call, n)
        common: dict[str, Any] = {
            "stop": call.stop or None,
            "callbacks": (config or {}).get("callbacks"),
            "run_name": call.run_name,
            "metadata": call.metadata or None,
        }
        if isinstance(self.llm, BaseChatModel):
            return await self.llm.agenerate(
                [[HumanMessage(content=p)] for p in prompts], **common, **kwargs
            )
        assert isinstance(self.llm, BaseLLM)
        return await self.llm.agenerate(prompts, **common, **kwargs)

    def _plan(self, call: SampleCall) -> tuple[list[str], int]:
        """Prompts to send and ``n`` to ask for: repeated prompts where ``n`` is ignored."""
        if self._expected():
            return list(call.prompts), call.n
        return [p for p in call.prompts for _ in range(call.n)], 1

    def _collect(
        self, call: SampleCall, result: LLMResult, sent: list[str]
    ) -> tuple[list[list[str] | None], dict[str, float]]:
        gens = result.generations
        per_prompt: list[list[str] | None] = []
        if self._expected():
            for i in range(len(call.prompts)):
                texts = [truncate_at_stop(g.text, call.stop) for g in gens[i]] if i < len(gens) else []
                per_prompt.append(texts)
        else:
            flat = [
                truncate_at_stop(g[0].text, call.stop) if g else "" for g in gens
            ]
            for i in range(len(call.prompts)):
                per_prompt.append(flat[i * call.n : (i + 1) * call.n])
        usage = _usage_of(result, sent, per_prompt)
        return per_prompt, usage

    def _error(self, call: SampleCall, exc: BaseException, attempt: int) -> dict[str, Any]:
        return {
            "kind": "llm_call",
            "role": call.role,
            "run_name": call.run_name,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "attempt": attempt,
            "prompts": len(call.prompts),
            "metadata": dict(call.metadata),
        }

    def _finish(
        self, call: SampleCall, errors: list[dict[str, Any]], failed: bool
    ) -> SampleOutcome:
        if failed:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.dead_after:
                raise BackendDeadError(
                    f"the {call.role} model failed {self._consecutive_failures} calls in a row; "
                    f"last error: {errors[-1]['error'] if errors else 'unknown'}"
                )
        return SampleOutcome(
            texts=[None] * len(call.prompts),
            errors=errors,
            usage={"llm_calls": float(len(errors))},
        )

    # -- public API --------------------------------------------------------------------
    def sample(self, call: SampleCall, config: RunnableConfig | None = None) -> SampleOutcome:
        """Sample synchronously; failures come back as error records."""
        if not call.prompts:
            return SampleOutcome(texts=[])
        sent, n = self._plan(call)
        errors: list[dict[str, Any]] = []
        for attempt in range(self.max_retries + 1):
            start = time.time()
            try:
                if self.call_timeout is None:
                    result = self._invoke_llm(sent, call, n, config)
                else:
                    result = _run_with_timeout(
                        lambda: self._invoke_llm(sent, call, n, config), self.call_timeout
                    )
            except BackendDeadError:
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure is recorded
                errors.append(self._error(call, exc, attempt))
                if attempt < self.max_retries:
                    time.sleep(self.retry_backoff * (2**attempt))
                continue
            end = time.time()
            self._consecutive_failures = 0
            texts, usage = self._collect(call, result, sent)
            usage["llm_calls"] = usage.get("llm_calls", 0.0) + len(errors)
            usage["model_seconds"] = end - start
            return SampleOutcome(texts=texts, errors=errors, usage=usage, intervals=[[start, end]])
        return self._finish(call, errors, failed=True)

    async def asample(
        self, call: SampleCall, config: RunnableConfig | None = None
    ) -> SampleOutcome:
        """Sample asynchronously; failures come back as error records."""
        if not call.prompts:
            return SampleOutcome(texts=[])
        sent, n = self._plan(call)
        errors: list[dict[str, Any]] = []
        for attempt in range(self.max_retries + 1):
            start = time.time()
            try:
                coro = self._ainvoke_llm(sent, call, n, config)
                if self.call_timeout is None:
                    result = await coro
                else:
                    result = await asyncio.wait_for(coro, self.call_timeout)
            except BackendDeadError:
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure is recorded
                errors.append(self._error(call, exc, attempt))
                if attempt < self.max_retries:
                    await asyncio.sleep(self.retry_backoff * (2**attempt))
                continue
            end = time.time()
            self._consecutive_failures = 0
            texts, usage = self._collect(call, result, sent)
            usage["llm_calls"] = usage.get("llm_calls", 0.0) + len(errors)
            usage["model_seconds"] = end - start
            return SampleOutcome(texts=texts, errors=errors, usage=usage, intervals=[[start, end]])
        return self._finish(call, errors, failed=True)


_TIMEOUT_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _run_with_timeout(fn: Any, timeout: float) -> Any:
    global _TIMEOUT_POOL
    if _TIMEOUT_POOL is None:
        _TIMEOUT_POOL = concurrent.futures.ThreadPoolExecutor(
            max_workers=32, thread_name_prefix="rstar-call"
        )
    ctx = contextvars.copy_context()
    future = _TIMEOUT_POOL.submit(ctx.run, fn)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise TimeoutError(f"model call took longer than {timeout:g} s") from exc


def _usage_of(
    result: LLMResult, sent: list[str], texts: list[list[str] | None]
) -> dict[str, float]:
    usage: dict[str, float] = {
        "llm_calls": 1.0,
        "batches": 1.0,
        "prompts": float(len(sent)),
        "samples": float(sum(len(t) for t in texts if t)),
    }
    token_usage: Mapping[str, Any] = {}
    if result.llm_output:
        token_usage = result.llm_output.get("token_usage") or result.llm_output.get("usage") or {}
    prompt_tokens = token_usage.get("prompt_tokens")
    completion_tokens = token_usage.get("completion_tokens")
    if prompt_tokens is None or completion_tokens is None:
        # The backend does not report tokens: estimate (about 4 characters a token).
        usage["tokens_estimated"] = 1.0
        prompt_tokens = sum(len(p) for p in sent) // 4
        completion_tokens = sum(len(s) for t in texts if t for s in t) // 4
    usage["prompt_tokens"] = float(prompt_tokens)
    usage["completion_tokens"] = float(completion_tokens)
    cached = token_usage.get("cached_prompt_tokens")
    if cached is None:
        details = token_usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if cached:
        usage["cached_prompt_tokens"] = float(cached)
    return usage
