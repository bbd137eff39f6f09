"""Streaming: progress per rollout, then the result; ``astream_events`` v2."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from langchain_rstar import RStarChain, RStarConfig, RStarProgress, RStarResult
from scripts import GOLD, QUESTION, apples_llm

CONFIG = RStarConfig(num_rollouts=5, num_votes=3, num_masks=2)


def chain() -> RStarChain:
    return RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG)


def check_events(events: list[Any]) -> RStarResult:
    *progress, result = events
    assert isinstance(result, RStarResult) and result.answer == GOLD
    assert all(isinstance(p, RStarProgress) for p in progress)
    assert [p.rollout for p in progress] == list(range(CONFIG.num_rollouts))
    assert all(p.num_rollouts == CONFIG.num_rollouts for p in progress)
    tokens = [p.completion_tokens for p in progress]
    assert tokens == sorted(tokens) and tokens[0] > 0
    assert tokens[-1] <= result.usage.completion_tokens
    calls = [p.llm_calls for p in progress]
    assert calls == sorted(calls) and calls[-1] <= result.usage.llm_calls
    # a best answer from the first rollout that found a candidate on (a `paper` rollout may
    # end without one: an A1 step stating an answer keeps being expanded)
    found = [p.best_answer is not None for p in progress]
    assert found[-1] and found == sorted(found)
    assert all(0 < p.confidence <= 1 for p in progress if p.best_answer is not None)
    assert progress[-1].nodes == len(result.tree)
    return result


def test_stream_yields_progress_per_rollout_then_the_result() -> None:
    reference = chain().invoke(QUESTION)
    result = check_events(list(chain().stream(QUESTION)))
    assert result.tree == reference.tree and result.answer == reference.answer


async def test_astream_yields_the_same_events() -> None:
    events = [e async for e in chain().astream({"question": QUESTION})]
    check_events(events)


def test_stream_is_one_traced_run() -> None:
    collector = RunCollectorCallbackHandler()
    events = list(chain().stream(QUESTION, {"callbacks": [collector]}))
    assert len(collector.traced_runs) == 1
    root = collector.traced_runs[0]
    assert root.name == "RStar"
    assert isinstance(events[-1], RStarResult)


async def test_astream_events_v2() -> None:
    events = [e async for e in chain().astream_events(QUESTION, version="v2")]
    first, last = events[0], events[-1]
    assert (first["event"], first["name"]) == ("on_chain_start", "RStar")
    assert first["data"]["input"] == QUESTION
    kinds = {e["event"] for e in events}
    assert {"on_llm_start", "on_llm_end", "on_chain_stream"} <= kinds
    llm_names = {e["name"] for e in events if e["event"] == "on_llm_start"}
    assert "A1_one_step_thought" in llm_names and "discriminator" in llm_names
    # the search's own stream: one progress chunk per rollout, then the result
    chunks = [
        e["data"]["chunk"]
        for e in events
        if e["event"] == "on_chain_stream" and e["run_id"] == first["run_id"]
    ]
    assert sum(isinstance(c, RStarProgress) for c in chunks) == CONFIG.num_rollouts
    assert isinstance(chunks[-1], RStarResult)
    assert (last["event"], last["name"], last["run_id"]) == (
        "on_chain_end",
        "RStar",
        first["run_id"],
    )
    output = last["data"]["output"]
    assert isinstance(output, RStarResult) and output.answer == GOLD
    # the tree metadata is on the events from the start: on each action's model calls (the
    # node run itself opens before its task is known, see search/_untraced.annotate_run)
    # and on each rollout run
    starts = [
        e
        for e in events
        if e["event"] in ("on_chain_start", "on_llm_start")
        and e["metadata"].get("rstar_node_id") is not None
    ]
    assert {e["name"] for e in starts} >= {"A1_one_step_thought", "rollout"}
    a1 = [e for e in starts if e["name"] == "A1_one_step_thought"]
    assert a1 and all(e["metadata"]["rstar_action"] == "A1" for e in a1)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_invalid_question_fails_before_streaming(mode: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        if mode == "sync":
            list(chain().stream("   "))
        else:
            [e async for e in chain().astream("   ")]
