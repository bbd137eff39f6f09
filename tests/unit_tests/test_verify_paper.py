"""The ``paper`` profile's verification rules (#14), each pinned on scripted models.

Reference: the authors' ``run_src/do_discriminate.py`` and ``rstar_utils.mask_solution_trace``
(gold-answer branches ignored). ``fast`` keeps the earlier rules (tests/unit_tests/
test_verify.py and the golden files pin those).
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_rstar import RStarChain, RStarConfig, verify_candidates
from langchain_rstar.answers import get_checker
from langchain_rstar.search.verify import cut_points, masked_prefix, pick_answer
from langchain_rstar.testing import ScriptedLLM
from scripts import QUESTION, apples_llm

CHECKER = get_checker("arithmetic")
PAPER = RStarConfig.paper()


def _answer_candidate(text: str, answer: str, node_id: str = "0/A2.0", **extra: Any) -> dict:
    """A candidate whose solution is one A2 node: its text renders as ``Step 1: <text>``."""
    step = {"node_id": node_id, "type": "answer", "action": "A2", "text": text, "answer": answer}
    return {
        "node_id": node_id,
        "answer": answer,
        "reward": 0.5,
        "confidence": 0.5,
        "trajectory": [step],
        **extra,
    }


# --------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "expected"),
    [(3, [1, 1, 2, 2]), (10, [2, 3, 4, 5]), (40, [8, 12, 16, 20]), (0, [0, 0, 0, 0])],
)
def test_paper_cuts_round_up_and_always_give_four(words: int, expected: list[int]) -> None:
    assert cut_points(words, 4, 0.2, 0.5, "ceil") == expected


def test_paper_cuts_round_before_ceil() -> None:
    # 0.1 + 2 * (0.4 - 0.1) / 3 == 0.30000000000000004: a bare ceil would cut 10 words at 4.
    assert 0.1 + 2 * (0.4 - 0.1) / 3 > 0.3
    assert cut_points(10, 4, 0.1, 0.4, "ceil") == [1, 2, 3, 4]


@pytest.mark.parametrize(("words", "expected"), [(3, [1, 2]), (10, [2, 3, 4, 5]), (2, [0, 1])])
def test_fast_cuts_are_distinct_rounded_and_short_of_the_end(
    words: int, expected: list[int]
) -> None:
    fast = RStarConfig.fast()
    got = cut_points(words, fast.num_masks, fast.mask_low, fast.mask_high, fast.mask_cuts)
    assert got == expected


@pytest.mark.parametrize(
    ("words", "cuts"), [(3, [1, 1, 2, 2]), (10, [2, 3, 4, 5]), (40, [8, 12, 16, 20])]
)
def test_paper_masks_of_3_10_and_40_word_candidates(words: int, cuts: list[int]) -> None:
    # "Step 1:" is two words of the rendered solution; the rest is the node's text.
    body = " ".join(f"w{i}" for i in range(words - 3)) + (" " if words > 3 else "") + "10."
    cand = _answer_candidate(body, "10")
    solution = f"Step 1: {body}"
    assert len(solution.split()) == words
    masks = masked_prefix(cand, QUESTION, PAPER)
    assert [m["cut"] for m in masks] == cuts
    assert all(m["total"] == words for m in masks)
    for mask in masks:
        # The first ``cut`` words, joined as the reference joins them (no trailing blank).
        assert mask["prefix"] == " ".join(solution.split()[: mask["cut"]])


def test_fast_masks_are_steps_with_a_cue() -> None:
    cand = _answer_candidate("Ann has 12 apples.\n12 - 2 = 10. The answer is 10.", "10")
    masks = masked_prefix(cand, QUESTION, RStarConfig.fast())
    # 2 steps: cuts at 0 and 1 step, each followed by the next step's cue.
    assert [m["prefix"] for m in masks] == ["Step 1:", "Step 1: Ann has 12 apples.\nStep 2:"]
    assert masks[0]["total"] == 2


# --------------------------------------------------------------------------------------
# What the discriminator sees
# --------------------------------------------------------------------------------------
def _recording(answer: str) -> ScriptedLLM:
    return ScriptedLLM(rules=[(r".", [f" so the answer is {answer}."])])


def _rephrased_candidate() -> dict:
    steps = [
        {
            "node_id": "0/A5.0",
            "type": "rephrase",
            "action": "A5",
            "text": "Condition 1: Ann has 12 apples. Question: how many remain after 2?",
        },
        {
            "node_id": "0/A5.0/A2.0",
            "type": "answer",
            "action": "A2",
            "text": "Ann has 3 * 4 = 12 apples and eats 2, so 12 - 2 = 10. The answer is 10.",
            "answer": "10",
        },
    ]
    return {
        "node_id": "0/A5.0/A2.0",
        "answer": "10",
        "reward": 0.5,
        "confidence": 0.5,
        "trajectory": steps,
    }


def test_paper_discriminator_prompt_holds_the_question_then_the_prefix() -> None:
    disc = _recording("10")
    other = _answer_candidate("3 + 4 = 7. The answer is 7.", "7", node_id="0/A2.1")
    verify_candidates(QUESTION, [_rephrased_candidate(), other], disc, PAPER)
    prompts = [p for prompts, _ in disc.calls for p in prompts]
    assert len(prompts) == 8, "always 4 prefixes per candidate"
    for prompt in prompts:
        tail = prompt[prompt.rfind("Question:") :]
        # The user's question, not the path's rephrasing, then the masked solution words.
        assert tail.startswith(f"Question: {QUESTION}\nStep 1:")
        assert "Condition 1" not in tail
    assert any(p.endswith("\nStep 1: Ann has 3") for p in prompts)  # 5 of its 23 words
    for _, kwargs in disc.calls:
        assert kwargs["max_tokens"] == 512
        assert kwargs["temperature"] == 1.0


def test_fast_discriminator_sees_the_rephrasing() -> None:
    disc = _recording("10")
    other = _answer_candidate("3 + 4 = 7. The answer is 7.", "7", node_id="0/A2.1")
    verify_candidates(QUESTION, [_rephrased_candidate(), other], disc, RStarConfig.fast())
    prompts = [p for prompts, _ in disc.calls for p in prompts]
    assert any("Question: Condition 1: Ann has 12 apples." in p for p in prompts)
    assert all(kw["max_tokens"] == RStarConfig.fast().max_tokens for _, kw in disc.calls)


def test_paper_verifies_each_distinct_solution_once_and_counts_copies() -> None:
    disc = _recording("10")
    same_a = _answer_candidate("12 - 2 = 10. The answer is 10.", "10", node_id="0/A2.0")
    same_b = _answer_candidate("12 - 2 = 10. The answer is 10.", "10", node_id="0/A1.0/A2.0")
    seven = _answer_candidate("3 + 4 = 7. The answer is 7.", "7", node_id="0/A2.1", frequency=3)
    out = verify_candidates(QUESTION, [same_a, same_b, seven], disc, PAPER)
    assert len(disc.calls) == 8, "two distinct solutions x 4 prefixes"
    by_id = {c["node_id"]: c for c in out["candidates"]}
    assert by_id["0/A2.0"]["consistent"] and by_id["0/A1.0/A2.0"]["consistent"]
    assert by_id["0/A1.0/A2.0"]["masks"] == by_id["0/A2.0"]["masks"]
    assert by_id["0/A2.1"]["consistent"] is False
    # Survivors: 2 copies of "10" (of 5 copies in all); "10" survives 2 of 2 -> rate 1;
    # share by confidence 0.5 + 0.5 over 2 surviving copies = 0.5 -> score 1.5.
    assert out["answer"] == "10"
    assert out["verification"]["scores"] == {"10": pytest.approx(1.5)}


def test_paper_drops_overlong_answers_before_verification() -> None:
    disc = _recording("10")
    long_answer = "1" * 101
    long = _answer_candidate(f"The answer is {long_answer}.", long_answer, node_id="0/A2.9")
    ten = _answer_candidate("12 - 2 = 10. The answer is 10.", "10")
    out = verify_candidates(QUESTION, [long, ten], disc, PAPER)
    assert len(disc.calls) == 4
    assert {c["node_id"]: c.get("consistent") for c in out["candidates"]} == {
        "0/A2.9": None,
        "0/A2.0": True,
    }


# --------------------------------------------------------------------------------------
# The final pick
# --------------------------------------------------------------------------------------
def _c(answer: str, *, count: int, confidence: float, reward: float, consistent: bool) -> dict:
    return {
        "answer": answer,
        "frequency": count,
        "confidence": confidence,
        "reward": reward,
        "consistent": consistent,
    }


def _picks(cands: list[dict]) -> dict[str, Any]:
    return {
        rule: pick_answer(cands, rule, CHECKER)["answer"]
        for rule in ("confidence_plus_survival", "frequency_plus_survival", "reward_x_confidence")
    }


def test_survival_rate_beats_a_high_reward_answer_that_mostly_failed() -> None:
    # "10": one trajectory survived (1 copy) and another failed (3 copies); both strong
    # (reward 0.9, confidence 0.9). "12": its one weak trajectory (0.5, 0.3) survived.
    cands = [
        _c("10", count=1, confidence=0.9, reward=0.9, consistent=True),
        _c("10", count=3, confidence=0.9, reward=0.9, consistent=False),
        _c("12", count=1, confidence=0.3, reward=0.5, consistent=True),
    ]
    # reward x confidence (the paper's text) sums survivors only: 10 -> 0.81, 12 -> 0.15.
    # frequency + survival: 10 -> 1/2 + 1/4 = 0.75, 12 -> 1/2 + 1/1 = 1.5.
    # confidence + survival (reference default): 10 -> 0.9/2 + 1/4 = 0.7, 12 -> 0.3/2 + 1 = 1.15.
    assert _picks(cands) == {
        "reward_x_confidence": "10",
        "frequency_plus_survival": "12",
        "confidence_plus_survival": "12",
    }
    scores = pick_answer(cands, "frequency_plus_survival", CHECKER)["scores"]
    assert scores == {"10": pytest.approx(0.75), "12": pytest.approx(1.5)}
    scores = pick_answer(cands, "confidence_plus_survival", CHECKER)["scores"]
    assert scores == {"10": pytest.approx(0.7), "12": pytest.approx(1.15)}


def test_frequency_and_confidence_shares_disagree() -> None:
    # Everything survives (rates 1): "10" has 2 copies at confidence 0.2, "12" 1 at 1.0.
    cands = [
        _c("10", count=2, confidence=0.2, reward=0.2, consistent=True),
        _c("12", count=1, confidence=1.0, reward=1.0, consistent=True),
    ]
    # frequency: 10 -> 2/3 + 1, 12 -> 1/3 + 1; confidence: 10 -> 0.4/3 + 1, 12 -> 1/3 + 1;
    # reward x confidence ignores copies: 10 -> 0.04, 12 -> 1.0.
    assert _picks(cands) == {
        "reward_x_confidence": "12",
        "frequency_plus_survival": "10",
        "confidence_plus_survival": "12",
    }


def test_skip_threshold_compares_the_reference_confidence() -> None:
    """paper: the top answer's reward-weighted weight over all copies (the reference's
    rc_criteria='reward' confidence) must pass skip_threshold, so one candidate whose own
    votes split (confidence 0.6) is still verified; frequency_plus_survival counts copies;
    fast (reward_x_confidence) compares the generator majority's confidence."""
    from langchain_rstar.search.verify import _skip_confidence

    lone = [_c("10", count=1, confidence=0.6, reward=0.6, consistent=None)]
    sure = [_c("10", count=2, confidence=1.0, reward=1.0, consistent=None)]
    split = sure + [_c("12", count=2, confidence=1.0, reward=1.0, consistent=None)]
    assert _skip_confidence(lone, PAPER, 1.0)[0] == pytest.approx(0.6)
    assert _skip_confidence(sure, PAPER, 1.0)[0] == pytest.approx(1.0)
    assert _skip_confidence(split, PAPER, 1.0)[0] == pytest.approx(0.5)
    freq = PAPER.model_copy(update={"final_score": "frequency_plus_survival"})
    assert _skip_confidence(lone, freq, 0.3)[0] == pytest.approx(1.0)
    assert _skip_confidence(lone, RStarConfig.fast(), 0.3)[0] == pytest.approx(0.3)
    # end to end: every sample says 10, so every candidate has confidence 1: skipped, and the
    # reason names what was compared
    sure_llm = ScriptedLLM(rules=[(r".", [" The answer is 10."])])
    result = RStarChain(
        generator=sure_llm, config=RStarConfig.paper(num_rollouts=2, retry_backoff=0.0)
    ).invoke(QUESTION)
    assert result.verification.skipped and not result.verification.ran
    assert "top answer's reward-weighted confidence 1.000" in result.verification.reason


