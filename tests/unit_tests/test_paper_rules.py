"""The ``paper`` profile's generator rules (issue #14), each pinned on scripted models.

Every rule of the authors' reference code that the ``paper`` profile reproduces gets a test
here, next to the ``fast`` behaviour it replaces (``RStarConfig.fast()``, pinned in full by
the golden files).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.answers import get_checker
from langchain_rstar.config import FAST_PROFILE
from langchain_rstar.result import Candidate
from langchain_rstar.sampling.sampler import SampleOutcome
from langchain_rstar.search.actions import (
    ExpandTask,
    is_final_subquestion,
    is_solution,
    legal_actions,
    run_action,
    solution_hint,
    split_question,
)
from langchain_rstar.search.budget import max_new_weight_per_rollout
from langchain_rstar.search.candidates import build_candidates, final_answer
from scripts import GOLD, QUESTION, apples_llm

PAPER = RStarConfig()
FAST = RStarConfig.fast()
CHECKER = get_checker("arithmetic")
COT_END = "\nAnswer: Let's think step by step."
#: The generator's paper-vs-fast fields (config.py, block "paper vs fast: generator").
GENERATOR_FIELDS = {
    "a1_answer_terminal",
    "dedupe_a1",
    "dedupe_a3",
    "a1_context",
    "a2_mode",
    "a3_final_test",
    "a4_mode",
    "a2_votes",
    "a3_final_votes",
    "a1_max_tokens",
    "a2_max_tokens",
    "a3_max_tokens",
    "a4_max_tokens",
    "a5_max_tokens",
    "candidate_pool",
    "vote_cache",
    "repetition_penalty",
}


def _root() -> dict[str, Any]:
    return {"id": "0", "parent": None, "type": "root", "depth": 0, "text": QUESTION}


def _sub(node_id: str, parent: str, depth: int, sq: str, text: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "parent": parent,
        "type": "subquestion",
        "depth": depth,
        "subquestion": sq,
        "text": text,
    }


def _run(action: str, path: list[dict[str, Any]], replies: list[list[list[str]]], cfg=PAPER):
    task: ExpandTask = {
        "node_id": path[-1]["id"],
        "action": action,
        "question": QUESTION,
        "path": path,  # type: ignore[typeddict-item]
        "rollout": 0,
        "config": cfg.model_dump(),
    }
    gen = run_action(action, task, cfg, CHECKER)
    calls = []
    call = next(gen)
    try:
        for reply in replies:
            calls.append(call)
            call = gen.send(SampleOutcome(texts=reply))
    except StopIteration as stop:
        return stop.value, calls
    raise AssertionError("action asked for more samples than scripted")


# --- profiles -----------------------------------------------------------------------------
def test_paper_is_the_default_and_every_fast_deviation_is_a_field_of_its_own() -> None:
    assert RStarConfig().profile == "paper" and RStarConfig.paper() == PAPER
    for name, value in FAST_PROFILE.items():
        assert name in RStarConfig.model_fields
        assert getattr(FAST, name) == value
        assert getattr(PAPER, name) != value, f"{name}: fast equals paper, not a deviation"
        if name in GENERATOR_FIELDS:
            assert "'fast'" in (RStarConfig.model_fields[name].description or "")
    assert GENERATOR_FIELDS <= set(FAST_PROFILE)
    # an explicit field wins over the profile, both ways
    assert RStarConfig.fast(dedupe_a1=False).dedupe_a1 is False
    assert RStarConfig.paper(a2_votes=None).votes_for("A2") == PAPER.num_votes


def test_paper_counts_and_caps_are_the_reference_script_settings() -> None:
    assert [PAPER.votes_for(k) for k in ("A2", "A3", "A3_final", "A4")] == [32, 10, 32, 10]
    caps = {k: PAPER.action_sampling_kwargs(k)["max_tokens"] for k in ("A1", "A2", "A3", "A4")}
    assert caps == {"A1": 256, "A2": 1024, "A3": 512, "A4": 1024}
    assert PAPER.action_sampling_kwargs("A5")["max_tokens"] == 512
    assert PAPER.action_sampling_kwargs("A3_ask")["max_tokens"] == 128
    # fast: num_votes everywhere, today's 256 / 128 caps
    assert {FAST.votes_for(k) for k in ("A2", "A3", "A3_final", "A4")} == {FAST.num_votes}
    assert FAST.action_sampling_kwargs("A2")["max_tokens"] == 256
    assert {FAST.action_sampling_kwargs(k)["max_tokens"] for k in ("A1", "A3", "A4", "A5")} == {128}
    # per action, a user sets what they want
    mine = RStarConfig.fast(a4_votes=7, a4_max_tokens=300)
    assert mine.votes_for("A4") == 7 and mine.action_sampling_kwargs("A4")["max_tokens"] == 300


# --- A1 -------------------------------------------------------------------------------------
def test_a1_answer_step_stays_open_with_reward_zero_and_duplicates_are_kept() -> None:
    samples = [" 3 * 4 = 12.", " 3 * 4 = 12.", " 12 - 2 = 10. The answer is 10."]
    out, calls = _run("A1", [_root()], [[samples]])
    assert calls[0].params["max_tokens"] == 256 and calls[0].cache is False
    kids = out["children"]
    assert [k["text"] for k in kids] == ["3 * 4 = 12.", "3 * 4 = 12.", samples[2].strip()]
    answer = kids[2]
    assert answer["answer"] == "10" and answer["confidence"] == pytest.approx(1 / 3)
    assert not answer["terminal"] and answer["reward"] == 0.0
    assert legal_actions(answer, PAPER) == ["A1", "A2"]  # it is expanded further
    assert is_solution(answer)  # and still a candidate solution
    # fast: merged duplicates, the answer step terminal with reward = agreeing share
    fast, _ = _run("A1", [_root()], [[samples]], FAST)
    assert len(fast["children"]) == 2 and fast["children"][1]["terminal"]
    assert fast["children"][1]["reward"] == pytest.approx(1 / 3)


def test_a1_answer_step_is_expanded_in_a_search_and_still_counted() -> None:
    result = RStarChain(
        generator=apples_llm(), discriminator=False, config=RStarConfig(num_rollouts=8)
    ).invoke(QUESTION)
    tree = result.tree
    open_answers = [
        n for n in tree.values() if n["type"] == "thought" and n.get("answer") is not None
    ]
    expanded = [n for n in open_answers if n["children"]]
    assert expanded, "no A1 answer step was expanded further"
    pool = {c.node_id for c in result.candidates}
    # the first answer step of a branch is in the pool even though it is not terminal
    assert any(n["id"] in pool and not n["terminal"] for n in expanded)
    assert result.answer == GOLD


def test_a1_below_sub_questions_shows_what_the_reference_shows() -> None:
    """Reference: below a sub-question, its sub-answers as steps (up to ". The answer is",
    sub-questions left out), the next step numbered two past them; below later thoughts,
    only those thoughts. fast: the whole path."""
    s1 = _sub("0/A3.0", "0", 1, "How many apples in the bags?", "3 * 4 = 12. The answer is 12.")
    s2 = _sub("s2", s1["id"], 2, "How many are eaten?", "She eats 2. The answer is 2.")
    re2 = {"id": "r2", "parent": "s2", "type": "reanswer", "depth": 3, "text": "2 apples."}
    re2["subquestion"] = s2["subquestion"]
    t1 = {"id": "t1", "parent": "r2", "type": "thought", "depth": 4, "text": "12 - 2 = 10."}
    step = [[" 12 - 2 = 10."] * 5]

    def prompt_tail(path: list[dict[str, Any]], cfg: RStarConfig = PAPER) -> str:
        _, calls = _run("A1", path, step, cfg)
        prompt = calls[0].prompts[0]
        return prompt[prompt.rfind("Question:") :]

    below_sub = prompt_tail([_root(), s1, s2])
    assert below_sub.endswith("\nStep 1: 3 * 4 = 12.\nStep 2: She eats 2.\nStep 4:"), below_sub
    assert "How many are eaten?" not in below_sub and "Sub-question" not in below_sub
    # an A4 re-answer replaces the sub-answer it re-answers
    assert prompt_tail([_root(), s1, s2, re2]).endswith("Step 2: 2 apples.\nStep 4:")
    below_thought = prompt_tail([_root(), s1, s2, re2, t1])
    assert below_thought.endswith("\nStep 4: 12 - 2 = 10.\nStep 5:"), below_thought
    assert "Step 1:" not in below_thought
    # fast: the whole path in order
    fast = prompt_tail([_root(), s1, s2, re2, t1], FAST)
    assert "Sub-question 2: How many are eaten?\nAnswer 2: 2 apples.\nStep 3: 12 - 2 = 10." in fast
    assert fast.endswith("Step 4:")
    # a path without sub-questions reads the same in both
    plain = [_root(), {"id": "t", "parent": "0", "type": "thought", "depth": 1, "text": "A."}]
    assert prompt_tail(plain).endswith("Step 1: A.\nStep 2:")
    assert prompt_tail(plain, PAPER.model_copy(update={"a1_context": "path"})).endswith(
        "Step 1: A.\nStep 2:"
    )


# --- A2 -------------------------------------------------------------------------------------
def test_a2_regenerates_a_whole_solution_with_the_path_as_hint() -> None:
    thought = {"id": "0/A1.0", "parent": "0", "type": "thought", "depth": 1}
    thought["text"] = "Ann has 3 * 4 = 12 apples."
    samples = [" 12 - 2 = 10. The answer is 10."] * 20 + [" The answer is 12."] * 12
    out, calls = _run("A2", [_root(), thought], [[samples]])
    (call,) = calls
    assert call.n == 32 and call.params["max_tokens"] == 1024 and call.cache is False
    prompt = call.prompts[0]
    assert prompt.endswith(f"Question: {QUESTION}\nHint: Ann has 3 * 4 = 12 apples.{COT_END}")
    assert "Step 2:" not in prompt  # not a continuation of the path
    (child,) = out["children"]
    assert child["answer"] == "10" and child["confidence"] == pytest.approx(20 / 32)
    assert child["terminal"] and child["reward"] == pytest.approx(20 / 32)
    # fast continues the path after "Step 2:" with num_votes samples
    _, fast_calls = _run("A2", [_root(), thought], [[samples[:10]]], FAST)
    assert fast_calls[0].prompts[0].endswith("Step 1: Ann has 3 * 4 = 12 apples.\nStep 2:")
    assert fast_calls[0].n == 10


def test_solution_hint_follows_the_reference_shapes() -> None:
    s1 = _sub("0/A3.0", "0", 1, "How many apples in bags?", "3 * 4 = 12. The answer is 12.")
    s2 = _sub("0/A3.0/A3.0", s1["id"], 2, "How many eaten?", "2. The answer is 2.")
    assert solution_hint([_root()]) is None
    assert solution_hint([_root(), s1, s2]) == (
        "Hint 1: How many apples in bags? 3 * 4 = 12. The answer is 12.\n"
        "Hint 2: How many eaten? 2. The answer is 2."
    )
    re_answer = {"id": "x", "type": "reanswer", "text": "4 * 3 = 12. The answer is 12."}
    assert solution_hint([_root(), s1, re_answer]) == (
        "Hint 1: How many apples in bags? 4 * 3 = 12. The answer is 12."
    )
    t1 = {"id": "t1", "type": "thought", "text": "A."}
    t2 = {"id": "t2", "type": "thought", "text": "B."}
    # thoughts after a sub-question: only the thoughts since it (as make_hint does)
    assert solution_hint([_root(), t1, s1, t2]) == "Hint: B."
    assert solution_hint([_root(), t1, t2]) == "Hint: A. B."


# --- A3 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("subquestion", "paper", "fast"),
    [
        ("Now we can answer the question: How many apples are left?", True, True),
        ("So, now we can answer: what is left?", True, False),  # contains, not starts with
        ("Then how many apples are left?", True, False),  # holds the question's last sentence
        ("HOW MANY APPLES ARE LEFT?", True, False),  # case-insensitive
        ("How many apples are in the bags?", False, False),
    ],
)
def test_a3_final_test_both_ways(subquestion: str, paper: bool, fast: bool) -> None:
    assert is_final_subquestion(subquestion, QUESTION, PAPER) is paper
    assert is_final_subquestion(subquestion, QUESTION, FAST) is fast


def test_split_question_at_the_last_period() -> None:
    assert split_question(QUESTION) == (
        "Ann has 3 bags with 4 apples in each bag. She eats 2 apples.",
        "How many apples are left?",
    )
    assert split_question("Is it raining.") == ("", "Is it raining")
    assert split_question("No period here?") == ("", "No period here?")


def test_a3_final_sub_answer_gets_32_votes_and_intermediate_ones_10() -> None:
    asked = [" How many apples in bags?", " Then how many apples are left?", " How many eaten?"]
    inter = [[" 12. The answer is 12."] * 10, [" 2. The answer is 2."] * 10]
    final = [[" 10. The answer is 10."] * 32]
    out, calls = _run("A3", [_root()], [[asked], inter, final])
    ask, first, second = calls
    assert ask.n == 3 and ask.params["max_tokens"] == 128
    assert (first.n, len(first.prompts), first.params["max_tokens"]) == (10, 2, 512)
    assert (second.n, len(second.prompts)) == (32, 1)
    assert second.prompts[0].endswith("Sub-question 1: Then how many apples are left?\nAnswer 1:")
    kids = {k["subquestion"]: k for k in out["children"]}
    done = kids["Then how many apples are left?"]
    assert done["final"] and done["terminal"] and done["samples"] == 32
    assert done["answer"] == "10" and done["reward"] == 1.0
    assert [k["id"] for k in out["children"]] == ["0/A3.0", "0/A3.1", "0/A3.2"]  # asked order
    assert not kids["How many eaten?"]["terminal"]
    # fast: one request, num_votes for every sub-question, only the prefix makes it final
    fast, fast_calls = _run("A3", [_root()], [[asked], [inter[0][0]] * 3], FAST)
    assert len(fast_calls) == 2 and fast_calls[1].n == 10 and len(fast_calls[1].prompts) == 3
    assert not any(k["final"] for k in fast["children"])


def test_a3_repeated_sub_questions_are_kept_in_paper_and_merged_in_fast() -> None:
    asked = [" How many apples in bags?", " How many apples in bags?", " How many eaten?"]
    inter = [[" 12. The answer is 12."] * 10] * 3
    out, calls = _run("A3", [_root()], [[asked], inter])
    assert len(calls[1].prompts) == 3  # each copy gets its own answer votes, as the reference
    assert [k["subquestion"] for k in out["children"]] == [
        "How many apples in bags?",
        "How many apples in bags?",
        "How many eaten?",
    ]
    assert len({k["id"] for k in out["children"]}) == 3
    fast, fast_calls = _run("A3", [_root()], [[asked], inter[:2]], FAST)
    assert len(fast_calls[1].prompts) == 2
    assert [k["subquestion"] for k in fast["children"]] == [
        "How many apples in bags?",
        "How many eaten?",
    ]


# --- A4 -------------------------------------------------------------------------------------
def test_a4_prompt_holds_the_question_context_and_the_sub_question_only() -> None:
    s1 = _sub("0/A3.0", "0", 1, "How many apples are in the bags?", "13. The answer is 13.")
    s2 = _sub("0/A3.0/A3.0", s1["id"], 2, "How many apples are eaten?", "3. The answer is 3.")
    votes = [[" She eats 2 apples. The answer is 2."] * 10]
    out, calls = _run("A4", [_root(), s1, s2], [votes])
    (call,) = calls
    assert call.n == 10 and call.params["max_tokens"] == 1024 and call.cache is False
    prompt = call.prompts[0]
    tail = prompt[prompt.rfind("Question:") :]
    context = "Ann has 3 bags with 4 apples in each bag. She eats 2 apples."
    assert tail == f"Question: {context} How many apples are eaten?{COT_END}"
    # earlier sub-questions and all sub-answers stay out
    assert "How many apples are in the bags?" not in tail and "13" not in prompt
    assert "The answer is 3." not in prompt
    (child,) = out["children"]
    assert child["type"] == "reanswer" and child["answer"] == "2" and child["samples"] == 10
    assert child["text"] == "She eats 2 apples. The answer is 2."
    # fast: one line after the earlier sub-questions, the old answer replaced
    _, fast_calls = _run("A4", [_root(), s1, s2], [votes], FAST)
    assert "Sub-question 1: How many apples are in the bags?" in fast_calls[0].prompts[0]


def test_a4_on_a_rephrased_question_marks_the_sub_question() -> None:
    reph = {"id": "0/A5.0", "parent": "0", "type": "rephrase", "depth": 1}
    reph["text"] = "Condition 1: Ann has 12 apples. Condition 2: She eats 2. Question: How many?"
    s1 = _sub("0/A5.0/A3.0", reph["id"], 2, "How many are eaten?", "2. The answer is 2.")
    _, calls = _run("A4", [_root(), reph, s1], [[[" The answer is 2."] * 10]])
    context = "Condition 1: Ann has 12 apples. Condition 2: She eats 2."
    assert (
        calls[0].prompts[0].endswith(f"Question: {context} Question: How many are eaten?{COT_END}")
    )


# --- every request of a search: votes, caps, stop strings, no cache ------------------------
def _kind(prompt: str) -> str:
    if prompt.endswith(COT_END):
        return "cot"
    for kind, pattern in (
        ("A1", r"Step \d+:$"),
        ("A3_ask", r"Sub-question \d+:$"),
        ("A3", r"Answer \d+:$"),
        ("A5", r"Rephrased question:$"),
    ):
        if re.search(pattern, prompt):
            return kind
    raise AssertionError(f"unknown prompt: {prompt[-80:]!r}")


def test_every_request_of_a_paper_search_has_its_actions_votes_and_cap() -> None:
    llm = apples_llm()
    RStarChain(generator=llm, discriminator=False, config=RStarConfig(num_rollouts=12)).invoke(
        QUESTION
    )
    seen: dict[str, set[tuple[int, int]]] = {}
    for prompts, kw in llm.calls:
        kinds = {_kind(p) for p in prompts}
        assert len(kinds) == 1
        seen.setdefault(kinds.pop(), set()).add((kw["n"], kw["max_tokens"]))
    # A2 (32 x 1024) and A4 (10 x 1024) share the chain-of-thought prompt
    assert seen["cot"] <= {(32, 1024), (10, 1024)} and (32, 1024) in seen["cot"]
    assert seen["A1"] == {(3, 256)}
    assert seen["A3_ask"] == {(3, 128)}
    assert seen["A3"] <= {(10, 512), (32, 512)} and (32, 512) in seen["A3"]
    assert seen["A5"] == {(1, 512)}


def test_vote_cache_off_draws_every_sample() -> None:
    def run(cfg: RStarConfig) -> tuple[Any, int]:
        llm = apples_llm()
        result = RStarChain(generator=llm, discriminator=False, config=cfg).invoke(QUESTION)
        return result, sum(len(p) * kw["n"] for p, kw in llm.calls)

    paper, drawn = run(RStarConfig(num_rollouts=12))
    cached, drawn_cached = run(RStarConfig(num_rollouts=12, vote_cache=True))
    # the same tree (the scripted model is deterministic), but the cache served repeats
    assert paper.tree == cached.tree
    assert drawn_cached < drawn
    # without the cache every requested sample reached the model
    assert paper.usage.samples == drawn


# --- the candidate pool -------------------------------------------------------------------
def _node(node_id: str, parent: str | None, kind: str, **fields: Any) -> dict[str, Any]:
    depth = node_id.count("/")
    record = {"id": node_id, "parent": parent, "type": kind, "depth": depth, "children": []}
    record.update({"answer": None, "terminal": False, "confidence": 0.0, "expanded": True})
    record.update(fields)
    return record


def _pool_tree() -> dict[str, dict[str, Any]]:
    nodes = {
        "0": _node("0", None, "root", children=["0/A1.0", "0/A2.0", "0/A3.0"]),
        # an open A1 answer step (paper) with a solution below it
        "0/A1.0": _node("0/A1.0", "0", "thought", answer="7", confidence=1 / 3),
        "0/A1.0/A2.0": _node(
            "0/A1.0/A2.0", "0/A1.0", "answer", answer="7", confidence=1.0, terminal=True
        ),
        "0/A2.0": _node("0/A2.0", "0", "answer", answer="10", confidence=0.9, terminal=True),
        # a sub-question cut by the depth limit: no solution, but a rollout's end node
        "0/A3.0": _node("0/A3.0", "0", "subquestion", answer="12", terminal=True),
    }
    nodes["0/A1.0"]["children"] = ["0/A1.0/A2.0"]
    return nodes


def test_candidate_pool_counts_rollout_end_nodes_by_frequency() -> None:
    nodes = _pool_tree()
    finished = [
        {"rollout": 0, "path": ["0", "0/A2.0"]},
        {"rollout": 1, "path": ["0", "0/A1.0", "0/A1.0/A2.0"]},
        {"rollout": 2, "path": ["0", "0/A1.0", "0/A1.0/A2.0"]},
        {"rollout": 3, "path": ["0", "0/A3.0"]},
        {"rollout": 4, "path": ["0", "0/A3.0"]},
    ]
    pool = build_candidates(nodes, CHECKER, finished, "tree_and_rollouts")
    freq = {c["node_id"]: c["frequency"] for c in pool}
    # tree: the first solution of each branch (0/A1.0 hides 0/A1.0/A2.0, as the reference's
    # find_valid_solution_nodes stops there); rollouts: one count per end node with an answer
    assert freq == {"0/A1.0": 1, "0/A2.0": 2, "0/A1.0/A2.0": 2, "0/A3.0": 2}
    # by frequency: 7 has 1 + 2 = 3 of 7 counts, 10 and 12 two each
    assert final_answer(pool, CHECKER, "frequency") == ("7", pytest.approx(3 / 7))
    terminal = build_candidates(nodes, CHECKER)
    assert {c["node_id"] for c in terminal} == {"0/A1.0", "0/A1.0/A2.0", "0/A2.0"}
    assert "frequency" not in terminal[0]
    assert final_answer(terminal, CHECKER) == ("7", pytest.approx((1 / 3 + 1) / (1 / 3 + 1.9)))


def test_frequency_and_confidence_rules_pick_different_answers() -> None:
    # one confident direct answer (10, confidence 1.0) against an answer reached by three
    # rollouts at low confidence (12): frequency picks 12, summed confidence picks 10
    nodes = {
        "0": _node("0", None, "root", children=["0/A2.0", "0/A3.0"]),
        "0/A2.0": _node("0/A2.0", "0", "answer", answer="10", confidence=1.0, terminal=True),
        "0/A3.0": _node(
            "0/A3.0", "0", "subquestion", answer="12", confidence=0.3, terminal=True, final=True
        ),
    }
    finished = [{"rollout": i, "path": ["0", "0/A3.0"]} for i in range(3)]
    paper = build_candidates(nodes, CHECKER, finished, "tree_and_rollouts")
    assert final_answer(paper, CHECKER, "frequency")[0] == "12"  # 4 of 5
    assert final_answer(build_candidates(nodes, CHECKER), CHECKER)[0] == "10"  # 1.0 vs 0.3


def test_the_generator_majority_of_a_paper_search_uses_the_pool() -> None:
    result = RStarChain(
        generator=apples_llm(), discriminator=False, config=RStarConfig(num_rollouts=8)
    ).invoke(QUESTION)
    total = sum(c.frequency or 0 for c in result.candidates)
    agree = sum(c.frequency or 0 for c in result.candidates if c.answer == result.answer)
    assert result.confidence == pytest.approx(agree / total)
    ends = [n for n in result.tree.values() if n.get("answer") is not None]
    assert total >= 1 and ends


def test_candidate_frequency_is_left_out_of_dumps_when_unset() -> None:
    plain = Candidate(node_id="a", answer="1", reward=0.0, confidence=1.0)
    assert "frequency" not in plain.model_dump()
    counted = Candidate(node_id="a", answer="1", reward=0.0, confidence=1.0, frequency=3)
    assert counted.model_dump()["frequency"] == 3
    assert Candidate.model_validate(counted.model_dump()) == counted


def test_early_stop_bound_counts_the_rollout_end_in_the_paper_pool() -> None:
    cfg = RStarConfig(num_votes=4, num_rollouts=16)
    fast = RStarConfig.fast(num_votes=4, num_rollouts=16)
    assert max_new_weight_per_rollout(cfg, {}) == 1.0  # an exhausted tree: rollouts still end
    assert max_new_weight_per_rollout(fast, {}) == 0.0
    assert max_new_weight_per_rollout(cfg) == max_new_weight_per_rollout(fast) + 1.0


# --- sampling: repetition penalty ---------------------------------------------------------
def test_repetition_penalty_reaches_the_backend_in_paper_only() -> None:
    for cfg, expected in ((RStarConfig(num_rollouts=3), {1.1}), (RStarConfig.fast(), {None})):
        llm = apples_llm()
        RStarChain(generator=llm, discriminator=llm, config=cfg.model_copy()).invoke(QUESTION)
        assert {kw.get("repetition_penalty") for _, kw in llm.calls} == expected


def test_vllm_sampling_params_carry_the_repetition_penalty() -> None:
    from langchain_rstar.llms.vllm_engine import build_sampling_params

    opts = {"n": 2, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0}
    params = build_sampling_params({**opts, "repetition_penalty": 1.1}, ["\n"], dict)
    assert params["repetition_penalty"] == 1.1
    assert "repetition_penalty" not in build_sampling_params(opts, ["\n"], dict)


def test_openai_compatible_server_gets_the_repetition_penalty_in_extra_body() -> None:
    import json as _json

    import httpx
    from langchain_openai import ChatOpenAI

    from langchain_rstar.sampling.sampler import Sampler
    from langchain_rstar.sampling.types import SampleCall

    bodies: list[dict[str, Any]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        body = _json.loads(request.content)
        bodies.append(body)
        n = int(body.get("n") or 1)
        choices = [
            {"index": i, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}
            for i in range(n)
        ]
        usage = {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": 1 + n}
        return httpx.Response(
            200,
            json={"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                  "choices": choices, "usage": usage},
        )  # fmt: skip

    model = ChatOpenAI(
        model="m",
        api_key="k",
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(respond)),
    )
    for cfg, expected in ((PAPER, 1.1), (FAST, None)):
        bodies.clear()
        call = SampleCall(prompts=["Q"], n=2, stop=["\n"], params=cfg.sampling_kwargs())
        Sampler(model).sample(call)
        assert bodies and all(b.get("repetition_penalty") == expected for b in bodies)
        assert all(b.get("top_k") == 40 for b in bodies)


def test_a_rollout_ending_on_a_step_without_a_stated_answer_votes_its_last_number() -> None:
    # do_eval.py reads every rollout's end node; with the reference extraction a plain step
    # ("... 12 apples.") gives its last number, with the marker extraction nothing
    nodes = {
        "0": _node("0", None, "root", children=["0/A1.0"]),
        "0/A1.0": _node("0/A1.0", "0", "thought", text="Ann has 3 * 4 = 12 apples.", terminal=True),
    }
    finished = [{"rollout": 0, "path": ["0", "0/A1.0"]}]
    reference = get_checker("arithmetic", extraction="reference")
    (cand,) = build_candidates(nodes, reference, finished, "tree_and_rollouts")
    assert (cand["node_id"], cand["answer"], cand["frequency"]) == ("0/A1.0", "12", 1)
    assert build_candidates(nodes, CHECKER, finished, "tree_and_rollouts") == []


def test_verification_counts_the_pools_frequency_as_copies() -> None:
    from langchain_rstar.search.verify import _count

    assert _count({"frequency": 3}) == 3 and _count({"frequency": None}) == 1
    assert _count({}) == 1
