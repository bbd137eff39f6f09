"""Legal actions, terminal rules, dedup and voting inside the actions."""

from __future__ import annotations

import pytest

from langchain_rstar import RStarConfig
from langchain_rstar.answers import get_checker
from langchain_rstar.sampling.types import SampleOutcome
from langchain_rstar.search.actions import (
    LEGAL_ACTIONS,
    ExpandTask,
    is_solution,
    legal_actions,
    run_action,
    until_answer,
)
from scripts import QUESTION

CFG = RStarConfig.fast()  # these tests pin the fast profile; test_paper_rules.py pins paper
CHECKER = get_checker("arithmetic")


def _root() -> dict:
    return {"id": "0", "parent": None, "type": "root", "depth": 0, "text": QUESTION}


def _task(action: str, path: list[dict], cfg: RStarConfig = CFG) -> ExpandTask:
    return {
        "node_id": path[-1]["id"],
        "action": action,
        "question": QUESTION,
        "path": path,
        "rollout": 0,
        "config": cfg.model_dump(),
    }


def _run(action: str, path: list[dict], replies: list[list[list[str]]], cfg: RStarConfig = CFG):
    gen = run_action(action, _task(action, path, cfg), cfg, CHECKER)
    calls = []
    call = next(gen)
    try:
        for reply in replies:
            calls.append(call)
            call = gen.send(SampleOutcome(texts=reply))
    except StopIteration as stop:
        return stop.value, calls
    raise AssertionError("action asked for more samples than scripted")


@pytest.mark.parametrize(
    ("node_type", "expected"),
    [
        ("root", ["A1", "A2", "A3", "A5"]),
        ("rephrase", ["A1", "A2", "A3"]),
        ("subquestion", ["A1", "A2", "A3", "A4"]),
        ("reanswer", ["A1", "A2", "A3"]),
        ("thought", ["A1", "A2"]),
        ("answer", []),
    ],
)
def test_legal_action_table(node_type: str, expected: list[str]) -> None:
    assert legal_actions({"type": node_type}, CFG) == expected
    assert list(LEGAL_ACTIONS[node_type]) == expected


def test_a1_closes_a3_and_a4_and_disable_flags() -> None:
    # after A1 (a thought) only A1/A2 are ever offered
    assert "A3" not in legal_actions({"type": "thought"}, CFG)
    assert "A4" not in legal_actions({"type": "thought"}, CFG)
    cfg = RStarConfig(disable_a1=True, disable_a5=True)
    assert legal_actions({"type": "root"}, cfg) == ["A2", "A3"]
    assert legal_actions({"type": "root", "terminal": True}, CFG) == []


def test_a2_majority_vote_and_confidence() -> None:
    samples = [" x. The answer is 12."] * 4 + [" y. The answer is 10."] * 3 + [" no answer"] * 3
    out, calls = _run("A2", [_root()], [[samples]])
    assert calls[0].n == CFG.num_votes
    (child,) = out["children"]
    assert child["answer"] == "12"
    assert child["confidence"] == pytest.approx(0.4)
    assert child["reward"] == pytest.approx(0.4)
    assert child["terminal"] and child["type"] == "answer"
    assert child["text"] == "x. The answer is 12."


def test_a1_dedupes_and_marks_answering_steps_terminal() -> None:
    samples = [" 3 * 4 = 12.", " 3 * 4 = 12. ", " 12 - 2 = 10. The answer is 10."]
    out, calls = _run("A1", [_root()], [[samples]])
    assert calls[0].n == CFG.num_a1_steps
    assert calls[0].stop == ["\n", "Question:"]
    kids = out["children"]
    assert [k["text"] for k in kids] == ["3 * 4 = 12.", "12 - 2 = 10. The answer is 10."]
    assert kids[0]["samples"] == 2 and not kids[0]["terminal"] and kids[0]["reward"] == 0.0
    assert kids[1]["terminal"] and kids[1]["answer"] == "10"
    assert kids[1]["confidence"] == pytest.approx(1 / 3)


