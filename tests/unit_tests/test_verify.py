"""Mutual verification: masking, consistency modes, fallback, skip, overturning a majority."""

from __future__ import annotations

import pytest

from langchain_rstar import RStarChain, RStarConfig, verify_candidates
from langchain_rstar.answers import get_checker
from langchain_rstar.search.verify import cut_points, is_consistent, masked_prefix
from langchain_rstar.testing import ScriptedLLM
from scripts import GOLD, QUESTION, apples_llm

CHECKER = get_checker("arithmetic")
R12 = " 3 * 4 = 12. The answer is 12."
R10 = " 12 - 2 = 10. The answer is 10."


def wrong_majority_llm() -> ScriptedLLM:
    """Generator whose weighted majority is 12 (wrong); only sub-questions reach 10."""
    return ScriptedLLM(
        rules=[
            (r"Sub-question \d+:$", [" Now we can answer the question: How many apples are left?"]),
            (r"Answer \d+:$", [R10]),
            (
                r"Rephrased question:$",
                [" Condition 1: Ann has 3 bags of 4 apples. Question: How many are left?"],
            ),
            (r"Step \d+:$", [R12, R12, R12, R10, R10]),
        ]
    )


def always(text: str) -> ScriptedLLM:
    return ScriptedLLM(rules=[(r".", [text])])


@pytest.mark.parametrize(
    ("total", "masks", "expected"),
    [
        (10, 4, [2, 3, 4, 5]),
        (4, 4, [1, 2]),
        (2, 4, [0, 1]),
        (1, 4, [0]),
        (0, 4, [0]),
        (10, 1, [4]),
    ],
)
def test_cut_points(total: int, masks: int, expected: list[int]) -> None:
    cuts = cut_points(total, masks, 0.2, 0.5)
    assert cuts == expected
    assert all(0 <= c < max(total, 1) for c in cuts)


def _candidate() -> dict:
    steps = [
        {
            "node_id": "0/A1.0",
            "type": "thought",
            "action": "A1",
            "text": "Ann has 3 * 4 = 12 apples.",
        },
        {
            "node_id": "0/A1.0/A1.0",
            "type": "thought",
            "action": "A1",
            "text": "She eats 2 of them.",
        },
        {"node_id": "0/A1.0/A1.0/A1.0", "type": "thought", "action": "A1", "text": "12 - 2 = 10."},
        {
            "node_id": "0/A1.0/A1.0/A1.0/A2.0",
            "type": "answer",
            "action": "A2",
            "text": "The answer is 10.",
            "answer": "10",
        },
    ]
    return {
        "node_id": steps[-1]["node_id"],
        "answer": "10",
        "reward": 0.5,
        "confidence": 0.8,
        "trajectory": steps,
    }


def test_masking_by_step_and_by_word() -> None:
    cfg = RStarConfig.fast(num_masks=4)  # the fast profile's rules (paper: test_verify_paper)
    by_step = masked_prefix(_candidate(), QUESTION, cfg)
    assert [m["cut"] for m in by_step] == [1, 2]
    assert by_step[0]["prefix"] == "Step 1: Ann has 3 * 4 = 12 apples.\nStep 2:"
    assert "The answer is 10" not in "".join(m["prefix"] for m in by_step)
    by_word = masked_prefix(_candidate(), QUESTION, RStarConfig.fast(num_masks=4, mask_unit="word"))
    total = by_word[0]["total"]
    assert total == len(
        "Step 1: Ann has 3 * 4 = 12 apples. Step 2: She eats 2 of them. "
        "Step 3: 12 - 2 = 10. Step 4: The answer is 10.".split()
    )
    assert [m["cut"] for m in by_word] == sorted({round(total * f) for f in (0.2, 0.3, 0.4, 0.5)})
    assert len(by_word[0]["prefix"].split()) == by_word[0]["cut"]


@pytest.mark.parametrize(
    ("answers", "loose", "mid", "strict", "maj"),
    [
        (["10", "10", "10", "10"], True, True, True, True),
        (["10", "10", "7", None], True, True, False, True),
        (["10", "7", "7", None], True, False, False, False),
        (["7", "7", None, None], False, False, False, False),
        (["10", "7", "8", None], True, False, False, True),
        ([], False, False, False, False),
    ],
)
def test_consistency_modes(answers, loose, mid, strict, maj) -> None:
    got = {
        m: is_consistent("10", answers, m, CHECKER)[0] for m in ("loose", "mid", "strict", "maj")
    }
    assert got == {"loose": loose, "mid": mid, "strict": strict, "maj": maj}


def test_verification_overturns_a_wrong_generator_majority() -> None:
    cfg = RStarConfig.fast(num_rollouts=8)  # score = reward x confidence, no self-verification
    gen_only = RStarChain(generator=wrong_majority_llm(), config=cfg).invoke(QUESTION)
    assert gen_only.answer == "12"
    result = RStarChain(
        generator=wrong_majority_llm(), discriminator=always(R10), config=cfg
    ).invoke(QUESTION)
    assert result.answer == GOLD
    assert result.verification.ran and not result.verification.fell_back
    assert result.verification.generator_answer == "12"
    for cand in result.candidates:
        assert cand.masks, "every candidate is checked"
        assert cand.consistent == (cand.answer == GOLD)
        assert cand.score == (
            pytest.approx(cand.reward * cand.confidence) if cand.consistent else 0.0
        )
    assert result.trajectory[-1].answer == GOLD


def test_fallback_when_nothing_is_consistent() -> None:
    cfg = RStarConfig(num_rollouts=4)
    result = RStarChain(
        generator=wrong_majority_llm(), discriminator=always(" The answer is 99."), config=cfg
    ).invoke(QUESTION)
    assert result.verification.fell_back
    assert result.answer == result.verification.generator_answer == "12"
    assert all(c.consistent is False for c in result.candidates)


def test_skip_when_generator_is_unanimous() -> None:
    disc = always(" The answer is 99.")
    result = RStarChain(
        generator=always(" The answer is 10."),
        discriminator=disc,
        config=RStarConfig(num_rollouts=3),
    ).invoke(QUESTION)
    assert result.verification.skipped and not result.verification.ran
    assert result.answer == "10"
    assert disc.calls == []


def test_one_discriminator_run_per_candidate_and_mask_in_one_superstep() -> None:
    disc = always(R10)
    result = RStarChain(
        generator=wrong_majority_llm(), discriminator=disc, config=RStarConfig.fast(num_rollouts=4)
    ).invoke(QUESTION)
    checks = sum(len(c.masks) for c in result.candidates)  # fast: every candidate on its own
    assert len(disc.calls) == checks


@pytest.mark.parametrize("mode", ["loose", "mid", "strict", "maj"])
def test_every_mode_runs_end_to_end(mode: str) -> None:
    cfg = RStarConfig(num_rollouts=4, consistency=mode, num_completions=2)
    result = RStarChain(generator=apples_llm(), discriminator=True, config=cfg).invoke(QUESTION)
    assert result.verification.mode == mode
    assert result.answer is not None


def test_verify_saved_candidates_offline() -> None:
    saved = RStarChain(
        generator=wrong_majority_llm(), config=RStarConfig.fast(num_rollouts=8)
    ).invoke(QUESTION)
    assert saved.answer == "12"
    out = verify_candidates(
        QUESTION, [c.model_dump() for c in saved.candidates], always(R10), RStarConfig()
    )
    assert out["answer"] == GOLD
    assert out["verification"]["ran"]
