"""CoT and self-consistency baselines: prompts, sampling parameters, voting, accounting."""

from __future__ import annotations

import pytest

from langchain_rstar import RStarConfig
from langchain_rstar import prompts as P
from langchain_rstar.errors import BackendDeadError, QuestionFailed
from langchain_rstar.eval.baselines import (
    ChainOfThought,
    SelfConsistency,
    default_sc_samples,
    render_steps,
)
from langchain_rstar.testing import ScriptedLLM
from scripts import GOLD, QUESTION, apples_llm

FAST = {"max_retries": 0, "retry_backoff": 0.0}


def test_cot_prompt_is_the_search_prompt_and_greedy() -> None:
    llm = apples_llm()
    cot = ChainOfThought(llm, RStarConfig(max_tokens=77, **FAST))
    out = cot.solve(QUESTION)
    prompts, kwargs = llm.calls[-1]
    paper = P.solve_prefix("arithmetic", QUESTION, family="cot", exemplar_set="paper")
    assert prompts == [paper + "Step 1:"]
    assert kwargs["temperature"] == 0.0
    assert kwargs["max_tokens"] == 77
    assert kwargs["n"] == 1
    # the first scripted sample is the wrong "12"
    assert out.prediction == "12"
    assert out.answers == {"12": 1}
    assert out.trajectory == ["Step 1: 3 * 4 = 12 apples. The answer is 12."]
    assert out.usage["llm_calls"] == 1
    assert out.usage["samples"] == 1
    assert out.usage["prompt_tokens"] > 0 and out.usage["completion_tokens"] > 0


def test_cot_stops_on_blank_line() -> None:
    llm = ScriptedLLM(
        default=[" 2 + 2 = 4. The answer is 4.\n\nQuestion: next one. The answer is 9."]
    )
    out = ChainOfThought(llm, RStarConfig(**FAST)).solve("What is 2 plus 2?")
    assert out.prediction == "4"
    assert all("Question" not in s for s in out.trajectory)


def test_sc_majority_and_coverage_inputs() -> None:
    llm = apples_llm()
    sc = SelfConsistency(llm, RStarConfig(temperature=0.7, **FAST), num_samples=6)
    out = sc.solve(QUESTION)
    _, kwargs = llm.calls[-1]
    assert kwargs["n"] == 6 and kwargs["temperature"] == 0.7
    # samples cycle 12, 10, 7 -> two of each; ties go to the first seen
    assert out.answers == {"12": 2, "10": 2, "7": 2}
    assert out.prediction == "12"
    assert out.confidence == pytest.approx(2 / 6)
    assert GOLD in out.answers  # covered (pass@6)
    assert out.usage["samples"] == 6
    assert out.trajectory[0].startswith("Step 1:")


def test_sc_default_budget_follows_the_search_budget() -> None:
    assert default_sc_samples(RStarConfig()) == 160
    assert default_sc_samples(RStarConfig(num_rollouts=4, num_votes=4)) == 16
    assert default_sc_samples(RStarConfig(num_rollouts=1, num_votes=1)) == 4
    assert default_sc_samples(RStarConfig(num_rollouts=100, num_votes=10)) == 256
    sc = SelfConsistency(apples_llm(), RStarConfig(num_rollouts=2, num_votes=3))
    assert sc.num_samples == 6
    assert sc.settings()["num_samples"] == 6
    with pytest.raises(ValueError):
        SelfConsistency(apples_llm(), num_samples=0)


def test_failed_call_raises_question_failed_then_backend_dead() -> None:
    def boom(prompt: str, n: int) -> list[str]:
        raise RuntimeError("connection refused")

    cot = ChainOfThought(ScriptedLLM(responder=boom), RStarConfig(**FAST))
    for _ in range(2):
        with pytest.raises(QuestionFailed, match="connection refused"):
            cot.solve("What is 1 plus 1?")
    with pytest.raises(BackendDeadError):
        cot.solve("What is 1 plus 1?")


def test_render_steps() -> None:
    assert render_steps(" a.\nStep 2: b. The answer is 3.\n") == [
        "Step 1: a.",
        "Step 2: b. The answer is 3.",
    ]
    assert render_steps("") == []
