"""RStarChain end to end on scripted models, config validation, result round-trip."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from langchain_rstar import RStarChain, RStarConfig, RStarProgress, RStarResult
from langchain_rstar.search.budget import recursion_limit
from scripts import GOLD, QUESTION, apples_llm


def test_search_and_voting_find_the_answer_a_first_sample_misses() -> None:
    llm = apples_llm()
    # The model's first sample, and the root's direct-answer majority, say 12.
    first = llm.invoke("Question: " + QUESTION + "\nStep 1:", stop=["\n\n"])
    assert "The answer is 12" in first
    chain = RStarChain(generator=llm, discriminator=False, config=RStarConfig.fast(num_rollouts=8))
    result = chain.invoke(QUESTION)
    assert result.answer == GOLD
    direct = [c for c in result.candidates if c.node_id == "0/A2.0"]
    assert direct and direct[0].answer == "12" and direct[0].confidence == pytest.approx(0.4)
    # the winning trajectory belongs to the tree and ends with the answer
    assert result.trajectory and result.trajectory[-1].answer == GOLD
    assert all(step.node_id in result.tree for step in result.trajectory)
    assert result.errors == []
    assert result.usage.rollouts == 8
    assert result.usage.llm_calls > 0 and result.usage.completion_tokens > 0
    assert result.verification.mode == "none"


def test_shallow_search_is_wrong_where_deep_search_is_right() -> None:
    # Depth 1 only sees the root's children: the direct answer (12 at 0.4) and one-step
    # answers (12 and 7) vote for the wrong answer. Deeper search finds 10 with agreement.
    shallow = RStarChain(
        generator=apples_llm(), config=RStarConfig.fast(num_rollouts=16, max_depth=1)
    ).invoke(QUESTION)
    assert shallow.answer == "12"
    # an intermediate sub-answer cut off by the depth limit is not a candidate
    assert all(c.trajectory[-1].type in ("answer", "thought") for c in shallow.candidates)
    deep = RStarChain(generator=apples_llm(), config=RStarConfig.fast(num_rollouts=16)).invoke(
        QUESTION
    )
    assert deep.answer == GOLD
    assert deep.tree["0"]["visits"] == 16
    # backprop invariant: a parent's visits are at least the sum of its children's
    for node in deep.tree.values():
        kids = node.get("children") or []
        if kids:
            assert sum(deep.tree[k]["visits"] for k in kids) <= node["visits"]


def test_tree_records_are_plain_and_consistent() -> None:
    result = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=6)).invoke(QUESTION)
    for node_id, node in result.tree.items():
        assert node["id"] == node_id
        if node["parent"] is not None:
            parent = result.tree[node["parent"]]
            assert node["depth"] == parent["depth"] + 1
            assert node_id in parent["children"]
        if node["terminal"] and node.get("answer") is None:
            assert node["reward"] == 0.0
        if not node["terminal"]:
            assert node["reward"] == 0.0


def test_identical_sibling_texts_are_merged() -> None:
    # fast (dedupe_a1=True); paper keeps A1 duplicates (test_paper_rules.py)
    result = RStarChain(generator=apples_llm(), config=RStarConfig.fast(num_rollouts=4)).invoke(
        QUESTION
    )
    by_parent: dict[tuple[str, str], list[str]] = {}
    for node in result.tree.values():
        if node["parent"] is not None:
            key = (node["parent"], node["action"])
            by_parent.setdefault(key, []).append((node.get("subquestion") or "") + node["text"])
    for texts in by_parent.values():
        assert len(texts) == len(set(texts))


def test_result_json_round_trip() -> None:
    result = RStarChain(
        generator=apples_llm(), discriminator=True, config=RStarConfig(num_rollouts=4)
    ).invoke(QUESTION)
    again = RStarResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert again.candidates and again.candidates[0].masks


def test_dict_input_async_batch_and_stream() -> None:
    chain = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=4))
    assert chain.invoke({"question": QUESTION}).answer == GOLD
    assert asyncio.run(chain.ainvoke(QUESTION)).answer == GOLD
    assert [r.answer for r in chain.batch([QUESTION, {"question": QUESTION}])] == [GOLD, GOLD]
    assert [r.answer for r in asyncio.run(chain.abatch([QUESTION, QUESTION]))] == [GOLD, GOLD]
    events = list(chain.stream(QUESTION))
    assert [e.rollout for e in events if isinstance(e, RStarProgress)] == [0, 1, 2, 3]
    assert isinstance(events[-1], RStarResult) and events[-1].answer == GOLD


def test_sync_and_async_agree_and_seed_is_deterministic() -> None:
    chain = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=8, seed=3))
    a = chain.invoke(QUESTION)
    b = chain.invoke(QUESTION)
    c = asyncio.run(chain.ainvoke(QUESTION))
    assert a.tree == b.tree == c.tree
    assert a.answer == b.answer == c.answer


def test_rollout_batch_one_equals_sequential_and_waves_finish() -> None:
    seq = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=8)).invoke(QUESTION)
    wave = RStarChain(
        generator=apples_llm(), config=RStarConfig(num_rollouts=8, rollout_batch=4)
    ).invoke(QUESTION)
    assert seq.usage.rollouts == wave.usage.rollouts == 8
    assert wave.answer == GOLD
    assert wave.tree["0"]["visits"] == 8


def test_graph_shows_the_five_actions() -> None:
    chain = RStarChain(generator=apples_llm(), discriminator=True)
    mermaid = chain.draw_mermaid()
    for name in (
        "A1_one_step_thought",
        "A2_direct_answer",
        "A3_subquestion",
        "A4_reanswer",
        "A5_rephrase",
        "select",
        "backprop",
        "discriminate",
    ):
        assert name in mermaid
    nodes = set(chain.get_graph().nodes)
    assert "A3_subquestion" in nodes


def test_recursion_limit_comes_from_the_budget() -> None:
    small = recursion_limit(RStarConfig(num_rollouts=2))
    big = recursion_limit(RStarConfig(num_rollouts=64))
    assert big > small
    # 64 rollouts at max depth would exceed LangGraph's default limit of 25
    RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=40, max_depth=5)).invoke(
        QUESTION
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_rollouts": 0}, "num_rollouts"),
        ({"num_votes": -1}, "num_votes"),
        ({"exploration_weight": -0.5}, "exploration_weight"),
        ({"top_p": 1.5}, "top_p"),
        ({"mask_low": 0.6, "mask_high": 0.4}, "mask_low"),
        ({"consistency": "sometimes"}, "consistency"),
        ({"task": "poetry"}, "task"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RStarConfig(**kwargs)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "bad",
    ["", "   \n\t", None, 42, b"bytes", "a\x00b", "x" * 20_001, {"q": "no question key"}],
)
def test_bad_questions_fail_before_any_model_call(bad: object) -> None:
    llm = apples_llm()
    chain = RStarChain(generator=llm, config=RStarConfig(num_rollouts=2))
    with pytest.raises(ValueError):
        chain.invoke(bad)  # type: ignore[arg-type]
    assert llm.calls == []


def test_chat_model_and_model_without_n_are_supported() -> None:
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    llm = FakeListLLM(responses=[" 3 * 4 = 12 - 2 = 10. The answer is 10."])
    result = RStarChain(generator=llm, config=RStarConfig.fast(num_rollouts=2, num_votes=3)).invoke(
        QUESTION
    )
    assert result.answer == "10"
    # FakeListLLM ignores n: the sampler repeats the prompt to get the votes
    a2 = result.tree["0/A2.0"]
    assert a2["samples"] == 3
    chat = FakeListChatModel(responses=["The answer is 10."])
    result = RStarChain(generator=chat, config=RStarConfig(num_rollouts=2, num_votes=2)).invoke(
        QUESTION
    )
    assert result.answer == "10"


def test_with_overrides_rebuilds_samplers_and_validates() -> None:
    chain = RStarChain(
        generator=apples_llm(), discriminator=True, config=RStarConfig(num_rollouts=2)
    )
    other = chain.with_overrides(num_rollouts=3, max_retries=0, call_timeout=5.0, dead_after=2)
    assert other.config.num_rollouts == 3 and chain.config.num_rollouts == 2
    assert other._gen_sampler.max_retries == 0 and other._gen_sampler.call_timeout == 5.0
    assert other._gen_sampler.dead_after == 2
    assert other.discriminator is other.generator
    assert other.invoke(QUESTION).usage.rollouts == 3
    with pytest.raises(ValidationError, match="num_rollouts"):
        chain.with_overrides(num_rollouts=0)
