"""Ray for controllers: ``rstar eval --ray-address local|auto|ADDR --ray-workers W``.

Why: one controller process can feed dozens of engine replicas (about 1 ms of framework
and 2.5 ms of HTTP client per model call), but not every deployment has one such process:
GPUs that already form a Ray cluster, or a run too large for one client. Ray then places
the searches: W async actors (:class:`_SearchActor`), spread over the cluster, each
running many searches at once, each building its own model client (or local engine) from
a picklable factory.

What stays where, and why:

* **The driver is the only writer.** An actor returns each question's outcome as a value;
  the driver (:func:`~langchain_rstar.eval.harness.run_evaluation`, through
  :class:`RayRunner`) appends the record, so the JSONL file, its lock, its repair of a
  cut last line and the resume logic are exactly those of a local run. A question is
  written once, when its outcome reaches the driver: a killed actor or a killed driver
  loses at most questions in flight, which a rerun runs again.
* **Failures of the question are values, failures of the process are Ray's.** Inside the
  actor every exception is caught and returned (``dead`` for a dead backend, ``failed`` for
  a question whose model calls failed, ``error`` for anything else), so Ray never retries
  an application error (``retry_exceptions`` stays off) and the driver decides exactly as
  it does locally (a dead backend stops the run, exit status 3). Only the death of the
  actor process is Ray's business: the actor restarts (``max_restarts``) and Ray runs its
  in-flight questions again on the new process (``max_task_retries``, bounded); past that
  bound the question counts as failed (not saved; a rerun retries it), and when every
  actor is gone for good the run stops as dead.
* **Same code on every worker.** The job ships this package as a ``py_modules`` runtime
  environment (:func:`runtime_env`, given to ``ray.init``), so a worker runs the driver's
  exact version even where another copy is installed (or none is). When Ray is already
  initialised in the calling process, its own runtime environment applies.
* **Session keys.** Each question's requests carry ``<label>/<question id>``, as in a
  local run, so a ``vllm-router`` keeps them on one replica (:mod:`langchain_rstar.llms._session`).

Everything here is glue over Ray's own actor API (``ray.remote``, ``ray.wait``,
``ray.kill``); the only hand-written part is the driver's dispatch loop, which must
stay in the writing process.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_rstar.errors import (
    BackendDeadError,
    QuestionFailed,
    RayWorkerError,
    RStarBackendError,
)
from langchain_rstar.eval.baselines import MethodOutput
from langchain_rstar.eval.harness import _session_key
from langchain_rstar.llms._session import session

__all__ = [
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_MAX_TASK_RETRIES",
    "RayRunner",
    "RayWorkerError",
    "ray_available",
    "runtime_env",
]

#: Restarts of one actor process before it is given up (Ray's ``max_restarts``).
DEFAULT_MAX_RESTARTS = 2
#: Re-runs of a question whose actor died under it (Ray's ``max_task_retries``).
DEFAULT_MAX_TASK_RETRIES = 1

_INSTALL_HINT = "Ray is not installed: pip install 'langchain-rstar[ray]'"


def ray_available() -> bool:
    """Whether ``import ray`` works."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return ray


