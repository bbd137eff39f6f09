"""Reusing samples within one search: the per-search vote cache.

rStar asks for the same votes again and again (A1/A2 from a node reached twice, the same
rephrased question...). LangChain's LLM cache is global and keyed by the exact call
(including ``n``), and it neither coalesces identical requests in flight nor forgets a
search's entries when it ends, so this module keeps its own small cache; see
:class:`VoteCache`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import replace
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig

from langchain_rstar.sampling.types import SampleCall, SampleOutcome

__all__ = ["VoteCache"]

#: What :meth:`VoteCache._steps` asks its driver for: ``("sample", SampleCall)`` or
#: ``("wait", concurrent.futures.Future)``.
_Request = tuple[str, Any]


class _Sampler(Protocol):
    """What the cache needs of :class:`~langchain_rstar.sampling.sampler.Sampler` (a
    protocol, so that this module does not import the sampler that imports it)."""

    def sample(self, call: SampleCall, config: RunnableConfig | None = None) -> SampleOutcome: ...

    async def asample(
        self, call: SampleCall, config: RunnableConfig | None = None
    ) -> SampleOutcome: ...


class VoteCache:
    """Samples already drawn in a search, reused when the same request comes again.

    An entry is keyed by ``(role, prompt, stop, params)`` and holds the texts sampled for
    that prompt; a request for ``n`` samples is served from an entry holding at least ``n``
    (its first ``n``). The seed is not part of the key: a cached answer is a draw from the
    same distribution, not the draw the request's own seed would have given. Entries live
    per search scope (see :data:`~langchain_rstar.sampling.sampler.SCOPE_KEY`; calls without
    a scope are never cached) and are dropped when the search ends
    (:meth:`~langchain_rstar.sampling.sampler.Sampler.end_scope`) or, at the latest, when
    more than ``max_scopes`` newer searches have used the cache.

    Identical requests in flight at the same time are coalesced: the first one samples,
    the others wait for its texts (and sample themselves only if it failed). Which of
    them samples first depends on timing, so with a seed-honouring backend and identical
    concurrent requests the texts are not bit-for-bit reproducible; set
    ``RStarConfig.vote_cache=False`` where that matters. Hits are counted in usage as
    ``vote_cache_hits`` (prompts served without a model call).
    """

    def __init__(self, max_scopes: int = 64, max_entries: int = 50_000) -> None:
        self.max_scopes = max_scopes
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._scopes: OrderedDict[Any, dict[tuple[Any, ...], Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(call: SampleCall, prompt: str) -> tuple[Any, ...]:
        """Cache key of one prompt of ``call`` (everything but ``n`` and the seed)."""
        params = tuple(sorted((k, repr(v)) for k, v in call.params.items() if v is not None))
        return (call.role, prompt, tuple(call.stop), params)

    def drop(self, scope: Any) -> None:
        """Forget a finished search's samples."""
        with self._lock:
            self._scopes.pop(scope, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._scopes.values())

    def _claim(self, scope: Any, call: SampleCall) -> list[tuple[str, Any]]:
        """Per prompt: ``("hit", texts)``, ``("wait", future)`` or ``("own", future)``."""
        plan: list[tuple[str, Any]] = []
        with self._lock:
            table = self._scopes.get(scope)
            if table is None:
                table = self._scopes[scope] = {}
                while len(self._scopes) > self.max_scopes:
                    self._scopes.popitem(last=False)
            else:
                self._scopes.move_to_end(scope)
            mine: dict[tuple[Any, ...], concurrent.futures.Future[Any]] = {}
            for prompt in call.prompts:
                key = self.key(call, prompt)
                entry = table.get(key)
                if isinstance(entry, list) and len(entry) >= call.n:
                    plan.append(("hit", entry[: call.n]))
                    self.hits += 1
                elif key in mine:  # the same prompt twice in one call: sample it once
                    plan.append(("wait", mine[key]))
                elif isinstance(entry, concurrent.futures.Future) and entry.n >= call.n:  # type: ignore[attr-defined]
                    plan.append(("wait", entry))
                else:
                    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
                    fut.n = call.n  # type: ignore[attr-defined]
                    fut.previous = entry if isinstance(entry, list) else None  # type: ignore[attr-defined]
                    if len(table) < self.max_entries or key in table:
                        table[key] = fut
                    mine[key] = fut
                    plan.append(("own", fut))
                    self.misses += 1
        return plan

    def _settle(
        self, scope: Any, call: SampleCall, plan: list[tuple[str, Any]], texts: list[Any]
    ) -> None:
        """Resolve the futures this caller owns with what it sampled (None: failed)."""
        with self._lock:
            table = self._scopes.get(scope)
            for (kind, fut), prompt, got in zip(plan, call.prompts, texts, strict=True):
                if kind != "own" or fut.done():
                    continue
                key = self.key(call, prompt)
                if table is not None and table.get(key) is fut:
                    if got is not None and len(got) >= call.n:
                        table[key] = list(got)
                    elif (previous := getattr(fut, "previous", None)) is not None:
                        table[key] = previous
                    else:
                        del table[key]
                fut.set_result(None if got is None else list(got))

    @staticmethod
    def _subcall(call: SampleCall, indices: list[int]) -> SampleCall:
        return replace(call, prompts=[call.prompts[i] for i in indices], cache=False)

    @staticmethod
    def _merge(
        call: SampleCall, texts: list[Any], parts: list[tuple[list[int], SampleOutcome]], hits: int
    ) -> SampleOutcome:
        out = SampleOutcome(texts=texts)
        for indices, part in parts:
            for j, i in enumerate(indices):
                out.texts[i] = part.texts[j] if j < len(part.texts) else None
            out.errors.extend(part.errors)
            out.intervals.extend(part.intervals)
            for k, v in part.usage.items():
                out.usage[k] = out.usage.get(k, 0.0) + float(v)
        if hits:
            out.usage["vote_cache_hits"] = out.usage.get("vote_cache_hits", 0.0) + hits
        return out

    @staticmethod
    def _own_indices(plan: list[tuple[str, Any]]) -> list[int]:
        return [i for i, (kind, _) in enumerate(plan) if kind == "own"]

    def _count_waited(self, served: int) -> None:
        if served:
            with self._lock:
                self.hits += served

    def _steps(self, call: SampleCall, scope: Any) -> Generator[_Request, Any, SampleOutcome]:
        """One cached request, sans-IO: yields ``("sample", SampleCall)`` (the model call for
        the prompts this request owns, or a retry of those whose leader failed) and
        ``("wait", future)`` (another request's texts), and returns the merged outcome.
        :meth:`sample` and :meth:`asample` drive it."""
        plan = self._claim(scope, call)
        texts: list[Any] = [v if k == "hit" else None for k, v in plan]
        own = self._own_indices(plan)
        parts: list[tuple[list[int], SampleOutcome]] = []
        try:
            if own:
                got: SampleOutcome = yield ("sample", self._subcall(call, own))
                parts.append((own, got))
                full: list[Any] = [None] * len(plan)
                for j, i in enumerate(own):
                    full[i] = got.texts[j] if j < len(got.texts) else None
                self._settle(scope, call, plan, full)
        finally:
            # what this request still owns (its call raised): waiters retry, the entry goes
            self._settle(scope, call, plan, [None] * len(plan))
        retry: list[int] = []
        waited = 0
        for i, (kind, fut) in enumerate(plan):
            if kind == "wait":
                res = yield ("wait", fut)
                if res is None or len(res) < call.n:
                    retry.append(i)
                else:
                    texts[i] = res[: call.n]
                    waited += 1
        if retry:
            parts.append((retry, (yield ("sample", self._subcall(call, retry)))))
        self._count_waited(waited)
        return self._merge(call, texts, parts, waited + sum(1 for k, _ in plan if k == "hit"))

    def sample(
        self, sampler: _Sampler, call: SampleCall, config: RunnableConfig | None, scope: Any
    ) -> SampleOutcome:
        """:meth:`~langchain_rstar.sampling.sampler.Sampler.sample` through the cache."""
        steps = self._steps(call, scope)
        try:
            request = next(steps)
            while True:
                kind, arg = request
                try:
                    reply = sampler.sample(arg, config) if kind == "sample" else arg.result()
                except BaseException as exc:  # into the steps, so that they release the plan
                    request = steps.throw(exc)
                else:
                    request = steps.send(reply)
        except StopIteration as stop:
            return stop.value

    async def asample(
        self, sampler: _Sampler, call: SampleCall, config: RunnableConfig | None, scope: Any
    ) -> SampleOutcome:
        """:meth:`~langchain_rstar.sampling.sampler.Sampler.asample` through the cache."""
        steps = self._steps(call, scope)
        try:
            request = next(steps)
            while True:
                kind, arg = request
                try:
                    if kind == "sample":
                        reply = await sampler.asample(arg, config)
                    else:
                        reply = await asyncio.wrap_future(arg)
                except BaseException as exc:  # into the steps, so that they release the plan
                    request = steps.throw(exc)
                else:
                    request = steps.send(reply)
        except StopIteration as stop:
            return stop.value
