"""The worker thread that drives vLLM's engine step by step (continuous batching).

Split from ``llms/vllm_engine.py`` so that the engine class there reads as configuration
and LangChain plumbing, and this module as the one scheduling loop. It builds on the
generic :class:`~langchain_rstar.llms._common.CoalescingWorker` (one thread owns the engine;
callers queue jobs from any thread or event loop). Written by hand because ``vllm.LLM``'s
public API only offers a blocking ``generate`` per batch: requests that arrive while a batch
decodes would wait for all of it, which is what makes parallel LangGraph branches slow.
``vllm`` itself is never imported here: the worker receives the ``vllm.LLM`` object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from langchain_rstar.llms._common import BatchJob, CoalescingWorker

__all__ = ["ContinuousBatchingWorker", "supports_continuous"]

logger = logging.getLogger(__name__)


class ContinuousBatchingWorker(CoalescingWorker[Any, Any]):
    """A worker that drives ``vllm.LLM``'s engine step by step (continuous batching).

    Like :class:`CoalescingWorker` it owns the engine in one thread and gathers queued
    requests, but instead of one blocking ``LLM.generate`` per batch it adds requests
    to the running engine and calls ``llm_engine.step()`` itself, so a request that
    arrives while others are decoding joins them at the next step instead of waiting
    for the whole batch to finish. Each caller's future resolves as soon as all of its
    prompts are finished.

    It uses ``LLM._add_completion_requests`` and ``LLM.llm_engine.step`` (what
    ``LLM.generate`` itself runs; private in vLLM 0.32). :func:`supports_continuous`
    checks that they exist.

    Args:
        get_llm: Returns the ``vllm.LLM`` (after ``init`` ran).
        **kwargs: See :class:`CoalescingWorker` (``max_batch_prompts`` is ignored: vLLM's
            scheduler admits requests itself).
    """

    def __init__(self, get_llm: Callable[[], Any], **kwargs: Any) -> None:
        self._get_llm = get_llm
        kwargs.pop("max_batch_prompts", None)
        super().__init__(self._no_batch, **kwargs)

    @staticmethod
    def _no_batch(prompts: list[Any], payloads: list[Any]) -> list[Any]:  # pragma: no cover
        raise RuntimeError("ContinuousBatchingWorker does not run whole batches")

    def _loop(self) -> None:
        self._run_init()
        pending: dict[str, tuple[_JobState, int]] = {}
        stop = False
        while True:
            if pending:
                jobs, stop_now = self._drain_nowait()
            elif stop:
                break
            else:
                jobs, stop_now = self._collect()
            stop = stop or stop_now
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if jobs:
                self._admit(jobs, pending)
            if pending:
                self._step(pending)
        self._fail_leftovers()

    def _admit(self, jobs: list[BatchJob[Any, Any]], pending: dict[str, Any]) -> None:
        self._record(jobs)
        if self._init_error is not None:
            err = RuntimeError("LLM engine failed to start")
            err.__cause__ = self._init_error
            for job in jobs:
                job.future.set_exception(err)
            with self._lock:
                self._stats.errors += 1
            return
        llm = self._get_llm()
        if llm is None:  # closed without waiting
            for job in jobs:
                job.future.set_exception(RuntimeError("the vLLM engine was shut down"))
            return
        for job in jobs:
            state = _JobState(job)
            try:
                ids = llm._add_completion_requests(
                    prompts=job.prompts, params=job.payloads, use_tqdm=False
                )
            except BaseException as exc:  # noqa: BLE001 - forwarded to the caller
                with self._lock:
                    self._stats.errors += 1
                job.future.set_exception(exc)
                continue
            for i, rid in enumerate(ids):
                # vLLM appends "-<8 random chars>" to the external id ("<counter>");
                # RequestOutput.request_id carries the external id.
                pending[str(rid).split("-", 1)[0]] = (state, i)

    def _step(self, pending: dict[str, tuple[_JobState, int]]) -> None:
        llm = self._get_llm()
        if llm is None:  # closed without waiting (Ctrl-C, SIGTERM): fail what is in flight
            _fail_pending(pending, RuntimeError("the vLLM engine was shut down"))
            return
        t0 = time.perf_counter()
        try:
            outs = llm.llm_engine.step()
        except BaseException as exc:  # noqa: BLE001 - the engine is unusable: fail all
            logger.exception("vLLM engine step failed")
            with self._lock:
                self._stats.errors += 1
            _fail_pending(pending, exc)
            return
        finally:
            with self._lock:
                self._stats.steps += 1
                self._stats.busy_s += time.perf_counter() - t0
        for out in outs:
            if not getattr(out, "finished", False):
                continue
            entry = pending.pop(str(out.request_id), None)
            if entry is None:
                continue
            state, i = entry
            state.results[i] = out
            state.remaining -= 1
            if state.remaining == 0 and not state.job.future.done():
                state.job.future.set_result(list(state.results))


def _fail_pending(pending: dict[str, tuple[_JobState, int]], exc: BaseException) -> None:
    """Fail every job that still waits for a request in ``pending`` (each once)."""
    states = {id(st): st for st, _ in pending.values()}
    pending.clear()
    for st in states.values():
        if not st.job.future.done():
            st.job.future.set_exception(exc)


class _JobState:
    """Results collected so far for one job of a :class:`ContinuousBatchingWorker`."""

    __slots__ = ("job", "remaining", "results")

    def __init__(self, job: BatchJob[Any, Any]) -> None:
        self.job = job
        self.results: list[Any] = [None] * len(job.prompts)
        self.remaining = len(job.prompts)


def supports_continuous(llm: Any) -> bool:
    """Whether a ``vllm.LLM`` offers what :class:`ContinuousBatchingWorker` drives."""
    engine = getattr(llm, "llm_engine", None)
    return callable(getattr(llm, "_add_completion_requests", None)) and callable(
        getattr(engine, "step", None)
    )
