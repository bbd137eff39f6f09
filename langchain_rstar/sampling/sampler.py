"""Getting ``n`` samples per prompt out of any LangChain language model.

The search speaks LangChain's own protocol: prompts in, generations out. This module maps
the search's sampling parameters onto what each kind of model accepts, falls back to
repeated prompts for models that ignore ``n``, retries failing calls with backoff, enforces
a per-call timeout, trims degenerate endless repetitions, and accounts tokens and time. A
failure never raises out of :meth:`Sampler.sample`: it comes back as an error record and
``None`` texts, except when the backend looks dead (:class:`BackendDeadError`). That holds
for whatever the backend hands back (issue #19): a result that is not an ``LLMResult`` is a
failed attempt, token counts that are not numbers are estimated, fewer samples than asked
are padded with empty (unanswered) ones and recorded as a ``short_samples`` error, and lone
surrogates in model text become U+FFFD, so everything downstream (JSON, HTML, the eval
records) can encode it.

No call waits forever: without ``call_timeout`` each call gets
:func:`~langchain_rstar.config.default_call_timeout` of its ``max_tokens``, and a call's
``deadline`` (the search's ``max_wall_seconds``) cuts it short; a call cut by the deadline
is recorded as a ``wall_limit`` error, not as a backend failure.

Dead-backend detection is per *search scope*: the chain puts a scope id in the run config
(``configurable[SCOPE_KEY]``), so concurrent searches sharing one sampler keep their own
count of consecutive failed calls, and a successful call anywhere (the backend works)
resets every count. Calls without a scope share one count.

Plain models (neither this package's backends nor ``langchain_openai``) get the sampling
parameters the way each takes them (:mod:`langchain_rstar.sampling.plain`). Where a model
would answer a batch one request after another (every chat model under a sync
``generate``, an ``LLM`` that answers one prompt per ``_call``), the requests of one call
run on a bounded pool of LangChain's context-carrying executor (``asyncio.gather`` under
a semaphore in async): ``n`` votes then cost one request's latency, not ``n``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_executor_for_config

from langchain_rstar.config import default_call_timeout
from langchain_rstar.errors import BackendDeadError, RStarBackendError
from langchain_rstar.llms._session import session_kwargs
from langchain_rstar.llms.base import backend_traits, unwrap
from langchain_rstar.sampling._unobserved import is_quiet, llm_is_quiet
from langchain_rstar.sampling.chat import chat_request, clean_result
from langchain_rstar.sampling.plain import PlainModel, is_claude, runs_prompts_one_by_one
from langchain_rstar.sampling.text import cut_at_stop, trim_repetition, valid_unicode
from langchain_rstar.sampling.types import SampleCall, SampleOutcome
from langchain_rstar.sampling.vote_cache import VoteCache

if TYPE_CHECKING:
    from langchain_rstar.result import RStarResult

# SampleCall, SampleOutcome, VoteCache, BackendDeadError, RStarBackendError and the text
# helpers moved to sampling/types.py, sampling/vote_cache.py, errors.py and
# sampling/text.py; they stay importable from here for one release (0.1.x) only.
__all__ = [
    "SampleCall",
    "SampleOutcome",
    "Sampler",
    "VoteCache",
    "trim_repetition",
    "BackendDeadError",
    "RStarBackendError",
    "SCOPE_KEY",
    "scope_of",
    "scoped_config",
    "backend_dead_errors",
    "raise_if_backend_dead",
]

#: Key in ``RunnableConfig["configurable"]`` naming the search a model call belongs to
#: (LangGraph keeps ``__``-prefixed keys out of checkpoint and trace metadata).
SCOPE_KEY = "__rstar_search"

#: Longest backoff between two attempts, in seconds.
MAX_BACKOFF = 30.0

#: Most failing scopes remembered at once (older ones are forgotten first).
_MAX_SCOPES = 4096

#: Multi-vote requests in a row whose votes were all identical before the sampler warns,
#: for a plain model that takes no temperature / that was sent one (see ``_check_votes``).
_IDENTICAL_STREAK_DEAF = 3
_IDENTICAL_STREAK_SENT = 8

logger = logging.getLogger(__name__)


class Sampler:
    """Samples from one LangChain model on behalf of the search.

    Args:
        llm: a LangChain ``BaseLLM`` or ``BaseChatModel``.
        max_retries: retries of a failing call.
        retry_backoff: first backoff in seconds (doubles each retry, at most
            :data:`MAX_BACKOFF`).
        call_timeout: seconds before one attempt counts as failed. None: derived per call,
            :func:`~langchain_rstar.config.default_call_timeout` of its ``max_tokens``, or
            the HTTP client's own ``request_timeout`` plus 5 s where that is longer (so the
            sampler never gives up on a request its client is still waiting for);
            ``float("inf")``: no limit.
        dead_after: consecutive failed calls (each after its retries) within one search
            scope, with no successful call anywhere in between, before the backend counts
            as dead and :class:`BackendDeadError` is raised. Once a scope is dead, each
            further call gets one attempt (no retries): a success revives the scope.
        trim_repetitions: cut degenerate endless repetitions (see :func:`trim_repetition`);
            counted in usage as ``repetitions_trimmed``.
        vote_cache: keep a per-search :class:`VoteCache` for calls that allow it
            (``SampleCall.cache``).
        max_concurrency: most requests of one call in flight at once where the model
            would answer them one after another (see :meth:`_fan_out`).

    A plain model (neither this package's backends nor ``langchain_openai``) gets the
    sampling parameters the way it takes them (:mod:`~langchain_rstar.sampling.plain`);
    when it cannot take a temperature, or ignores it, and its votes come back identical,
    the sampler logs a warning and returns it once per search scope as an error record
    with ``kind="degenerate_votes"`` and ``warning=True`` (no call failed).
    """

    def __init__(
        self,
        llm: BaseLanguageModel,
        *,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        call_timeout: float | None = None,
        dead_after: int = 3,
        trim_repetitions: bool = True,
        vote_cache: bool = True,
        max_concurrency: int = 8,
    ) -> None:
        if dead_after < 1:
            raise ValueError(f"dead_after must be at least 1, got {dead_after}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.llm = llm
        self.mode = backend_traits(llm).mode
        self.max_concurrency = max_concurrency
        # plain models: how the sampling parameters reach them (see sampling/plain.py)
        self._plain = PlainModel(llm) if self.mode in ("chat", "generic") else None
        # Claude behind an OpenAI-compatible client takes temperature or top_p, not both
        self._send_top_p = not (self.mode in ("openai", "openai_chat") and is_claude(unwrap(llm)))
        if self._plain is not None and not self._plain.route.takes("temperature"):
            logger.warning(
                "%s takes no temperature (no `temperature` keyword of its _generate, no "
                "`temperature` field): the search's votes are drawn at the temperature it "
                "was built with",
                type(llm).__name__,
            )
        # ``_generate`` / ``_agenerate`` take ``run_manager``: they can be called directly
        # when nothing observes the search (LangChain checks the same before passing it).
        self._direct_ok = isinstance(llm, BaseLLM) and all(
            "run_manager" in inspect.signature(fn).parameters
            for fn in (llm._generate, llm._agenerate)
        )
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.call_timeout = call_timeout
        self._client_timeout = _client_timeout(llm)
        self.dead_after = dead_after
        self.trim_repetitions = trim_repetitions
        self.vote_cache: VoteCache | None = VoteCache() if vote_cache else None
        self._lock = threading.Lock()
        self._successes = 0
        # scope -> [consecutive failed calls, value of _successes when the streak began]
        self._streaks: OrderedDict[Any, list[int]] = OrderedDict()
        # scope -> [multi-vote requests in a row with identical votes, warned (0/1)]
        self._identical: OrderedDict[Any, list[int]] = OrderedDict()

    # -- dead-backend bookkeeping ----------------------------------------------------------
    def consecutive_failures(self, scope: Any = None) -> int:
        """Failed calls in a row in ``scope`` since the last successful call anywhere."""
        with self._lock:
            streak = self._streaks.get(scope)
            if streak is None or streak[1] != self._successes:
                return 0
            return streak[0]

    def is_dead(self, scope: Any = None) -> bool:
        """Whether ``scope`` has reached ``dead_after`` consecutive failed calls."""
        return self.consecutive_failures(scope) >= self.dead_after

    def end_scope(self, scope: Any) -> None:
        """Forget a finished search's failure count (and its cached samples)."""
        with self._lock:
            self._streaks.pop(scope, None)
            self._identical.pop(scope, None)
        if self.vote_cache is not None:
            self.vote_cache.drop(scope)

    def _record_success(self, scope: Any) -> None:
        with self._lock:
            self._successes += 1
            self._streaks.pop(scope, None)

    def _record_failure(self, scope: Any) -> int:
        with self._lock:
            streak = self._streaks.get(scope)
            if streak is None or streak[1] != self._successes:
                streak = [0, self._successes]
                self._streaks[scope] = streak
                self._streaks.move_to_end(scope)
                while len(self._streaks) > _MAX_SCOPES:
                    self._streaks.popitem(last=False)
            streak[0] += 1
            return streak[0]

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
                if key == "top_p" and not self._send_top_p:
                    continue
                if params.get(key) is not None:
                    out[key] = params[key]
            extra = {
                k: params[k]
                for k in ("top_k", "min_p", "repetition_penalty")
                if params.get(k) is not None
            }
            if extra:
                out["extra_body"] = extra
            # No per-request seed: a vLLM CPU server (vLLM 0.32) kills its engine when a
            # seeded request is split by chunked prefill; start the server with --seed.
            return out
        return {}

    def _expected(self) -> bool:
        """Whether the backend returns ``n`` samples per prompt by itself."""
        if self._plain is not None:
            return self._plain.route.native_n
        return self.mode in ("native", "openai", "openai_chat")

    def _target(self, call: SampleCall, n: int) -> tuple[BaseLanguageModel, dict[str, Any]]:
        """The model to call and its keywords (a plain model may be a field-set copy)."""
        if self._plain is not None:
            return self._plain.request(call.params, n)
        return self.llm, self._kwargs(call, n)

    def _fan_out(
        self, llm: BaseLanguageModel, items: list[Any], one: Any, config: RunnableConfig | None
    ) -> LLMResult:
        """``one(items)``, or, where ``llm`` would answer the items one after another,
        ``one([item])`` for each item on a bounded thread pool (LangChain's executor, which
        carries the run context), merged back in order."""
        if (
            len(items) < 2
            or self.mode == "native"
            or not runs_prompts_one_by_one(llm, asynchronous=False)
        ):
            return one(items)
        pool_config: RunnableConfig = {**(config or {}), "max_concurrency": self.max_concurrency}
        with get_executor_for_config(pool_config) as pool:
            parts = list(pool.map(lambda item: one([item]), items))
        return _merge_results(parts)

    async def _afan_out(self, llm: BaseLanguageModel, items: list[Any], one: Any) -> LLMResult:
        """Async :meth:`_fan_out`: ``asyncio.gather`` under a semaphore."""
        if (
            len(items) < 2
            or self.mode == "native"
            or not runs_prompts_one_by_one(llm, asynchronous=True)
        ):
            return await one(items)
        gate = asyncio.Semaphore(self.max_concurrency)

        async def bounded(item: Any) -> LLMResult:
            async with gate:
                return await one([item])

        return _merge_results(list(await asyncio.gather(*(bounded(i) for i in items))))

    def _direct(self, config: RunnableConfig | None) -> bool:
        """Whether to skip ``generate``'s callback and run set-up (see :mod:`._quiet`)."""
        return self._direct_ok and is_quiet(config) and llm_is_quiet(self.llm)

    def _invoke_llm(
        self, prompts: list[str], call: SampleCall, n: int, config: RunnableConfig | None
    ) -> LLMResult:
        llm, kwargs = self._target(call, n)
        kwargs.update(session_kwargs(self.mode, scope_of(config)))  # scale-out: session affinity
        stop = call.stop or None
        if self._direct(config):
            assert isinstance(llm, BaseLLM)
            return self._fan_out(
                llm,
                prompts,
                lambda ps: llm._generate(ps, stop=stop, run_manager=None, **kwargs),
                config,
            )
        common: dict[str, Any] = {
            "stop": stop,
            "callbacks": (config or {}).get("callbacks"),
            "run_name": call.run_name,
            "metadata": call.metadata or None,
        }
        if isinstance(llm, BaseChatModel):  # chat rendering: see sampling/chat.py
            msgs, common, kwargs = chat_request(llm, prompts, common, kwargs)
            result = self._fan_out(
                llm, msgs, lambda ms: llm.generate(ms, **common, **kwargs), config
            )
            return clean_result(result, prompts)
        assert isinstance(llm, BaseLLM)
        return self._fan_out(llm, prompts, lambda ps: llm.generate(ps, **common, **kwargs), config)

    async def _ainvoke_llm(
        self, prompts: list[str], call: SampleCall, n: int, config: RunnableConfig | None
    ) -> LLMResult:
        llm, kwargs = self._target(call, n)
        kwargs.update(session_kwargs(self.mode, scope_of(config)))  # scale-out: session affinity
        stop = call.stop or None
        if self._direct(config):
            assert isinstance(llm, BaseLLM)
            return await self._afan_out(
                llm, prompts, lambda ps: llm._agenerate(ps, stop=stop, run_manager=None, **kwargs)
            )
        common: dict[str, Any] = {
            "stop": stop,
            "callbacks": (config or {}).get("callbacks"),
            "run_name": call.run_name,
            "metadata": call.metadata or None,
        }
        if isinstance(llm, BaseChatModel):  # chat rendering: see sampling/chat.py
            msgs, common, kwargs = chat_request(llm, prompts, common, kwargs)
            return clean_result(await llm.agenerate(msgs, **common, **kwargs), prompts)
        assert isinstance(llm, BaseLLM)
        return await self._afan_out(llm, prompts, lambda ps: llm.agenerate(ps, **common, **kwargs))

    def _plan(self, call: SampleCall) -> tuple[list[str], int]:
        """Prompts to send and ``n`` to ask for: repeated prompts where ``n`` is ignored."""
        if self._expected():
            return list(call.prompts), call.n
        return [p for p in call.prompts for _ in range(call.n)], 1

    def _clean(self, text: Any, stop: Sequence[str], trimmed: list[int]) -> str:
        out = cut_at_stop(valid_unicode(text if isinstance(text, str) else str(text or "")), stop)
        if self.trim_repetitions:
            out, cut = trim_repetition(out)
            if cut:
                trimmed[0] += 1
        return out

    def _collect(
        self, call: SampleCall, result: Any, sent: list[str]
    ) -> tuple[list[list[str] | None], dict[str, float], list[dict[str, Any]]]:
        """Texts per prompt, usage and ``short_samples`` errors of a reply.

        Raises:
            TypeError: the reply is not an ``LLMResult`` (a failed attempt for the caller).
        """
        if not isinstance(result, LLMResult) or not isinstance(result.generations, list):
            raise TypeError(f"the model returned {type(result).__name__}, not an LLMResult")
        gens = result.generations
        trimmed = [0]
        per_prompt: list[list[str] | None] = []
        if self._expected():
            for i in range(len(call.prompts)):
                texts = (
                    [self._clean(g.text, call.stop, trimmed) for g in gens[i]]
                    if i < len(gens)
                    else []
                )
                per_prompt.append(texts)
        else:
            flat = [self._clean(g[0].text, call.stop, trimmed) if g else "" for g in gens]
            for i in range(len(call.prompts)):
                per_prompt.append(flat[i * call.n : (i + 1) * call.n])
        usage = _usage_of(result, sent, per_prompt)
        if trimmed[0]:
            usage["repetitions_trimmed"] = float(trimmed[0])
        short: list[dict[str, Any]] = []
        for i, texts in enumerate(per_prompt):
            if texts is not None and len(texts) < call.n:
                # A backend that ignores n: the missing samples count as unanswered, so a
                # vote's confidence stays a share of what was asked (issue #19.6).
                short.append(self._short_error(call, i, len(texts)))
                texts.extend([""] * (call.n - len(texts)))
        return per_prompt, usage, short

    def _short_error(self, call: SampleCall, index: int, got: int) -> dict[str, Any]:
        return {
            "kind": "short_samples",
            "role": call.role,
            "run_name": call.run_name,
            "error": (
                f"the backend returned {got} of {call.n} samples asked for prompt {index}; "
                "the missing ones count as unanswered"
            ),
            "asked": call.n,
            "got": got,
            "prompt_index": index,
            "recovered": False,
            "prompts": len(call.prompts),
            "metadata": dict(call.metadata),
        }

    def _wall_error(self, call: SampleCall, attempt: int, in_flight: bool) -> dict[str, Any]:
        what = "abandoned in flight" if in_flight else "not sent"
        return {
            "kind": "wall_limit",
            "role": call.role,
            "run_name": call.run_name,
            "error": f"the search's max_wall_seconds ran out: the model call was {what}",
            "attempt": attempt,
            "recovered": False,
            "prompts": len(call.prompts),
            "metadata": dict(call.metadata),
        }

    def _timeout_for(self, call: SampleCall) -> float | None:
        """Seconds this attempt may take: ``call_timeout`` (or the default derived from the
        call's ``max_tokens``), cut to what is left before ``call.deadline``; None: no limit."""
        if self.call_timeout is None:
            tokens = call.params.get("max_tokens")
            limit = default_call_timeout(tokens if isinstance(tokens, int) else None)
            if self._client_timeout is not None:
                limit = max(limit, self._client_timeout + _CLIENT_TIMEOUT_MARGIN_S)
        else:
            limit = float(self.call_timeout)
        if call.deadline is not None:
            limit = min(limit, max(call.deadline - time.time(), 0.0))
        return None if math.isinf(limit) else limit

    def _past_deadline(self, call: SampleCall) -> bool:
        return call.deadline is not None and time.time() >= call.deadline

    def _pause(self, call: SampleCall, attempt: int) -> float:
        """Backoff before the next attempt, never past the call's deadline."""
        wait = self._backoff(attempt)
        if call.deadline is not None:
            wait = min(wait, max(call.deadline - time.time(), 0.0))
        return wait

    def _cut(self, call: SampleCall, errors: list[dict[str, Any]], calls: int) -> SampleOutcome:
        """The outcome of a call the deadline stopped: no texts, no backend failure."""
        return SampleOutcome(
            texts=[None] * len(call.prompts), errors=errors, usage={"llm_calls": float(calls)}
        )

    def _error(self, call: SampleCall, exc: BaseException, attempt: int) -> dict[str, Any]:
        return {
            "kind": "llm_call",
            "role": call.role,
            "run_name": call.run_name,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "attempt": attempt,
            "recovered": False,
            "prompts": len(call.prompts),
            "metadata": dict(call.metadata),
        }

    def _attempts(self, scope: Any) -> int:
        # A scope already counted dead gets a single probe per call, no retries.
        return 1 if self.is_dead(scope) else self.max_retries + 1

    def _backoff(self, attempt: int) -> float:
        return min(self.retry_backoff * (2**attempt), MAX_BACKOFF)

    def _succeeded(
        self,
        call: SampleCall,
        scope: Any,
        collected: tuple[list[list[str] | None], dict[str, float], list[dict[str, Any]]],
        errors: list[dict[str, Any]],
        start: float,
        end: float,
    ) -> SampleOutcome:
        self._record_success(scope)
        for err in errors:
            err["recovered"] = True
        texts, usage, short = collected
        errors.extend(short)
        usage["llm_calls"] = usage.get("llm_calls", 0.0) + len(errors)
        usage["model_seconds"] = end - start
        warning = self._check_votes(call, scope, texts)
        if warning is not None:
            errors.append(warning)
        return SampleOutcome(texts=texts, errors=errors, usage=usage, intervals=[[start, end]])

    def _check_votes(
        self, call: SampleCall, scope: Any, texts: list[list[str] | None]
    ) -> dict[str, Any] | None:
        """A warning record when a plain model's votes keep coming back identical.

        Counts, per search scope, requests in a row where every prompt asked for several
        votes at a temperature above 0 got identical votes; a request with differing
        votes resets the count. At :data:`_IDENTICAL_STREAK_DEAF` (the model takes no
        temperature) or :data:`_IDENTICAL_STREAK_SENT` (it was sent one) the warning is
        logged and returned, once per scope.
        """
        temperature = call.params.get("temperature")
        if self._plain is None or call.n < 2 or not temperature or temperature <= 0:
            return None
        votes = [t for t in texts if t is not None and len(t) >= 2]
        if not votes:
            return None
        identical = all(len(set(t)) == 1 for t in votes)
        deaf = not self._plain.route.takes("temperature")
        need = _IDENTICAL_STREAK_DEAF if deaf else _IDENTICAL_STREAK_SENT
        with self._lock:
            state = self._identical.get(scope)
            if state is None:
                state = self._identical[scope] = [0, 0]
                while len(self._identical) > _MAX_SCOPES:
                    self._identical.popitem(last=False)
            if state[1]:
                return None
            state[0] = state[0] + 1 if identical else 0
            if state[0] < need:
                return None
            state[1] = 1
        name = type(self.llm).__name__
        if deaf:
            why = (
                f"{name} takes no temperature (no `temperature` keyword of its _generate, no "
                "`temperature` field), so every vote is drawn at the temperature it was built "
                "with; build it with a temperature above 0 (e.g. 0.8) or use a model that "
                "takes one"
            )
        else:
            why = (
                f"the temperature was sent ({self._plain.route.how}) but {name} seems to ignore it"
            )
        message = (
            f"degenerate votes: the {call.role} model returned {call.n} identical votes per "
            f"prompt in {state[0]} requests in a row at temperature {temperature}: {why}. "
            "Identical votes are not independent samples: the search cannot tell answers apart"
        )
        logger.warning(message)
        return {
            "kind": "degenerate_votes",
            "warning": True,
            "role": call.role,
            "run_name": call.run_name,
            "error": message,
            "attempt": 0,
            "recovered": True,
            "prompts": len(call.prompts),
            "metadata": dict(call.metadata),
        }

    def _failed(self, call: SampleCall, scope: Any, errors: list[dict[str, Any]]) -> SampleOutcome:
        streak = self._record_failure(scope)
        if streak >= self.dead_after:
            raise BackendDeadError(
                f"the {call.role} model failed {streak} calls in a row "
                f"(each after up to {self.max_retries} retries); "
                f"last error: {errors[-1]['error'] if errors else 'unknown'}",
                errors,
            )
        return SampleOutcome(
            texts=[None] * len(call.prompts),
            errors=errors,
            usage={"llm_calls": float(len(errors)), "failed_calls": 1.0},
        )

    # -- public API --------------------------------------------------------------------
    def sample(self, call: SampleCall, config: RunnableConfig | None = None) -> SampleOutcome:
        """Sample synchronously; failures come back as error records.

        Raises:
            BackendDeadError: when this call makes ``dead_after`` failed calls in a row in
                its search scope.
        """
        if not call.prompts:
            return SampleOutcome(texts=[])
        scope = scope_of(config)
        if call.cache and self.vote_cache is not None and scope is not None:
            return self.vote_cache.sample(self, call, config, scope)
        sent, n = self._plan(call)
        errors: list[dict[str, Any]] = []
        attempts = self._attempts(scope)
        for attempt in range(attempts):
            if self._past_deadline(call):
                return self._cut(call, [*errors, self._wall_error(call, attempt, False)], attempt)
            timeout = self._timeout_for(call)
            start = time.time()
            try:
                if timeout is None:
                    result = self._invoke_llm(sent, call, n, config)
                else:
                    result = _run_with_timeout(
                        lambda: self._invoke_llm(sent, call, n, config), timeout
                    )
                collected = self._collect(call, result, sent)
            except BackendDeadError:
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure is recorded
                if isinstance(exc, TimeoutError) and self._past_deadline(call):
                    cut = self._wall_error(call, attempt, True)
                    return self._cut(call, [*errors, cut], attempt + 1)
                errors.append(self._error(call, exc, attempt))
                if attempt + 1 < attempts:
                    time.sleep(self._pause(call, attempt))
                continue
            return self._succeeded(call, scope, collected, errors, start, time.time())
        return self._failed(call, scope, errors)

    async def asample(
        self, call: SampleCall, config: RunnableConfig | None = None
    ) -> SampleOutcome:
        """Sample asynchronously; failures come back as error records (see :meth:`sample`)."""
        if not call.prompts:
            return SampleOutcome(texts=[])
        scope = scope_of(config)
        if call.cache and self.vote_cache is not None and scope is not None:
            return await self.vote_cache.asample(self, call, config, scope)
        sent, n = self._plan(call)
        errors: list[dict[str, Any]] = []
        attempts = self._attempts(scope)
        for attempt in range(attempts):
            if self._past_deadline(call):
                return self._cut(call, [*errors, self._wall_error(call, attempt, False)], attempt)
            timeout = self._timeout_for(call)
            start = time.time()
            try:
                coro = self._ainvoke_llm(sent, call, n, config)
                if timeout is None:
                    result = await coro
                else:
                    result = await _await_with_timeout(coro, timeout)
                collected = self._collect(call, result, sent)
            except BackendDeadError:
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure is recorded
                if isinstance(exc, TimeoutError) and self._past_deadline(call):
                    cut = self._wall_error(call, attempt, True)
                    return self._cut(call, [*errors, cut], attempt + 1)
                errors.append(self._error(call, exc, attempt))
                if attempt + 1 < attempts:
                    await asyncio.sleep(self._pause(call, attempt))
                continue
            return self._succeeded(call, scope, collected, errors, start, time.time())
        return self._failed(call, scope, errors)


def scope_of(config: Mapping[str, Any] | None) -> Any:
    """The search scope a run config belongs to (None: the shared default scope)."""
    configurable = (config or {}).get("configurable") or {}
    return configurable.get(SCOPE_KEY)


def scoped_config(config: RunnableConfig) -> tuple[RunnableConfig, str]:
    """``config`` with a fresh search scope (see :data:`SCOPE_KEY`), and the scope id."""
    scope = uuid.uuid4().hex
    configurable = {**(config.get("configurable") or {}), SCOPE_KEY: scope}
    return {**config, "configurable": configurable}, scope


def backend_dead_errors(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The error records saying the backend died (generator or discriminator)."""
    return [e for e in errors if e.get("fatal") or e.get("kind") == "backend_dead"]


def raise_if_backend_dead(result: RStarResult) -> RStarResult:
    """Return ``result``, or raise :class:`RStarBackendError` carrying it when the backend
    died during the search (or its verification)."""
    dead = backend_dead_errors(result.errors)
    if dead:
        first = dead[0]
        raise RStarBackendError(
            f"the model backend stopped answering during the search "
            f"(at node {first.get('node_id')!r}, action {first.get('action')!r}): "
            f"{first.get('error')}; the partial search ({len(result.tree)} nodes, "
            f"{len(result.errors)} errors) is on the exception's .partial",
            partial=result,
        )
    return result


def _run_with_timeout(fn: Any, timeout: float) -> Any:
    """Run ``fn`` in a fresh daemon thread; give up waiting after ``timeout`` seconds.

    A thread per call (not a bounded pool) so that queueing behind other slow calls never
    counts against a call's timeout; a call that hangs past its timeout is abandoned (its
    thread ends whenever the client library gives up).
    """
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = ctx.run(fn)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="rstar-call", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"model call took longer than {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _await_with_timeout(coro: Any, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError as exc:
        raise TimeoutError(f"model call took longer than {timeout:g} s") from exc


#: Seconds the sampler waits past an HTTP client's own timeout (see :func:`_client_timeout`).
_CLIENT_TIMEOUT_MARGIN_S = 5.0


def _client_timeout(llm: Any) -> float | None:
    """The finite per-request timeout of the model's HTTP client (``langchain_openai``'s
    ``request_timeout``, through wrappers), or None."""
    for _ in range(8):
        value = getattr(llm, "request_timeout", None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if 0 < value < math.inf else None
        wrapped = getattr(llm, "rstar_wrapped_llm", None)
        if wrapped is None or wrapped is llm:
            return None
        llm = wrapped
    return None


def _count(value: Any) -> float | None:
    """A token count as a float, or None when ``value`` is not a finite count >= 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _token_usage(result: LLMResult) -> Mapping[str, Any]:
    """The token usage a result reports, or {} when it reports none (or not a mapping)."""
    output = result.llm_output
    usage = (
        (output.get("token_usage") or output.get("usage")) if isinstance(output, Mapping) else None
    )
    return usage if isinstance(usage, Mapping) else {}


