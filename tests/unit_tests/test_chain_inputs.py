"""PromptValue inputs, per-call configurable overrides, a checkpointer without thread_id."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from langchain_rstar import RStarChain, RStarConfig, validate_question
from scripts import GOLD, QUESTION, apples_llm

CFG = RStarConfig.fast(num_rollouts=4)


def _chain(**kwargs) -> RStarChain:
    return RStarChain(generator=apples_llm(), config=CFG, **kwargs)


def test_prompt_template_pipes_into_the_chain() -> None:
    result = (PromptTemplate.from_template("{q}") | _chain()).invoke({"q": QUESTION})
    assert result.question == QUESTION and result.answer == GOLD


def test_chat_prompt_template_pipes_its_last_human_message() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are careful."),
            ("human", "first question, ignored"),
            ("ai", "ok"),
            ("human", "{q}"),
        ]
    )
    result = (prompt | _chain()).invoke({"q": QUESTION})
    assert result.question == QUESTION and result.answer == GOLD


def test_prompt_value_rules() -> None:
    blocks = ChatPromptValue(
        messages=[HumanMessage(content=[{"type": "text", "text": "  What is 2 + 2? "}])]
    )
    assert validate_question(blocks) == "What is 2 + 2?"
    with pytest.raises(ValueError, match="no human message"):
        validate_question(ChatPromptValue(messages=[AIMessage(content="hi")]))
    with pytest.raises(ValueError, match="empty"):
        validate_question(PromptTemplate.from_template("{q}").invoke({"q": "   "}))


def test_configurable_overrides_change_the_search_for_one_call() -> None:
    chain = _chain()
    two = chain.invoke(QUESTION, {"configurable": {"rstar": {"num_rollouts": 2}}})
    assert two.usage.rollouts == 2
    # the chain itself is unchanged; other configurable keys are left alone
    assert chain.invoke(QUESTION, {"configurable": {"user_id": "u1"}}).usage.rollouts == 4
    three = asyncio.run(chain.ainvoke(QUESTION, {"configurable": {"rstar": {"num_rollouts": 3}}}))
    assert three.usage.rollouts == 3
    streamed = list(chain.stream(QUESTION, {"configurable": {"rstar": {"num_rollouts": 1}}}))
    assert streamed[-1].usage.rollouts == 1


def test_unknown_or_invalid_override_is_an_error_before_any_model_call() -> None:
    llm = apples_llm()
    chain = RStarChain(generator=llm, config=CFG)
    with pytest.raises(ValueError, match=r"unknown RStarConfig field\(s\) \['num_rolouts'\]"):
        chain.invoke(QUESTION, {"configurable": {"rstar": {"num_rolouts": 2}}})
    with pytest.raises(ValidationError, match="num_rollouts"):
        chain.invoke(QUESTION, {"configurable": {"rstar": {"num_rollouts": 0}}})
    with pytest.raises(ValueError, match="must be a mapping"):
        chain.invoke(QUESTION, {"configurable": {"rstar": 3}})
    assert llm.calls == []


def test_checkpointer_without_thread_id_gives_langgraphs_error() -> None:
    llm = apples_llm()
    chain = RStarChain(generator=llm, config=CFG, checkpointer=InMemorySaver())
    with pytest.raises(ValueError, match="Checkpointer requires .*thread_id"):
        chain.invoke(QUESTION)
    with pytest.raises(ValueError, match="Checkpointer requires .*thread_id"):
        asyncio.run(chain.ainvoke(QUESTION, {"configurable": {"user": "x"}}))
    assert llm.calls == []
    ok = chain.invoke(QUESTION, {"configurable": {"thread_id": "t1"}})
    assert ok.answer == GOLD
