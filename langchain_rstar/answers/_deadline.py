"""A per-call time limit that works on any thread (the answer checkers' watchdog).

Why hand-written: ``signal.alarm`` (what math-verify and most timeout helpers use) only works
on the main thread, while checkers run inside LangGraph worker threads and asyncio executors.
No maintained library interrupts pure-Python work on an arbitrary thread, so one daemon thread
raises :class:`_Deadline` asynchronously (``PyThreadState_SetAsyncExc``) in a thread whose time
ran out. The interrupt only lands between Python bytecodes: work stuck inside one C call (a huge
integer power, one regex match) cannot be stopped, which is why the callers also screen inputs
statically and keep every regex linear (see ``tests/unit_tests/test_redos.py``).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class _Deadline(BaseException):
    """Raised asynchronously in a thread whose time budget ran out.

    A ``BaseException`` so that the broad ``except Exception`` handlers inside sympy and
    math-verify cannot swallow it.
    """


_HAS_ASYNC_EXC = hasattr(ctypes, "pythonapi") and hasattr(
    getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc"
)
if _HAS_ASYNC_EXC:
    _set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    _set_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
    _set_async_exc.restype = ctypes.c_int


def _raise_in_thread(tid: int, exc: type[BaseException] | None) -> None:
    if _HAS_ASYNC_EXC:
        _set_async_exc(tid, None if exc is None else id(exc))


class _Watchdog:
    """One daemon thread that interrupts overrunning checks on any thread.

    ``signal.alarm`` (what math-verify uses) only works on the main thread. Instead, when a
    thread's deadline passes, the watchdog raises :class:`_Deadline` in it via
    ``PyThreadState_SetAsyncExc`` and keeps re-raising every ``refire`` seconds until the thread
    disarms (in case some bare ``except:`` swallowed it).
    """

    refire = 0.1

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, float] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def arm(self, tid: int, deadline: float) -> None:
        with self._cond:
            self._due[tid] = deadline
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="langchain-rstar-answer-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def disarm(self, tid: int) -> None:
        with self._cond:
            self._due.pop(tid, None)
            if tid in self._fired:
                self._fired.discard(tid)
                _raise_in_thread(tid, None)  # clear a pending, undelivered interrupt

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                wait: float | None = None
                for tid, due in list(self._due.items()):
                    if due <= now:
                        _raise_in_thread(tid, _Deadline)
                        self._fired.add(tid)
                        due = now + self.refire
                        self._due[tid] = due
                    left = due - now
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)


_WATCHDOG = _Watchdog()
_LOCAL = threading.local()


def _reset_after_fork() -> None:
    """A forked child has no watchdog thread and may inherit held locks: start afresh."""
    global _WATCHDOG, _LOCAL
    _WATCHDOG = _Watchdog()
    _LOCAL = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _disarm(tid: int) -> None:
    for _ in range(100):
        try:
            _WATCHDOG.disarm(tid)
            return
        except _Deadline:
            continue


def _call_with_deadline(fn: Callable[[], _T], seconds: float, default: _T) -> tuple[_T, bool]:
    """Run ``fn()`` on the current thread, giving up after ``seconds``.

    Works on the main thread and on worker threads alike. Calls nest: an inner call runs
    until the earlier of its own deadline and the outer one. When its own deadline comes
    first it returns ``(default, True)`` and the outer call goes on; when the outer one comes
    first the interrupt goes to the outer call (so a vote's whole budget bounds every check
    inside it, issue #19.9).

    Returns:
        ``(result, timed_out)``; ``result`` is ``default`` when it timed out.
    """
    if not _HAS_ASYNC_EXC:
        return fn(), False
    outer: float | None = getattr(_LOCAL, "due", None)
    due = time.monotonic() + seconds
    if outer is not None and outer <= due:
        return fn(), False  # the outer deadline comes first: its interrupt ends both calls
    tid = threading.get_ident()
    _LOCAL.due = due
    result, timed_out = default, False
    try:
        try:
            try:
                _WATCHDOG.arm(tid, due)
                result = fn()
            finally:
                _disarm(tid)
        except _Deadline:
            timed_out = True
            _disarm(tid)
    finally:
        _LOCAL.due = outer
        if outer is not None:
            # The outer call's deadline again; if it has passed meanwhile, the watchdog
            # interrupts the outer call at once.
            _WATCHDOG.arm(tid, outer)
    return result, timed_out
