"""Limits: max_nodes, max_total_tokens and max_wall_seconds are configurable, enforced
between waves, and reported (``stop_reason == "limit"``, ``limits_hit``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from langchain_rstar import RStarChain, RStarConfig, RStarResult
from scripts import GOLD, QUESTION, apples_llm

#: A budget no test reaches: only a limit can stop these searches early.
BIG = {"num_rollouts": 200}


def _max_children(config: RStarConfig) -> int:
    """Most children one expansion can add (A1 + A2 + A3 + A4 + A5)."""
    return config.num_a1_steps + 1 + config.num_subquestions + 1 + 1


def _assert_limit(result: RStarResult, name: str, config: RStarConfig) -> None:
    assert result.stop_reason == "limit"
    assert name in result.limits_hit
    assert result.usage.rollouts < config.num_rollouts
    RStarResult.model_validate_json(result.model_dump_json())


def test_no_limit_runs_the_whole_budget() -> None:
    config = RStarConfig(num_rollouts=8, max_nodes=10_000, max_total_tokens=10**9)
    result = RStarChain(generator=apples_llm(), config=config).invoke(QUESTION)
    assert result.stop_reason == "budget" and result.limits_hit == []
    assert result.usage.rollouts == 8


@pytest.mark.parametrize("rollout_batch", [1, 4])
def test_max_nodes(rollout_batch: int) -> None:
    config = RStarConfig(**BIG, max_nodes=12, rollout_batch=rollout_batch)
    result = RStarChain(generator=apples_llm(), config=config).invoke(QUESTION)
    _assert_limit(result, "max_nodes", config)
    assert result.limits_hit == ["max_nodes"]
    # checked between waves: the last wave may overshoot by its expansions, no more; a
    # rollout of a wave expands its leaf and every node its simulation passes (up to
    # max_depth levels)
    wave_most = rollout_batch * config.max_depth * _max_children(config)
    assert 12 <= len(result.tree) < 12 + wave_most
    assert result.usage.nodes == len(result.tree)


def test_max_total_tokens() -> None:
    config = RStarConfig.fast(**BIG, max_total_tokens=300)  # fast: one wave < 400 tokens
    result = RStarChain(generator=apples_llm(), config=config).invoke(QUESTION)
    _assert_limit(result, "max_total_tokens", config)
    assert result.limits_hit == ["max_total_tokens"]
    assert 300 <= result.usage.completion_tokens < 300 + 400  # at most one wave over


def test_max_wall_seconds() -> None:
    config = RStarConfig(**BIG, max_wall_seconds=0.3)
    chain = RStarChain(generator=apples_llm(latency=0.02), config=config)
    start = time.perf_counter()
    result = chain.invoke(QUESTION)
    elapsed = time.perf_counter() - start
    _assert_limit(result, "max_wall_seconds", config)
    assert result.limits_hit == ["max_wall_seconds"]
    assert result.usage.wall_seconds >= 0.3
    assert elapsed < 5.0  # stopped soon after the limit, not after 200 rollouts


def test_limits_async() -> None:
    config = RStarConfig(**BIG, max_nodes=12)
    result = asyncio.run(RStarChain(generator=apples_llm(), config=config).ainvoke(QUESTION))
    _assert_limit(result, "max_nodes", config)


def test_every_limit_hit_at_once_is_listed() -> None:
    # calls of 0.15 s: the first wave's first calls (A1, A2, A5: 5 nodes) finish inside the
    # 0.25 s, its second A3 call is cut at the deadline (#19.10), and the wave ends there
    config = RStarConfig(**BIG, max_nodes=5, max_total_tokens=1, max_wall_seconds=0.25)
    result = RStarChain(generator=apples_llm(latency=0.15), config=config).invoke(QUESTION)
    _assert_limit(result, "max_nodes", config)
    assert sorted(result.limits_hit) == ["max_nodes", "max_total_tokens", "max_wall_seconds"]


def test_a_limit_keeps_what_was_found() -> None:
    # enough room for a few rollouts: the candidates so far still give an answer
    config = RStarConfig(**BIG, max_nodes=40)
    result = RStarChain(generator=apples_llm(), config=config).invoke(QUESTION)
    _assert_limit(result, "max_nodes", config)
    assert result.candidates and result.answer == GOLD
    assert result.trajectory and result.trajectory[-1].answer == GOLD


def test_a_limit_applies_with_verification_and_streams_progress() -> None:
    config = RStarConfig(**BIG, max_nodes=20)
    chain = RStarChain(generator=apples_llm(), discriminator=True, config=config)
    events = list(chain.stream(QUESTION))
    result = events[-1]
    assert isinstance(result, RStarResult)
    _assert_limit(result, "max_nodes", config)
    assert len(events) - 1 == result.usage.rollouts
    assert result.verification.mode != "none"


def test_limits_are_documented_as_checked_between_waves() -> None:
    fields = RStarConfig.model_fields
    for name in ("max_nodes", "max_total_tokens"):
        assert "between waves" in (fields[name].description or "")
    # the wall-time limit also cuts the model calls in flight (#19.10)
    assert "abandoned" in (fields["max_wall_seconds"].description or "")
    for name in ("max_nodes", "max_total_tokens", "max_wall_seconds"):
        assert fields[name].default is None  # off unless set
