"""Whether anything observes a search's runs (the test behind the quiet fast path).

LangChain sets up a callback manager and a run for every Runnable step and every LLM call,
even when no handler listens; a search nobody observes can skip that (see
:mod:`langchain_rstar.search._untraced` for the graph's side). The chain decides once per
search and marks the run config with :data:`QUIET_KEY`; the sampler then calls a quiet
``BaseLLM``'s ``_generate`` directly. These predicates sit here, below both the sampler and
the search, so that the sampler does not import the search package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.globals import get_debug, get_llm_cache
from langchain_core.language_models import BaseLLM

__all__ = ["QUIET_KEY", "is_quiet", "llm_is_quiet", "manager_is_quiet"]


#: Key in ``RunnableConfig["configurable"]`` set (True) when no handler observes the
#: search (LangGraph keeps ``__``-prefixed keys out of checkpoint and trace metadata).
QUIET_KEY = "__rstar_quiet"


def manager_is_quiet(run_manager: Any) -> bool:
    """Whether a (root) run manager has no handler and LangChain's debug output is off."""
    if run_manager is None:
        return False  # not started through LangChain: do not assume anything
    handlers = getattr(run_manager, "handlers", None)
    inheritable = getattr(run_manager, "inheritable_handlers", None)
    if handlers is None or inheritable is None:
        return False
    return not handlers and not inheritable and not get_debug()


def is_quiet(config: Mapping[str, Any] | None) -> bool:
    """Whether the run config belongs to a search nothing observes (see module docs)."""
    configurable = (config or {}).get("configurable") or {}
    return configurable.get(QUIET_KEY) is True


def llm_is_quiet(llm: Any) -> bool:
    """Whether calling ``llm._generate`` directly loses nothing ``llm.generate`` would do.

    True for a plain ``BaseLLM`` with no callbacks of its own, not verbose, and no LLM
    cache (its own or LangChain's global one). Chat models always take ``generate``.
    """
    if not isinstance(llm, BaseLLM):
        return False
    if llm.callbacks or getattr(llm, "callback_manager", None) or llm.verbose:
        return False
    if llm.cache is False:
        return True
    return llm.cache is None and get_llm_cache() is None
