"""The quiet fast path: a search nothing observes skips LangChain's per-run set-up.

What must hold: the same answers and usage either way; every observer (callbacks passed
to the chain, callbacks or ``verbose`` on the model, LangChain's debug flag, an LLM cache)
turns the fast path off so that it sees every run as before. LangSmith tracing (a tracer
in the root run's handlers) is checked end to end in ``test_tracing.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from langchain_core.globals import set_debug, set_llm_cache
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.search._untraced import (
    QUIET_KEY,
    QuietLambda,
    is_quiet,
    llm_is_quiet,
    manager_is_quiet,
)
from langchain_rstar.testing import ScriptedLLM
from scripts import GOLD, QUESTION, apples_llm

CONFIG = RStarConfig(num_rollouts=4, num_votes=3, num_masks=2, seed=7)


class CountingLLM(ScriptedLLM):
    """Counts calls that went through ``generate`` (LangChain's full path)."""

    through_generate: int = 0

    def generate(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.through_generate += 1
        return super().generate(*args, **kwargs)

    async def agenerate(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.through_generate += 1
        return await super().agenerate(*args, **kwargs)


def counting_llm(**kwargs: Any) -> CountingLLM:
    base = apples_llm()
    return CountingLLM(rules=base.rules, default=base.default, **kwargs)


class LLMStarts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.llm_starts = 0
        self.chain_starts = 0

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self.llm_starts += 1

    def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self.chain_starts += 1


def _prompts(llm: CountingLLM) -> int:
    """Prompts over all recorded calls (one LLM run each)."""
    return sum(len(prompts) for prompts, _ in llm.calls)


def _run(llm: Any, config: RunnableConfig | None = None, use_async: bool = False) -> Any:
    chain = RStarChain(generator=llm, discriminator=True, config=CONFIG)
    if use_async:
        return asyncio.run(chain.ainvoke(QUESTION, config))
    return chain.invoke(QUESTION, config)


@pytest.mark.parametrize("use_async", [False, True])
def test_unobserved_search_calls_the_model_directly(use_async: bool) -> None:
    llm = counting_llm()
    result = _run(llm, use_async=use_async)
    assert result.answer == GOLD
    assert llm.calls, "the model was called"
    assert llm.through_generate == 0, "no call went through generate()"


@pytest.mark.parametrize("use_async", [False, True])
def test_observed_search_keeps_the_full_path_and_the_same_result(use_async: bool) -> None:
    quiet_llm, loud_llm = counting_llm(), counting_llm()
    quiet = _run(quiet_llm, use_async=use_async)
    handler = LLMStarts()
    loud = _run(loud_llm, {"callbacks": [handler]}, use_async=use_async)
    assert loud_llm.through_generate == len(loud_llm.calls) > 0
    # LangChain opens one LLM run per prompt of a call
    assert handler.llm_starts == _prompts(loud_llm), "every model call is a run"
    assert handler.chain_starts > len(loud.tree), "every action / discriminate call is a run"
    # Same search either way: the fast path changes no result.
    assert (quiet.answer, quiet.usage.llm_calls, quiet.usage.samples) == (
        loud.answer,
        loud.usage.llm_calls,
        loud.usage.samples,
    )
    assert [s.node_id for s in quiet.trajectory] == [s.node_id for s in loud.trajectory]
    assert sorted(quiet.tree) == sorted(loud.tree)


def test_model_callbacks_or_verbose_keep_generate() -> None:
    handler = LLMStarts()
    llm = counting_llm(callbacks=[handler])
    _run(llm)
    assert llm.through_generate == len(llm.calls) > 0
    assert handler.llm_starts == _prompts(llm)
    assert not llm_is_quiet(counting_llm(verbose=True))


def test_llm_cache_is_used_not_skipped() -> None:
    assert not llm_is_quiet(counting_llm(cache=True))
    assert llm_is_quiet(counting_llm(cache=False))
    set_llm_cache(InMemoryCache())
    try:
        llm = counting_llm()
        assert not llm_is_quiet(llm)
        _run(llm)
        assert llm.through_generate > 0
    finally:
        set_llm_cache(None)
    assert llm_is_quiet(counting_llm())


def test_debug_flag_keeps_runs() -> None:
    set_debug(True)
    try:
        manager = CallbackManager(handlers=[])
        assert not manager_is_quiet(manager)
    finally:
        set_debug(False)
    assert manager_is_quiet(CallbackManager(handlers=[]))


def test_any_handler_or_missing_manager_is_not_quiet() -> None:
    assert not manager_is_quiet(None)
    assert not manager_is_quiet(CallbackManager(handlers=[LLMStarts()]))
    assert not manager_is_quiet(
        CallbackManager(handlers=[], inheritable_handlers=[RunCollectorCallbackHandler()])
    )
    assert not manager_is_quiet(object())


def test_chain_marks_only_an_unobserved_search_quiet() -> None:
    chain = RStarChain(generator=counting_llm(), config=CONFIG)
    silent = CallbackManager(handlers=[]).on_chain_start(None, {"input": QUESTION})
    loud = CallbackManager(handlers=[LLMStarts()]).on_chain_start(None, {"input": QUESTION})
    assert is_quiet(chain._graph_config({}, silent))
    assert not is_quiet(chain._graph_config({}, loud))
    assert not is_quiet(chain._graph_config({}, None))


def test_quiet_lambda_runs_without_a_run_only_when_quiet() -> None:
    handler = LLMStarts()
    calls: list[Any] = []

    def body(x: Any, config: Any) -> dict[str, Any]:
        calls.append(x)
        return {"x": x}

    node = QuietLambda(body, name="probe")
    assert node.invoke(1, {"callbacks": [handler]}) == {"x": 1}
    assert handler.chain_starts == 1
    assert node.invoke(2, {"callbacks": [handler], "configurable": {QUIET_KEY: True}}) == {"x": 2}
    assert handler.chain_starts == 1, "quiet: no run"
    assert calls == [1, 2]
    assert not is_quiet({"configurable": {QUIET_KEY: "yes"}}), "only True counts"


def test_control_nodes_and_routes_run_inline_under_ainvoke() -> None:
    """No executor thread hop for bookkeeping nodes and routing functions in async mode."""
    import threading

    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from langchain_rstar.search._untraced import InlineRoute, control_node

    class S(TypedDict):
        n: int

    threads: list[int] = []

    def step(state: S) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {"n": state["n"] + 1}

    def step_with_config(state: S, config: RunnableConfig) -> dict[str, Any]:
        assert "configurable" in config
        return step(state)

    def route(state: S) -> str:
        threads.append(threading.get_ident())
        return "b" if state["n"] < 3 else END

    builder = StateGraph(S)
    builder.add_node("a", control_node(step, "a"))
    builder.add_node("b", control_node(step_with_config, "b"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", InlineRoute(route), ["b", END])
    builder.add_edge("b", "a")
    graph = builder.compile()

    async def main() -> tuple[Any, int]:
        return await graph.ainvoke({"n": 0}), threading.get_ident()

    out, loop_thread = asyncio.run(main())
    assert out == {"n": 3}
    assert threads and set(threads) == {loop_thread}
    threads.clear()
    assert graph.invoke({"n": 0}) == {"n": 3}  # and the sync path works the same
    collector = RunCollectorCallbackHandler()
    graph.invoke({"n": 0}, {"callbacks": [collector]})
    names = [r.name for r in collector.traced_runs[0].child_runs]
    assert names == ["a", "b", "a"], "observed: each node is a run, routes are not"