def _package_dir() -> str:
    """The ``langchain_rstar`` folder this module was imported from."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runtime_env() -> dict[str, Any]:
    """The job's runtime environment: this package, shipped to every worker (``py_modules``
    works at the job level only, i.e. in ``ray.init``)."""
    return {"py_modules": [_package_dir()], "excludes": ["__pycache__", "*.pyc"]}


def _solve_keyed(method: Any, question: str, task: str, key: str | None) -> tuple[Any, float]:
    start = time.perf_counter()
    with session(key):
        out = method.solve(question, task)
    return out, time.perf_counter() - start


class _SearchActor:
    """Runs searches for the driver (made a Ray actor by :class:`RayRunner`).

    ``solve`` is a coroutine, which makes this an *async actor*: Ray runs up to
    ``max_concurrency`` calls at once on one event loop. A method with an ``asolve``
    coroutine is awaited there; a synchronous ``solve`` runs in this actor's thread pool
    (the searches wait on the model, not on the CPU).
    """

    def __init__(self, make_method: Callable[[], Any], threads: int) -> None:
        self._make_method = make_method
        self._method: Any = None
        self._setup_error: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="rstar")

    def pid(self) -> int:
        return os.getpid()

    def _get_method(self) -> Any:
        if self._method is None and self._setup_error is None:
            try:
                self._method = self._make_method()
            except Exception as exc:  # noqa: BLE001 - reported to the driver as a dead backend
                self._setup_error = f"cannot build the model on a Ray worker: {exc}"
        if self._setup_error is not None:
            raise BackendDeadError(self._setup_error)
        return self._method

    async def solve(self, question: str, task: str, key: str | None) -> tuple[Any, ...]:
        """``("ok", MethodOutput, seconds)`` or ``(kind, message)``; never raises."""
        try:
            method = self._get_method()
            asolve = getattr(method, "asolve", None)
            if asolve is not None and asyncio.iscoroutinefunction(asolve):
                start = time.perf_counter()
                with session(key):
                    out = await asolve(question, task)
                seconds = time.perf_counter() - start
            else:
                loop = asyncio.get_running_loop()
                out, seconds = await loop.run_in_executor(
                    self._pool, _solve_keyed, method, question, task, key
                )
            return ("ok", out, seconds)
        except (BackendDeadError, RStarBackendError) as exc:
            return ("dead", f"{type(exc).__name__}: {exc}")
        except QuestionFailed as exc:
            return ("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a value, never a Ray retry
            return ("error", f"{type(exc).__name__}: {exc}")


def _outcome(value: Any) -> Any:
    """What an actor returned, as the harness's ``finish`` takes it."""
    kind = value[0] if isinstance(value, tuple) and value else None
    if kind == "ok" and isinstance(value[1], MethodOutput):
        return value[1], float(value[2])
    message = str(value[1]) if isinstance(value, tuple) and len(value) > 1 else repr(value)
    if kind == "dead":
        return BackendDeadError(message)
    if kind == "failed":
        return QuestionFailed(message)
    return RayWorkerError(message)


