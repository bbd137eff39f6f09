"""Every exception langchain-rstar raises on purpose, in one leaf module.

One home so that a caller can see (and catch) all of them without importing the module
that raises each one, and so that no module has to import a heavy sibling (the sampler,
the evaluation harness, the server) only to name its error. This module imports nothing
from the package at run time. Private control-flow exceptions that never leave their
module (``answers/_deadline.py``'s thread interrupt, ``answers/extract.py``'s time-out
marker) stay where they are raised and caught.

The modules that used to define these classes still import them, so their old paths
(``langchain_rstar.sampling.sampler.RStarBackendError``,
``langchain_rstar.eval.harness.SettingsMismatchError``...) keep working for the 0.1.x
releases; new code imports from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_rstar.result import RStarResult

__all__ = [
    "APIError",
    "BackendDeadError",
    "CLIError",
    "InjectedFault",
    "ModelIntegrityError",
    "OutputLockedError",
    "QuestionFailed",
    "RStarBackendError",
    "RayWorkerError",
    "SettingsMismatchError",
]


# -- the search and its model ------------------------------------------------------------
class BackendDeadError(RuntimeError):
    """Raised when the model failed so many calls in a row that the search cannot go on.

    Attributes:
        errors: the error records of the failed attempts of the last call.
    """

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = [dict(e) for e in errors]

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.errors))


class RStarBackendError(RuntimeError):
    """The model backend stopped answering during a search (it looks dead).

    Raised by :class:`~langchain_rstar.RStarChain` instead of returning a result, so that
    callers (for example an evaluation loop) never record a half-finished search as done.

    Attributes:
        partial: what the search had when it stopped: the tree, candidates, errors (the
            fatal one has ``kind == "backend_dead"``) and usage so far. Its ``answer`` is
            whatever the partial tree supported, or None; do not score it as a finished run.
    """

    def __init__(self, message: str, partial: RStarResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.partial))


class ModelIntegrityError(RuntimeError):
    """A converted model folder does not match its manifest (``llms/embedded.py``)."""


# -- evaluation ----------------------------------------------------------------------------
class QuestionFailed(RuntimeError):
    """A question could not be solved because model calls failed (retrying may help).

    Attributes:
        errors: the error records of the failed calls.
    """

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = [dict(e) for e in errors]


class SettingsMismatchError(ValueError):
    """The output file already holds records of this method made with other settings."""


class OutputLockedError(RuntimeError):
    """Another process is writing to the same output file."""


class RayWorkerError(RuntimeError):
    """An unexpected exception inside a Ray worker of ``rstar eval --ray-address``, carried
    back to the driver as text (the question is reported as failed, not saved)."""


# -- front ends ----------------------------------------------------------------------------
class CLIError(Exception):
    """A user-facing error of ``rstar``: printed without a traceback, exit status 2."""


class APIError(Exception):
    """An error ``rstar serve`` answers with an OpenAI-style body:
    ``{"error": {message, type, ...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


# -- testing -------------------------------------------------------------------------------
class InjectedFault(RuntimeError):
    """The error a :class:`~langchain_rstar.testing.faults.FaultyLLM` raises on a failing
    call."""