def test_no_survivor_falls_back_to_the_largest_weight() -> None:
    cands = [
        _c("10", count=3, confidence=0.2, reward=0.5, consistent=False),
        _c("12", count=1, confidence=0.9, reward=0.5, consistent=False),
    ]
    # frequency: 3 copies of 10 beat 1 of 12; confidence: 0.9 beats 3 x 0.2 = 0.6;
    # reward x confidence names nothing (its caller keeps the generator majority).
    assert _picks(cands) == {
        "reward_x_confidence": None,
        "frequency_plus_survival": "10",
        "confidence_plus_survival": "12",
    }
    assert all(pick_answer(cands, r, CHECKER)["fell_back"] for r in ("frequency_plus_survival",))


def test_equivalent_answers_are_one_answer() -> None:
    cands = [
        _c("10", count=1, confidence=0.5, reward=0.5, consistent=True),
        _c("10.0", count=1, confidence=0.5, reward=0.5, consistent=False),
    ]
    pick = pick_answer(cands, "frequency_plus_survival", CHECKER)
    assert pick["answer"] == "10"
    assert pick["scores"] == {"10": pytest.approx(1.0 + 0.5)}


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="final_score"):
        pick_answer([], "best_guess", CHECKER)
    with pytest.raises(ValueError, match="final_score"):
        RStarConfig(final_score="best_guess")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Verification on by default, off on request, which model
