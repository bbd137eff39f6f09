"""Helpers shared by the local LLM backends (no heavy imports here).

* stop-string handling (:func:`split_at_stop`, :func:`merge_stop`);
* sampling keyword normalisation (:func:`sampling_options`);
* token-usage bookkeeping (:func:`make_llm_output`);
* :class:`CoalescingWorker`: a single worker thread that owns an engine and runs every
  request queued meanwhile (from any thread or event loop) as one batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "SAMPLING_KWARGS",
    "BatchJob",
    "CoalescingWorker",
    "WorkerStats",
    "make_llm_output",
    "merge_stop",
    "sampling_options",
    "split_at_stop",
]

logger = logging.getLogger(__name__)

SAMPLING_KWARGS: frozenset[str] = frozenset(
    {"n", "temperature", "top_k", "top_p", "min_p", "max_tokens", "seed"}
)
"""Per-call sampling keywords every backend accepts (``accepts_sampling_kwargs``)."""

P = TypeVar("P")  # per-prompt request payload (e.g. a SamplingParams)
R = TypeVar("R")  # per-prompt engine result (e.g. a RequestOutput)


# --------------------------------------------------------------------------- stop strings


def merge_stop(*stops: str | Sequence[str] | None) -> list[str]:
    """Merge stop lists (a bare string counts as one stop), dropping empties/duplicates.

    Args:
        *stops: Stop strings or lists of them (``None`` ignored).

    Returns:
        The merged list, in first-seen order.
    """
    out: list[str] = []
    for s in stops:
        if s is None:
            continue
        items = [s] if isinstance(s, str) else list(s)
        for item in items:
            if item and item not in out:
                out.append(item)
    return out


def split_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, str | None]:
    """Cut ``text`` at the earliest occurrence of any stop string (stop excluded), and say
    which stop matched (the sampler's :func:`~langchain_rstar.sampling.text.cut_at_stop`
    returns the text only).

    Args:
        text: Generated text.
        stop: Stop strings.

    Returns:
        ``(truncated_text, matched_stop)``; ``matched_stop`` is None when no stop occurs.
        When two stops start at the same position the longer one is reported.
    """
    best: int | None = None
    hit: str | None = None
    for s in stop or ():
        if not s:
            continue
        i = text.find(s)
        if i < 0:
            continue
        if best is None or i < best or (i == best and hit is not None and len(s) > len(hit)):
            best, hit = i, s
    if best is None:
        return text, None
    return text[:best], hit


# --------------------------------------------------------------------------- sampling


def sampling_options(
    defaults: Mapping[str, Any],
    kwargs: Mapping[str, Any],
    *,
    extra_allowed: Iterable[str] = (),
) -> dict[str, Any]:
    """Overlay per-call sampling kwargs on the instance defaults and validate them.

    ``None`` values in ``kwargs`` mean "use the default". ``top_k`` values ``<= 0`` and
    ``-1`` both mean "disabled" and are normalised to ``0``.

    Args:
        defaults: The backend's default sampling fields.
        kwargs: Per-call keyword arguments.
        extra_allowed: Other keywords the backend accepts (passed through unchanged).

    Returns:
        The merged options.

    Raises:
        TypeError: For an unknown keyword.
        ValueError: For an invalid value (``n < 1``, negative temperature, ...).
    """
    allowed = set(SAMPLING_KWARGS) | set(extra_allowed) | set(defaults)
    unknown = sorted(k for k in kwargs if k not in allowed)
    if unknown:
        raise TypeError(f"unsupported generation keyword(s): {', '.join(unknown)}")
    opts = dict(defaults)
    opts.update({k: v for k, v in kwargs.items() if v is not None})
    n = 1 if opts.get("n") is None else int(opts["n"])
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    opts["n"] = n
    raw_temp = opts.get("temperature")
    temp = 1.0 if raw_temp is None else float(raw_temp)
    if temp < 0:
        raise ValueError(f"temperature must be >= 0, got {temp}")
    opts["temperature"] = temp
    top_k = opts.get("top_k")
    opts["top_k"] = 0 if top_k is None or int(top_k) <= 0 else int(top_k)
    top_p = opts.get("top_p")
    opts["top_p"] = 1.0 if top_p is None else float(top_p)
    if not 0.0 < opts["top_p"] <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {opts['top_p']}")
    min_p = opts.get("min_p")
    opts["min_p"] = 0.0 if min_p is None else float(min_p)
    if not 0.0 <= opts["min_p"] <= 1.0:
        raise ValueError(f"min_p must be in [0, 1], got {opts['min_p']}")
    if opts.get("max_tokens") is not None:
        opts["max_tokens"] = int(opts["max_tokens"])
        if opts["max_tokens"] < 1:
            raise ValueError(f"max_tokens must be >= 1, got {opts['max_tokens']}")
    if opts.get("seed") is not None:
        opts["seed"] = int(opts["seed"])
    return opts


def make_llm_output(
    *,
    model_name: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_prompt_tokens: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the ``llm_output`` dict of an ``LLMResult``.

    Args:
        model_name: Model name or path.
        prompt_tokens: Prompt tokens, each prompt counted once (not once per sample).
        completion_tokens: Generated tokens over all samples.
        cached_prompt_tokens: Prompt tokens served from the prefix cache, if known.
        **extra: Other top-level entries.

    Returns:
        ``{"token_usage": {...}, "model_name": ..., **extra}``.
    """
    usage: dict[str, int] = {
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "total_tokens": int(prompt_tokens) + int(completion_tokens),
    }
    if cached_prompt_tokens is not None:
        usage["cached_prompt_tokens"] = int(cached_prompt_tokens)
    return {"token_usage": usage, "model_name": model_name, **extra}


