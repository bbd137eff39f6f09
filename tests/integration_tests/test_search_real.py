"""A real rStar search on the embedded model: generator and discriminator on vLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _server import SMALL_BUDGET

from langchain_rstar import RStarChain, RStarConfig, RStarResult, verify_candidates

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SMALL = RStarConfig(
    **SMALL_BUDGET,
    num_rollouts=2,
    rollout_batch=2,
    num_votes=3,
    num_a1_steps=2,
    num_subquestions=2,
    max_tokens=48,
    num_masks=2,
)


def _gsm8k_question() -> str:
    path = DATA / "gsm8k" / "test.json"
    if not path.exists():
        return (
            "Janet's ducks lay 16 eggs per day. She eats three for breakfast and bakes "
            "muffins with four. She sells the rest for $2 each. How much does she make?"
        )
    return str(json.loads(path.read_text(encoding="utf-8"))[0]["problem"])


def _well_formed(result: RStarResult) -> None:
    assert len(result.tree) > 1
    assert result.usage.llm_calls > 0 and result.usage.rollouts == 2
    assert result.usage.completion_tokens > 0 and result.usage.prompt_tokens > 0
    assert not result.usage.tokens_estimated  # real counts from the backend
    assert result.usage.wall_seconds > 0
    assert not [e for e in result.errors if e.get("fatal")]
    for node in result.tree.values():
        if node["parent"] is not None:
            assert node["id"] in result.tree[node["parent"]]["children"]
    if result.answer is not None:
        assert result.trajectory and result.trajectory[-1].answer is not None
    RStarResult.model_validate_json(result.model_dump_json())


EASY = "Tom has 3 apples and buys 4 more. How many apples does he have now?"


def _no_candidates_reported(result: RStarResult) -> None:
    # Nothing to verify: the result says so and invents no answer.
    assert result.answer is None and result.stop_reason == "no_candidates"
    assert result.verification.mode == "none" and not result.verification.ran
    assert result.verification.reason == "no candidates"


def test_real_search_with_verification(vllm_engine: Any) -> None:
    chain = RStarChain(generator=vllm_engine, discriminator=True, config=SMALL)
    # A sampled search of this size sometimes ends with no extractable answer (the 270M
    # model runs out of its 48 tokens per step): then try an easier question, so the
    # verification path is exercised on the real model every run.
    for question in (_gsm8k_question(), EASY, EASY):
        result = chain.invoke(question)
        _well_formed(result)
        if result.candidates:
            break
        _no_candidates_reported(result)
    else:
        pytest.fail("three real searches produced no candidate answer to verify")
    verification = result.verification
    assert verification.mode == "mid"
    if not verification.skipped:
        assert verification.ran
        assert all(c.masks for c in result.candidates)
        completions = [m for c in result.candidates for m in c.masks]
        assert any(m.completions for m in completions)


def test_real_discriminator_reverifies_saved_candidates(vllm_engine: Any) -> None:
    chain = RStarChain(generator=vllm_engine, config=SMALL)
    saved = chain.invoke(_gsm8k_question())
    _well_formed(saved)
    if not saved.candidates:
        pytest.skip("the model produced no candidate answer for this question")
    out = verify_candidates(
        saved.question, [c.model_dump() for c in saved.candidates], vllm_engine, SMALL
    )
    assert out["verification"]["ran"] or out["verification"]["skipped"]
    masked = any(c.get("masks") for c in out["candidates"])
    # A candidate too short to mask (e.g. a one-step direct answer) sends no request.
    assert (
        out["usage"].get("completion_tokens", 0) > 0 or out["verification"]["skipped"] or not masked
    )