# --------------------------------------------------------------------------------------
def test_default_chain_verifies_with_the_generator() -> None:
    gen = apples_llm()
    result = RStarChain(generator=gen, config=RStarConfig(num_rollouts=6)).invoke(QUESTION)
    v = result.verification
    assert v.verifier == "generator" and v.verifier_model == "ScriptedLLM"
    assert v.ran and v.rule == "confidence_plus_survival"
    assert any(c.masks for c in result.candidates)


def test_a_separate_discriminator_is_named() -> None:
    disc = _recording("10")
    result = RStarChain(
        generator=apples_llm(), discriminator=disc, config=RStarConfig(num_rollouts=6)
    ).invoke(QUESTION)
    assert result.verification.verifier == "discriminator"
    assert result.verification.ran and disc.calls


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"discriminator": False}, ""),
        ({"config": RStarConfig(num_rollouts=6, verify=False)}, "verify=False"),
        ({"config": RStarConfig.fast(num_rollouts=6)}, ""),
    ],
)
def test_opting_out(kwargs: dict[str, Any], reason: str) -> None:
    kwargs = {"config": RStarConfig(num_rollouts=6), **kwargs}
    result = RStarChain(generator=apples_llm(), **kwargs).invoke(QUESTION)
    v = result.verification
    assert v.verifier is None and v.verifier_model is None and not v.ran
    assert all(not c.masks for c in result.candidates)
    assert reason in v.reason
    assert result.answer == v.generator_answer