class RayRunner:
    """Run the questions of :func:`~langchain_rstar.eval.harness.run_evaluation` on Ray
    actors; pass it as ``runner=``. Use it as a context manager (or call :meth:`start`
    and :meth:`close`): connecting happens before the run, so a bad address fails early.

    Args:
        make_method: a picklable zero-argument callable that builds the method (model
            included) inside each actor.
        label: the run's label; each question's requests carry ``<label>/<id>``.
        address: ``"local"`` starts a private Ray instance for this run; ``"auto"`` joins
            the cluster of this machine; anything else is an address for ``ray.init``
            (``HOST:PORT`` or ``ray://HOST:10001``). When Ray is already initialised in
            this process it is used as it is.
        workers: actors (W), spread over the cluster's nodes.
        concurrency: questions in flight over all actors (at least one per actor).
        max_restarts: restarts of a dead actor process.
        max_task_retries: re-runs of a question whose actor died under it.
        num_cpus: CPUs each actor reserves (0: controllers wait on the engines).
        num_gpus: GPUs each actor reserves (for a local engine per actor).
        init_kwargs: more arguments for ``ray.init`` (e.g. ``num_cpus`` of a local start).
    """

    def __init__(
        self,
        make_method: Callable[[], Any],
        *,
        label: str,
        address: str = "local",
        workers: int = 2,
        concurrency: int = 1,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        max_task_retries: int = DEFAULT_MAX_TASK_RETRIES,
        num_cpus: float = 0,
        num_gpus: float = 0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("--ray-workers must be >= 1")
        if max_restarts < 0 or max_task_retries < 0:
            raise ValueError("max_restarts and max_task_retries must be >= 0 (bounded)")
        self.make_method = make_method
        self.label = label
        self.address = address
        self.workers = workers
        self.concurrency = max(concurrency, workers)
        self.max_restarts = max_restarts
        self.max_task_retries = max_task_retries
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_kwargs = dict(init_kwargs or {})
        #: the live actor handles during a run (tests kill them)
        self.actors: list[Any] = []
        self._started_ray = False
        self._ray: Any = None

    # ----------------------------------------------------------------------------------
    def start(self) -> RayRunner:
        """Import Ray and connect (or start a local instance). Idempotent."""
        if self._ray is not None:
            return self
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": "WARNING",
                "runtime_env": runtime_env(),
                **self.init_kwargs,
            }
            kwargs["address"] = self.address  # "local" starts a private instance
            # ray.init replaces the SIGTERM handler (its own, then its core worker's, which
            # aborts the process); the caller's (rstar eval: stop like Ctrl-C, keep every
            # finished line, exit 130) is put back
            main = threading.current_thread() is threading.main_thread()
            previous = signal.getsignal(signal.SIGTERM) if main else None
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConnectionError(f"cannot connect to Ray at {self.address!r}: {exc}") from exc
            finally:
                if main and previous is not None:
                    signal.signal(signal.SIGTERM, previous)
            self._started_ray = True
        self._ray = ray
        return self

    def close(self) -> None:
        """Kill this run's actors; shut Ray down if this runner started it."""
        ray = self._ray
        if ray is None:
            return
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self.actors = []
        if self._started_ray:
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._started_ray = False
        self._ray = None

    def __enter__(self) -> RayRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------
    def _spawn(self) -> list[Any]:
        ray = self._ray
        per_actor = math.ceil(self.concurrency / self.workers)
        actor_cls = ray.remote(_SearchActor)
        options: dict[str, Any] = {
            "max_restarts": self.max_restarts,
            "max_task_retries": self.max_task_retries,
            "max_concurrency": max(per_actor, self.concurrency),
            "num_cpus": self.num_cpus,
            "scheduling_strategy": "SPREAD",
        }
        if self.num_gpus:
            options["num_gpus"] = self.num_gpus
        return [
            actor_cls.options(**options).remote(self.make_method, per_actor)
            for _ in range(self.workers)
        ]

    def __call__(
        self,
        todo: Sequence[Any],
        prepared: Callable[[Any], tuple[str, str | None, str | None]],
        write_invalid: Callable[[Any, str, str], None],
        finish: Callable[[Any, str, Any], None],
        summary: Any,
    ) -> None:
        self.start()
        ray = self._ray
        from ray.exceptions import RayActorError, RayError

        queue = deque(todo)
        if not queue:
            return
        self.actors = self._spawn()
        load = [0] * len(self.actors)
        deaths = [0] * len(self.actors)
        alive = set(range(len(self.actors)))
        running: dict[Any, tuple[Any, str, int]] = {}

        def fill() -> None:
            while queue and len(running) < self.concurrency and alive and not summary.dead:
                ex = queue.popleft()
                ex_task, question, error = prepared(ex)
                if error is not None:
                    write_invalid(ex, ex_task, error)
                    continue
                index = min(alive, key=lambda i: (load[i], i))
                key = _session_key(self.label, ex)
                ref = self.actors[index].solve.remote(question or "", ex_task, key)
                running[ref] = (ex, ex_task, index)
                load[index] += 1

        try:
            fill()
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    ex, ex_task, index = running.pop(ref)
                    load[index] -= 1
                    try:
                        outcome = _outcome(ray.get(ref))
                    except RayActorError as exc:
                        # the actor process died under this question and Ray's bounded
                        # re-runs are spent: the question is failed (a rerun retries it)
                        deaths[index] += 1
                        if deaths[index] > self.max_restarts or not self._restarts(index):
                            alive.discard(index)
                        outcome = QuestionFailed(f"Ray worker died: {_first_line(exc)}")
                    except RayError as exc:
                        outcome = QuestionFailed(f"Ray error: {_first_line(exc)}")
                    finish(ex, ex_task, outcome)
                if not alive and not summary.dead:
                    summary.dead = (
                        f"every Ray worker died for good (max_restarts {self.max_restarts})"
                    )
                fill()
        finally:
            actors, self.actors = self.actors, []
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)

    def _restarts(self, index: int) -> bool:
        """Whether actor ``index`` is (or is becoming) alive again: a call to a restarting
        actor waits for the new process; one to an actor gone for good fails at once."""
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            self._ray.get(self.actors[index].pid.remote(), timeout=_PROBE_SECONDS)
        except GetTimeoutError:
            return True  # still starting: keep it
        except RayActorError:
            return False
        return True


#: How long the driver waits for a restarted actor to answer before assuming it lives.
_PROBE_SECONDS = 60.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