# --------------------------------------------------------------------------- coalescing


@dataclass
class BatchJob(Generic[P, R]):
    """One caller's request: its prompts, one payload per prompt, and a future."""

    prompts: list[Any]
    payloads: list[P]
    future: Future[list[R]] = field(default_factory=Future)


@dataclass
class WorkerStats:
    """Counters of a :class:`CoalescingWorker` (a copy is returned by ``stats``).

    ``batches`` counts engine calls (or, for a continuous-batching worker, admission
    rounds: groups of requests added to the running engine together); ``steps`` counts
    engine steps where the worker drives them itself.
    """

    batches: int = 0
    requests: int = 0
    prompts: int = 0
    max_batch_requests: int = 0
    max_batch_prompts: int = 0
    errors: int = 0
    busy_s: float = 0.0
    steps: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """Return the counters as a plain dict."""
        return dict(self.__dict__)


_STOP = object()


class CoalescingWorker(Generic[P, R]):
    """A single thread that runs all queued requests as one engine batch.

    Callers (any thread; asyncio tasks via :func:`asyncio.wrap_future`) ``submit`` a job
    and get a :class:`~concurrent.futures.Future`. The worker blocks for the first job,
    then keeps collecting jobs for up to ``max_wait_s`` (ending early once nothing new has
    arrived for ``idle_wait_s``), calls ``run_batch(all_prompts, all_payloads)`` once, and
    splits the results back to each job's future. The engine is only ever touched from
    the worker thread (``init`` also runs there, before the first batch).

    Args:
        run_batch: ``(prompts, payloads) -> results`` with one result per prompt.
        init: Optional callable run once in the worker thread before the first batch;
            if it raises, every pending and future job fails with that error.
        max_wait_s: Longest time to keep collecting after the first job arrived.
        idle_wait_s: Stop collecting once the queue stayed empty this long.
        max_batch_prompts: Upper bound on prompts per batch (None: unbounded). A single
            job is never split.
        name: Thread name.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Any], list[P]], Sequence[R]],
        *,
        init: Callable[[], None] | None = None,
        max_wait_s: float = 0.01,
        idle_wait_s: float = 0.002,
        max_batch_prompts: int | None = None,
        name: str = "rstar-llm-worker",
    ) -> None:
        self._run_batch = run_batch
        self._init = init
        self._init_error: BaseException | None = None
        self._ready = threading.Event()
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.idle_wait_s = max(0.0, float(idle_wait_s))
        self.max_batch_prompts = max_batch_prompts
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._stats = WorkerStats()
        self._closed = False
        self._carry: BatchJob[P, R] | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- public -----------------------------------------------------------------------

    def submit(self, prompts: Sequence[Any], payloads: Sequence[P]) -> Future[list[R]]:
        """Queue a request; the future resolves to one result per prompt.

        Raises:
            RuntimeError: If the worker was closed.
            ValueError: If ``prompts`` and ``payloads`` differ in length.
        """
        if len(prompts) != len(payloads):
            raise ValueError("one payload per prompt is required")
        job: BatchJob[P, R] = BatchJob(list(prompts), list(payloads))
        if not job.prompts:
            job.future.set_result([])
            return job.future
        with self._lock:
            if self._closed:
                raise RuntimeError("the LLM worker is closed")
            self._queue.put(job)
        return job.future

    @property
    def stats(self) -> dict[str, float | int]:
        """A snapshot of the counters (batches, requests, prompts, ...)."""
        with self._lock:
            return self._stats.as_dict()

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._stats = WorkerStats()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until ``init`` has run (successfully or not); False on timeout."""
        return self._ready.wait(timeout)

    @property
    def init_error(self) -> BaseException | None:
        """The exception raised by ``init``, if any."""
        return self._init_error

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting jobs, finish the queued ones, and join the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- worker -----------------------------------------------------------------------

    def _collect(self) -> tuple[list[BatchJob[P, R]], bool]:
        """Block for one job, then gather more; returns (jobs, stop_requested)."""
        if self._carry is not None:
            first: Any = self._carry
            self._carry = None
        else:
            first = self._queue.get()
        if first is _STOP:
            return [], True
        jobs = [first]
        n_prompts = len(first.prompts)
        deadline = time.monotonic() + self.max_wait_s
        stop = False
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._queue.get(timeout=min(remaining, self.idle_wait_s or remaining))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            cap = self.max_batch_prompts
            if cap is not None and n_prompts + len(item.prompts) > cap:
                self._carry = item
                break
            jobs.append(item)
            n_prompts += len(item.prompts)
        return jobs, stop

    def _drain_nowait(self) -> tuple[list[BatchJob[P, R]], bool]:
        """Take whatever is queued right now, without waiting."""
        jobs: list[BatchJob[P, R]] = []
        if self._carry is not None:
            jobs.append(self._carry)
            self._carry = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False
            if item is _STOP:
                return jobs, True
            jobs.append(item)

    def _run_init(self) -> None:
        if self._init is not None:
            try:
                self._init()
            except BaseException as exc:  # noqa: BLE001 - reported to every caller
                logger.exception("LLM engine initialisation failed")
                self._init_error = exc
        self._ready.set()

    def _fail_leftovers(self) -> None:
        """After closing: fail anything that slipped in (submit normally prevents it)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item.future.set_exception(RuntimeError("the LLM worker is closed"))

    def _record(self, jobs: Sequence[BatchJob[P, R]], busy_s: float = 0.0) -> None:
        n_prompts = sum(len(j.prompts) for j in jobs)
        with self._lock:
            s = self._stats
            s.batches += 1
            s.requests += len(jobs)
            s.prompts += n_prompts
            s.max_batch_requests = max(s.max_batch_requests, len(jobs))
            s.max_batch_prompts = max(s.max_batch_prompts, n_prompts)
            s.busy_s += busy_s

    def _loop(self) -> None:
        self._run_init()
        while True:
            jobs, stop = self._collect()
            if jobs:
                self._run(jobs)
            if stop:
                break
        self._fail_leftovers()

    def _run(self, jobs: list[BatchJob[P, R]]) -> None:
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        prompts: list[Any] = []
        payloads: list[P] = []
        for j in jobs:
            prompts.extend(j.prompts)
            payloads.extend(j.payloads)
        t0 = time.perf_counter()
        try:
            if self._init_error is not None:
                raise RuntimeError("LLM engine failed to start") from self._init_error
            results = list(self._run_batch(prompts, payloads))
            if len(results) != len(prompts):
                raise RuntimeError(
                    f"engine returned {len(results)} results for {len(prompts)} prompts"
                )
        except BaseException as exc:  # noqa: BLE001 - forwarded to the callers
            with self._lock:
                self._stats.errors += 1
            for j in jobs:
                j.future.set_exception(exc)
            return
        finally:
            self._record(jobs, time.perf_counter() - t0)
        i = 0
        for j in jobs:
            k = len(j.prompts)
            j.future.set_result(results[i : i + k])
            i += k