def test_fast_with_an_explicit_discriminator_verifies() -> None:
    result = RStarChain(
        generator=apples_llm(), discriminator=True, config=RStarConfig.fast(num_rollouts=6)
    ).invoke(QUESTION)
    assert result.verification.verifier == "generator" and result.verification.ran
    assert result.verification.rule == "reward_x_confidence"


def test_copies_keep_an_explicit_false_and_follow_the_profile() -> None:
    off = RStarChain(generator=apples_llm(), discriminator=False, config={"num_rollouts": 6})
    copy = off.with_overrides(num_rollouts=4)
    assert copy.discriminator is None
    assert copy.invoke(QUESTION).verification.verifier is None
    default = RStarChain(generator=apples_llm(), config={"num_rollouts": 6})
    assert default.discriminator is default.generator
    assert default.with_overrides(self_verify=False).discriminator is None
    shared = RStarChain(generator=apples_llm(), discriminator=True, config=RStarConfig.fast())
    assert shared.with_overrides(num_rollouts=2).discriminator is shared.generator
    other = _recording("10")
    named = RStarChain(generator=apples_llm(), discriminator=other)
    assert named.with_overrides(verify=True).discriminator is other


# --------------------------------------------------------------------------------------
# Every entry point follows the same default
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "verifier"),
    [([], "generator"), (["--no-verify"], None), (["--profile", "fast"], None)],
)
def test_rstar_solve_verifies_unless_told_not_to(
    flags: list[str], verifier: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_rstar import RStarResult, cli

    argv = ["solve", QUESTION, "--scripted", "--json", "--quiet", "--num-rollouts", "4", *flags]
    assert cli.main(argv) == 0
    result = RStarResult.model_validate_json(capsys.readouterr().out)
    assert result.verification.verifier == verifier
    assert result.verification.ran == (verifier is not None)
    assert result.answer == "10"


def test_chat_model_follows_the_default_and_per_call_profiles() -> None:
    from langchain_core.messages import HumanMessage

    from langchain_rstar import ChatRStar

    chat = ChatRStar(generator=apples_llm(), config={"num_rollouts": 4})
    assert chat.rstar_chain.discriminator is chat.rstar_chain.generator
    fast, _ = chat.prepare_call([HumanMessage(QUESTION)], {"profile": "fast"})
    assert fast.discriminator is None
    off = ChatRStar(generator=apples_llm(), discriminator=False, config={"num_rollouts": 4})
    paper, _ = off.prepare_call([HumanMessage(QUESTION)], {"profile": "paper"})
    assert off.rstar_chain.discriminator is None and paper.discriminator is None
    reply = chat.invoke(QUESTION)
    assert ChatRStar.result_of(reply).verification.verifier == "generator"


@pytest.mark.parametrize(("profile", "verifier"), [(None, "generator"), ("fast", None)])
def test_deployed_graph_follows_the_profile(
    monkeypatch: pytest.MonkeyPatch, profile: str | None, verifier: str | None
) -> None:
    from test_graphs_dir import load_graph_module

    monkeypatch.delenv("RSTAR_PROFILE", raising=False)
    env = {} if profile is None else {"RSTAR_PROFILE": profile}
    module = load_graph_module(monkeypatch, **env)
    out = module.make_graph().invoke({"question": "What is 6 times 7?", "num_rollouts": 3})
    assert out["result"]["verification"]["verifier"] == verifier


def test_eval_methods_say_whether_they_verify() -> None:
    from langchain_rstar.eval.harness import build_method

    config = RStarConfig(num_rollouts=2)
    assert build_method("rstar-gen", apples_llm(), config=config).chain.discriminator is None
    verified = build_method("rstar", apples_llm(), config=RStarConfig.fast(num_rollouts=2))
    assert verified.chain.discriminator is verified.chain.generator
