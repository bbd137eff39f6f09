"""Checkpointed searches: an interrupted search resumes from its last step, same result.

The interruption is a ``BaseException`` raised by the scripted model once, after some
calls: the sampler retries and records ``Exception`` only, so this one stops the whole
graph run the way a killed process or Ctrl-C would, after LangGraph has saved the last
finished superstep (and the writes of the tasks that finished in the failing one).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langchain_rstar import RStarChain, RStarConfig, RStarResult
from scripts import GOLD, QUESTION, apples_llm

CONFIG = RStarConfig(num_rollouts=6, num_votes=3)


class PowerCut(BaseException):
    """Stands for a crash: not an ``Exception``, so nothing in the search catches it."""


def crashing_llm(after: int) -> tuple[Any, dict[str, Any]]:
    """The apples model, raising :class:`PowerCut` once on its call number ``after + 1``."""
    script = apples_llm()
    state = {"calls": 0, "crashed": False}
    lock = threading.Lock()

    def responder(prompt: str, n: int) -> list[str]:
        with lock:
            state["calls"] += 1
            crash = not state["crashed"] and state["calls"] > after
            if crash:
                state["crashed"] = True
        if crash:
            raise PowerCut("simulated crash")
        return script.samples_for(prompt, n)

    return apples_llm(responder=responder), state


def same_search(a: RStarResult, b: RStarResult) -> None:
    assert a.answer == b.answer == GOLD
    assert a.confidence == pytest.approx(b.confidence)
    assert a.tree == b.tree
    assert [c.model_dump() for c in a.candidates] == [c.model_dump() for c in b.candidates]
    assert [s.model_dump() for s in a.trajectory] == [s.model_dump() for s in b.trajectory]
    assert a.verification == b.verification
    assert a.usage.rollouts == b.usage.rollouts
    # the crashed call never returned, so it is not counted: the cost is the same
    assert a.usage.llm_calls == b.usage.llm_calls
    assert a.usage.completion_tokens == b.usage.completion_tokens


@pytest.fixture(scope="module")
def reference() -> RStarResult:
    return RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG).invoke(QUESTION)


def test_interrupted_search_resumes_with_the_same_result_in_memory(
    reference: RStarResult,
) -> None:
    llm, state = crashing_llm(after=20)  # past the first superstep (the root's expansions)
    chain = RStarChain(
        generator=llm, discriminator=True, config=CONFIG, checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "t-memory"}}
    with pytest.raises(PowerCut):
        chain.invoke(QUESTION, thread)
    snapshot = chain.graph.get_state(thread)
    assert snapshot.next, "the thread must hold an unfinished search"
    calls_before = state["calls"]
    resumed = chain.invoke(QUESTION, thread)
    same_search(resumed, reference)
    # it went on from the checkpoint instead of starting again
    assert state["calls"] - calls_before < reference.usage.llm_calls
    assert not chain.graph.get_state(thread).next


def test_interrupted_search_resumes_after_a_restart_with_sqlite(
    reference: RStarResult, tmp_path: Any
) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    db = tmp_path / "rstar.sqlite"
    thread = {"configurable": {"thread_id": "t-sqlite"}}
    llm, _ = crashing_llm(after=25)
    conn = sqlite3.connect(db, check_same_thread=False)
    chain = RStarChain(
        generator=llm, discriminator=True, config=CONFIG, checkpointer=SqliteSaver(conn)
    )
    with pytest.raises(PowerCut):
        chain.invoke(QUESTION, thread)
    conn.close()

    # "Restart": a new connection, a new chain, a fresh model that counts its calls.
    counted, state = crashing_llm(after=10**9)
    conn = sqlite3.connect(db, check_same_thread=False)
    try:
        restarted = RStarChain(
            generator=counted, discriminator=True, config=CONFIG, checkpointer=SqliteSaver(conn)
        )
        assert restarted.graph.get_state(thread).next
        resumed = restarted.invoke(QUESTION, thread)
    finally:
        conn.close()
    same_search(resumed, reference)
    assert 0 < state["calls"] < reference.usage.llm_calls


async def test_interrupted_async_search_resumes_with_the_same_result(
    reference: RStarResult,
) -> None:
    llm, _ = crashing_llm(after=15)
    chain = RStarChain(
        generator=llm, discriminator=True, config=CONFIG, checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "t-async"}}
    with pytest.raises(PowerCut):
        await chain.ainvoke(QUESTION, thread)
    assert (await chain.graph.aget_state(thread)).next
    same_search(await chain.ainvoke(QUESTION, thread), reference)


def test_a_used_thread_starts_afresh_for_a_new_question_or_a_finished_search() -> None:
    chain = RStarChain(
        generator=apples_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=3, num_votes=3),
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "t-reuse"}}
    first = chain.invoke(QUESTION, thread)
    other = chain.invoke("Bob has 2 boxes of 5 pens. How many pens does he have?", thread)
    # nothing of the first search leaks into the second one
    assert other.question.startswith("Bob has")
    assert other.tree["0"]["text"].startswith("Bob has")
    assert other.usage.rollouts == 3
    assert other.tree["0"]["visits"] == 3  # not 6: the old tree was not merged in
    again = chain.invoke(QUESTION, thread)
    assert again.tree == first.tree and again.answer == first.answer
    assert again.usage.llm_calls == first.usage.llm_calls  # counted once, not summed
    assert again.usage.rollouts == first.usage.rollouts


def test_a_changed_config_does_not_resume_an_old_search() -> None:
    llm, _ = crashing_llm(after=10)
    saver = InMemorySaver()
    chain = RStarChain(generator=llm, discriminator=True, config=CONFIG, checkpointer=saver)
    thread = {"configurable": {"thread_id": "t-config"}}
    with pytest.raises(PowerCut):
        chain.invoke(QUESTION, thread)
    smaller = chain.with_overrides(num_rollouts=2)
    result = smaller.invoke(QUESTION, thread)
    assert result.usage.rollouts == 2
