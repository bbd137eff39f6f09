"""Session affinity for OpenAI-compatible backends, and bounded client settings.

Why: an rStar search sends ~100+ requests whose prompts share one long prefix (the few-shot
exemplars plus the question). Behind a router over several engine replicas
(``vllm-router --policy sticky_least_loaded``) that prefix is only reused from the KV cache
when every request of one search lands on the same replica, so every request carries one
*session key*: the OpenAI ``user`` field and an ``x-session-id`` header. The key is
``<label>/<question id>`` in ``rstar eval`` (set with :func:`session`) and the search's own
scope id elsewhere (:func:`langchain_rstar.sampling.sampler.scope_of`). It is on by default
for the ``langchain_openai`` clients and off with ``RSTAR_SESSION_AFFINITY=0``.

The key travels in a :mod:`contextvars` variable rather than in each call's arguments, so
that the baselines (``cot``, ``sc``) and the search get it without new parameters; asyncio
tasks and the sampler's timeout threads copy the context, so concurrent searches on one
event loop or in threads keep their own keys.

Retries are bounded in one place: the sampler retries a failed call (``max_retries``), so
:func:`openai_client` sets the HTTP client's own ``max_retries`` to 0 whenever the sampler
retries (retries would otherwise multiply: sampler x client x router), and always gives a
finite request timeout. Everything here is a few lines of glue over ``langchain_openai``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

__all__ = [
    "SESSION_HEADER",
    "affinity_enabled",
    "current_session",
    "openai_client",
    "session",
    "session_kwargs",
]

#: The HTTP header routers read for sticky routing (``vllm-router``'s sticky policies).
SESSION_HEADER = "x-session-id"

#: Seconds one HTTP request may take by default (the router's own default is 30 minutes).
DEFAULT_REQUEST_TIMEOUT = 600.0

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("rstar_session", default=None)


def affinity_enabled() -> bool:
    """Session keys are sent unless ``RSTAR_SESSION_AFFINITY`` is 0/false/off."""
    return os.environ.get("RSTAR_SESSION_AFFINITY", "1").strip().lower() not in (
        "0",
        "false",
        "off",
        "no",
    )


@contextlib.contextmanager
def session(key: str | None) -> Iterator[None]:
    """Every OpenAI-compatible request made inside carries ``key`` (None: the search id)."""
    token = _SESSION.set(key)
    try:
        yield
    finally:
        _SESSION.reset(token)


def current_session() -> str | None:
    """The key set by the innermost :func:`session`, if any."""
    return _SESSION.get()


def session_kwargs(mode: str, scope: Any) -> dict[str, Any]:
    """Per-request keywords that carry the session key for an OpenAI-compatible client.

    Args:
        mode: the sampler's backend mode (only ``openai`` / ``openai_chat`` get keys).
        scope: the search scope of the call (the sampler's ``scope_of(config)``), the fallback key.
    """
    if mode not in ("openai", "openai_chat") or not affinity_enabled():
        return {}
    key = _SESSION.get()
    if not key:
        key = str(scope) if scope else None
    if not key:
        return {}
    return {"user": key, "extra_headers": {SESSION_HEADER: key}}


def openai_client(
    *,
    model: str,
    base_url: str,
    api_key: str = "EMPTY",
    request_timeout: float | None = None,
    sampler_retries: int = 2,
    chat: bool = False,
) -> Any:
    """A ``langchain_openai`` completions (or chat) client with bounded retries and timeout.

    The client retries only when the sampler does not (``sampler_retries == 0``), so a
    failing request is tried at most ``sampler_retries + 1`` times in all.
    """
    if request_timeout is not None and not request_timeout > 0:
        raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout!r}")
    if sampler_retries < 0:
        raise ValueError(f"sampler_retries must be >= 0, got {sampler_retries!r}")
    try:
        if chat:
            from langchain_openai import ChatOpenAI as Client
        else:
            from langchain_openai import OpenAI as Client  # type: ignore[assignment]
    except ImportError as exc:
        raise ImportError(
            "an OpenAI-compatible backend needs langchain-openai: "
            "pip install 'langchain-rstar[openai]'"
        ) from exc
    return Client(
        model=model,
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]
        max_retries=0 if sampler_retries > 0 else 1,
        timeout=request_timeout or DEFAULT_REQUEST_TIMEOUT,
    )