def _merge_results(parts: Sequence[LLMResult]) -> LLMResult:
    """One ``LLMResult`` of several (generations in order; token counts summed where every
    part reports them, else left out so that they are estimated)."""
    generations = [g for part in parts for g in part.generations]
    totals: dict[str, float] = {}
    complete = True
    for part in parts:
        usage = _token_usage(part)
        counts = {k: _count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens")}
        if None in counts.values():
            complete = False
            break
        counts["total_tokens"] = _count(usage.get("total_tokens"))
        for key, value in counts.items():
            if value is not None:
                totals[key] = totals.get(key, 0) + value
    first = parts[0].llm_output if parts else None
    llm_output = dict(first) if isinstance(first, Mapping) else {}
    llm_output.pop("usage", None)
    if complete and parts:
        llm_output["token_usage"] = totals
    else:
        llm_output.pop("token_usage", None)
    runs = [r for part in parts for r in (part.run or [])]
    return LLMResult(generations=generations, llm_output=llm_output, run=runs or None)


def _usage_of(
    result: LLMResult, sent: list[str], texts: list[list[str] | None]
) -> dict[str, float]:
    usage: dict[str, float] = {
        "llm_calls": 1.0,
        "batches": 1.0,
        "prompts": float(len(sent)),
        "samples": float(sum(len(t) for t in texts if t)),
    }
    # Backends report tokens in many shapes (and some report nonsense): anything that is
    # not a count is estimated rather than trusted or allowed to raise (issue #19.7).
    token_usage = _token_usage(result)
    prompt_tokens = _count(token_usage.get("prompt_tokens"))
    completion_tokens = _count(token_usage.get("completion_tokens"))
    if prompt_tokens is None or completion_tokens is None:
        # The backend does not report tokens: estimate (about 4 characters a token).
        usage["tokens_estimated"] = 1.0
        prompt_tokens = float(sum(len(p) for p in sent) // 4)
        completion_tokens = float(sum(len(s) for t in texts if t for s in t) // 4)
    usage["prompt_tokens"] = prompt_tokens
    usage["completion_tokens"] = completion_tokens
    cached = _count(token_usage.get("cached_prompt_tokens"))
    if cached is None:
        details = token_usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    if cached:
        usage["cached_prompt_tokens"] = cached
    return usage
