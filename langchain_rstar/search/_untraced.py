"""The quiet fast path of the graph's nodes, and nodes that trace once.

LangChain sets up a callback manager and a run (ids, metadata, tags, ``on_*_start`` /
``on_*_end`` calls) for every Runnable step and every LLM call, even when no handler
listens. A search at the paper's settings makes hundreds of action runs and LLM calls, so
that set-up is a measurable share of its time outside the model
(``benchmarks/bench_overhead.py``).

Whether anything observes a search is decided by
:mod:`langchain_rstar.sampling._unobserved` (below the sampler, which reads it too).
The chain decides **once per search**, at its own root run: when the root run manager has
no handler at all (no callbacks passed, no LangSmith tracer from the environment or a
``tracing_context``, no ``astream_events`` / ``stream_mode="messages"`` listener) and
LangChain's global debug flag is off, nothing can observe the search's child runs, and it
puts :data:`QUIET_KEY` in the graph's ``configurable``. Action nodes then call their
function directly, and :class:`~langchain_rstar.sampling.sampler.Sampler` calls a plain
``BaseLLM``'s ``_generate`` / ``_agenerate`` directly when the model itself is quiet too
(:func:`llm_is_quiet`: no callbacks, not verbose, no LLM cache). Anything observed keeps
LangChain's full path, so traces are unchanged.

Graph nodes are :class:`NodeFunc`: plain functions run inline, with no run of their own.
LangGraph already opens one run per node task (named after the node), so a node that
traced itself as well (a ``RunnableLambda``) appeared twice, an identical run inside the
node's run. :func:`annotate_run` adds per-task metadata (the tree node an action expands)
to that one run, which LangGraph opens before the function can say anything.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    patch_config,
    var_child_runnable_config,
)
from langchain_core.tracers.base import BaseTracer

# Re-exported: tests and older code import the predicates from here.
from langchain_rstar.sampling._unobserved import (
    QUIET_KEY,
    is_quiet,
    llm_is_quiet,
    manager_is_quiet,
)

__all__ = [
    "QUIET_KEY",
    "InlineRoute",
    "NodeFunc",
    "annotate_run",
    "QuietLambda",
    "control_node",
    "is_quiet",
    "llm_is_quiet",
    "manager_is_quiet",
]


class QuietLambda(RunnableLambda):
    """A ``RunnableLambda`` over ``func(input, config=...)`` that skips run set-up when quiet.

    The wrapped functions always take ``(input, config)`` and return a dict, so the
    per-call signature inspection of ``RunnableLambda`` is skipped too. In a quiet search
    (:func:`is_quiet`) ``invoke`` / ``ainvoke`` call the function directly: no callback
    manager, no run; otherwise they behave exactly like ``RunnableLambda``, with the
    config first passed through :meth:`_observed_config`.
    """

    def _observed_config(self, input: Any, config: RunnableConfig | None) -> RunnableConfig:
        """The config for an observed run (subclasses add trace metadata here)."""
        return ensure_config(config)

    def _invoke(
        self,
        input_: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        func: Any = self.func
        return func(input_, config=patch_config(config, callbacks=run_manager.get_child()))

    async def _ainvoke(
        self,
        value: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        afunc: Any = self.afunc
        return await afunc(value, config=patch_config(config, callbacks=run_manager.get_child()))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if is_quiet(config) and not kwargs:
            func: Any = self.func
            return func(input, config=config)
        return super().invoke(input, self._observed_config(input, config), **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if is_quiet(config) and not kwargs:
            afunc: Any = self.afunc
            return await afunc(input, config=config)
        return await super().ainvoke(input, self._observed_config(input, config), **kwargs)


class NodeFunc(Runnable[Any, Any]):
    """A graph node as a plain function ``func(input, config)``: no run of its own.

    LangGraph traces each node task once (the node's run); this runs the function inside
    it, inline in sync and async mode (no executor thread hop under ``ainvoke``), and the
    model calls it makes nest under the node's run through ``config``.
    """

    def __init__(
        self,
        func: Callable[[Any, RunnableConfig], Any],
        afunc: Callable[[Any, RunnableConfig], Any] | None = None,
        *,
        name: str,
    ) -> None:
        self.func = func
        self.afunc = afunc
        self.name = name

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.func(input, ensure_config(config))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if self.afunc is None:
            return self.func(input, ensure_config(config))
        return await self.afunc(input, ensure_config(config))


def annotate_run(config: RunnableConfig | None, metadata: Mapping[str, Any]) -> None:
    """Add ``metadata`` to the run a node function runs in (its LangGraph node run).

    The run is already open when the function starts; tracers (``BaseTracer``: LangSmith,
    run collectors) keep it in their ``run_map`` until it ends, and send its metadata with
    the run's end. Nothing to do when nobody traces.
    """
    callbacks = (config or {}).get("callbacks")
    parent = getattr(callbacks, "parent_run_id", None)
    if parent is None or not metadata:
        return
    for handler in getattr(callbacks, "handlers", ()):
        if isinstance(handler, BaseTracer):
            run = handler.run_map.get(str(parent))
            if run is not None:
                run.extra.setdefault("metadata", {}).update(metadata)


def control_node(func: Callable[..., Any], name: str) -> NodeFunc:
    """A controller node (pure bookkeeping, no model call) for the graph.

    ``func`` takes ``(state)`` or ``(state, config)``; it runs inline in both sync and
    async mode, traced once (by LangGraph, as the node's run).
    """
    takes_config = "config" in inspect.signature(func).parameters

    def _sync(state: Any, config: RunnableConfig) -> Any:
        return func(state, config) if takes_config else func(state)

    return NodeFunc(_sync, name=name)


class InlineRoute(Runnable[Any, Any]):
    """A conditional edge's routing function, run inline in sync and async mode, untraced.

    LangGraph does not trace routing functions either; it only runs a plain one in an
    executor under ``ainvoke`` (a thread hop per superstep), which this avoids.
    """

    def __init__(self, func: Callable[[Any], Any], name: str | None = None) -> None:
        self.func = func
        self.name = name or getattr(func, "__name__", "route")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if config is None:
            return self.func(input)
        # LangGraph hands the branch the node task's config (with the run's Runtime) but does
        # not make it current; routing reads the search config from the Runtime's context
        token = var_child_runnable_config.set(config)
        try:
            return self.func(input)
        finally:
            var_child_runnable_config.reset(token)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.invoke(input, config)