def test_a3_asks_dedupes_then_votes_each_subquestion() -> None:
    asked = [
        " How many apples in bags?",
        " How many apples in bags?",
        " Now we can answer the question: How many are left?",
    ]
    answers = [
        [" 12. The answer is 12."] * 10,
        [" 10. The answer is 10."] * 7 + [" 9. The answer is 9."] * 3,
    ]
    out, calls = _run("A3", [_root()], [[asked], answers])
    assert calls[0].n == CFG.num_subquestions
    assert len(calls[1].prompts) == 2  # deduplicated before voting
    assert calls[1].prompts[0].endswith("Sub-question 1: How many apples in bags?\nAnswer 1:")
    first, final = out["children"]
    assert first["answer"] == "12" and not first["terminal"] and first["reward"] == 0.0
    assert final["final"] and final["terminal"]
    assert final["answer"] == "10" and final["reward"] == pytest.approx(0.7)


def test_a4_reanswers_parent_subquestion() -> None:
    sub = {
        "id": "0/A3.0",
        "parent": "0",
        "type": "subquestion",
        "depth": 1,
        "subquestion": "How many apples in bags?",
        "text": "13. The answer is 13.",
    }
    out, calls = _run("A4", [_root(), sub], [[[" 3 * 4 = 12. The answer is 12."] * 10]])
    prompt = calls[0].prompts[0]
    assert "Answer 1: 13." not in prompt  # the old answer is replaced, not repeated
    assert prompt.endswith(
        "Sub-question 1: How many apples in bags?\nAnswer 1: Let's work it out step by step."
    )
    (child,) = out["children"]
    assert child["type"] == "reanswer" and child["answer"] == "12" and child["confidence"] == 1.0


def test_a5_rephrases() -> None:
    out, calls = _run("A5", [_root()], [[[" Condition 1: Ann has 3 bags. Question: How many?"]]])
    assert calls[0].prompts[0].endswith("Rephrased question:")
    (child,) = out["children"]
    assert child["type"] == "rephrase" and not child["terminal"]


def test_depth_limit_makes_children_terminal() -> None:
    cfg = RStarConfig.fast(max_depth=1)
    out, _ = _run("A1", [_root()], [[[" 3 * 4 = 12."] * 3]], cfg)
    (child,) = out["children"]
    assert child["terminal"] and child["reward"] == 0.0 and child["depth"] == 1
    assert not is_solution(child)


def test_failed_samples_give_no_children_and_keep_errors() -> None:
    err = {"kind": "llm_call", "error": "RuntimeError: boom"}
    gen = run_action("A2", _task("A2", [_root()]), CFG, CHECKER)
    next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.send(SampleOutcome(texts=[None], errors=[err]))
    assert stop.value.value == {"children": [], "errors": [err]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            " 76 - 25 = 51. The answer is 51.\nStep 3: 51 + 2 = 53. The answer is 53.",
            " 76 - 25 = 51. The answer is 51.",
        ),
        ("The answer is 3.75 dollars. Then more words", "The answer is 3.75 dollars."),
        ("x = 2. The answer is 48 dollars", "x = 2. The answer is 48 dollars"),
        ("no answer here\nStep 2: still none", "no answer here\nStep 2: still none"),
        ("The answer is \\boxed{\\frac{1}{2}}. Extra", "The answer is \\boxed{\\frac{1}{2}}."),
    ],
)
def test_until_answer_cuts_after_the_first_answer(text: str, expected: str) -> None:
    assert until_answer(text) == expected


def test_a2_keeps_only_the_first_stated_answer() -> None:
    samples = [" 76 - 25 = 51. The answer is 51.\nStep 2: 51 * 2 = 102. The answer is 102."] * 10
    out, _ = _run("A2", [_root()], [[samples]])
    (child,) = out["children"]
    assert child["answer"] == "51" and child["text"] == "76 - 25 = 51. The answer is 51."


def test_a5_stop_strings_do_not_cut_an_exemplar_style_rephrasing() -> None:
    """The rephrase exemplars end with "Question: ..." on the same line; a stop string that
    occurs inside such a line would cut the question off the rephrased node (the bug: A5 used
    to stop at "Question:")."""
    _, calls = _run("A5", [_root()], [[[" Condition 1: Ann has 3 bags. Question: How many?"]]])
    prompt = calls[0].prompts[0]
    rephrasings = [
        line.split("Rephrased question:", 1)[1]
        for line in prompt.splitlines()
        if line.startswith("Rephrased question:") and line.split(":", 1)[1].strip()
    ]
    assert rephrasings and all("Question:" in r for r in rephrasings)
    for text in rephrasings:
        assert not any(stop in text for stop in calls[0].stop), (text, calls[0].stop)
