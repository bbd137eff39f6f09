"""ChatRStar: rStar behind the chat-model interface, on the scripted apples model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_rstar import ChatRStar, RStarChain, RStarConfig
from langchain_rstar.chat_model import config_with_profile, question_from_messages
from langchain_rstar.testing import APPLES_QUESTION, apples_llm


def make(num_rollouts: int = 4, **kwargs: Any) -> ChatRStar:
    return ChatRStar(generator=apples_llm(), config={"num_rollouts": num_rollouts}, **kwargs)


class TestChatRStarStandard(ChatModelUnitTests):
    """LangChain's standard unit tests for chat models."""

    @property
    def chat_model_class(self) -> type[ChatRStar]:
        return ChatRStar

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"generator": apples_llm(), "config": {"num_rollouts": 2}}

    @property
    def has_tool_calling(self) -> bool:  # rStar answers; it cannot call tools
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    # The tool-calling and structured-output tests return early when these two are
    # False (overriding them is forbidden by langchain-tests): rStar cannot call tools,
    # and ChatRStar.bind_tools raises NotImplementedError (tested below).


class TestChatRStarStandardIntegration(ChatModelIntegrationTests):
    """LangChain's standard integration tests where they apply, on the scripted model
    (offline: invoke/stream/batch, conversations, usage metadata, stop, events). Tool
    calling, structured output and multimodal tests are skipped by langchain-tests
    because the properties below say so."""

    @property
    def chat_model_class(self) -> type[ChatRStar]:
        return ChatRStar

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"generator": apples_llm(), "config": {"num_rollouts": 2}}

    @property
    def has_tool_calling(self) -> bool:  # rStar answers; it cannot call tools
        return False

    @property
    def has_structured_output(self) -> bool:
        return False


def test_invoke_answers_with_trajectory_result_and_usage() -> None:
    chat = make()
    reply = chat.invoke([SystemMessage("be brief"), HumanMessage(APPLES_QUESTION)])
    assert isinstance(reply, AIMessage)
    lines = reply.content.splitlines()
    assert lines[0].startswith("Step 1:")
    assert lines[-1] == "The answer is 10."
    result = ChatRStar.result_of(reply)
    assert result.answer == "10" and result.question == APPLES_QUESTION
    assert result.usage.rollouts == 4
    assert reply.usage_metadata == {
        "input_tokens": result.usage.prompt_tokens,
        "output_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
    }
    assert result.usage.completion_tokens > 0
    assert reply.response_metadata["model_name"] == "rstar"
    assert reply.response_metadata["finish_reason"] == "stop"


def test_last_user_message_is_the_question() -> None:
    msgs = [HumanMessage("earlier question"), AIMessage("x"), HumanMessage(APPLES_QUESTION)]
    assert question_from_messages(msgs) == APPLES_QUESTION
    blocks = HumanMessage(content=[{"type": "text", "text": "What is 2+2?"}])
    assert question_from_messages([blocks]) == "What is 2+2?"


def test_stream_yields_reasoning_per_rollout_then_answer() -> None:
    chat = make(num_rollouts=3)
    chunks = list(chat.stream(APPLES_QUESTION))
    reasoning = [c for c in chunks if c.additional_kwargs.get("reasoning_content")]
    assert len(reasoning) == 3
    assert all(c.content == "" for c in reasoning)
    assert (
        "Rollout 1/3 done: best answer so far"
        in reasoning[0].additional_kwargs["reasoning_content"]
    )
    last = chunks[-1]
    assert last.content.endswith("The answer is 10.")
    assert last.usage_metadata and last.usage_metadata["output_tokens"] > 0
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.additional_kwargs["reasoning_content"].count("Rollout") == 3
    assert ChatRStar.result_of(full).answer == "10"


async def test_ainvoke_and_astream() -> None:
    # 3 rollouts: the apples script reaches 10 from 3 on in `paper` (at 2 the search has
    # not yet found the sub-question path that leads there)
    chat = make(num_rollouts=3)
    reply = await chat.ainvoke(APPLES_QUESTION)
    assert reply.content.endswith("The answer is 10.")
    chunks = [c async for c in chat.astream(APPLES_QUESTION)]
    assert sum(1 for c in chunks if c.additional_kwargs.get("reasoning_content")) == 3
    assert chunks[-1].content.endswith("The answer is 10.")


def test_per_call_num_rollouts_and_config() -> None:
    chat = make(num_rollouts=4)
    reply = chat.invoke(APPLES_QUESTION, num_rollouts=1)
    assert ChatRStar.result_of(reply).usage.rollouts == 1
    bound = chat.bind(rstar_config={"num_rollouts": 2})
    assert ChatRStar.result_of(bound.invoke(APPLES_QUESTION)).usage.rollouts == 2


@pytest.mark.parametrize(
    ("messages", "kwargs", "match"),
    [
        ([SystemMessage("only a system message")], {}, "needs a user message"),
        ([HumanMessage("   ")], {}, "no text"),
        ([HumanMessage(APPLES_QUESTION)], {"num_rollouts": 0}, "num_rollouts"),
        ([HumanMessage(APPLES_QUESTION)], {"profile": "turbo"}, "unknown profile"),
        ([HumanMessage(APPLES_QUESTION)], {"top_k": 3}, "does not take top_k"),
        ([HumanMessage("a\x00b")], {}, "control"),
    ],
)
def test_bad_input_fails_before_any_model_call(
    messages: list[Any], kwargs: dict[str, Any], match: str
) -> None:
    llm = apples_llm()
    chat = ChatRStar(generator=llm, config={"num_rollouts": 2})
    with pytest.raises(ValueError, match=match):
        chat.invoke(messages, **kwargs)
    assert llm.calls == []


def test_construction_forms_and_standard_params() -> None:
    chain = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=2))
    assert ChatRStar(chain=chain).rstar_chain is chain
    with pytest.raises(ValueError, match="either chain"):
        ChatRStar(chain=chain, generator=apples_llm())
    with pytest.raises(ValueError, match="needs chain"):
        ChatRStar()
    with pytest.raises(TypeError, match="RStarChain"):
        ChatRStar(chain="not a chain")
    tuned = ChatRStar(chain=chain, temperature=0.3, max_tokens=64, timeout=9, max_retries=1)
    cfg = tuned.rstar_chain.config
    assert (cfg.temperature, cfg.max_tokens, cfg.call_timeout, cfg.max_retries) == (
        0.3,
        64,
        9,
        1,
    )
    assert chain.config.temperature == 0.8  # the given chain is not changed
    assert ChatRStar(chain=chain, model="rstar-gemma")._get_ls_params()["ls_model_name"] == (
        "rstar-gemma"
    )


def test_bind_tools_raises_clear_error() -> None:
    with pytest.raises(NotImplementedError, match="RStarTool"):
        make().bind_tools([])


def test_profile_uses_the_config_classmethod(monkeypatch: pytest.MonkeyPatch) -> None:
    def fast(cls: type[RStarConfig], **fields: Any) -> RStarConfig:
        return cls(**{"num_votes": 3, **fields})

    monkeypatch.setattr(RStarConfig, "fast", classmethod(fast), raising=False)
    base = RStarConfig(num_rollouts=5)
    out = config_with_profile(base, "fast", {"seed": 7})
    assert (out.num_votes, out.num_rollouts, out.seed) == (3, 5, 7)
    with pytest.raises(ValueError, match="unknown profile"):
        config_with_profile(base, "model_validate")
    with pytest.raises(ValueError, match="unknown profile"):
        config_with_profile(base, "__init__")
    chat = make(num_rollouts=2)
    result = ChatRStar.result_of(chat.invoke(APPLES_QUESTION, profile="fast"))
    assert result.usage.rollouts == 2


def test_runs_as_the_model_of_a_tool_less_agent() -> None:
    from langchain.agents import create_agent

    agent = create_agent(model=make(num_rollouts=3), tools=[])
    out = agent.invoke({"messages": [HumanMessage(APPLES_QUESTION)]})
    reply = out["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert reply.content.endswith("The answer is 10.")


def test_works_as_a_step_in_lcel() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Solve it."), ("human", "{q}")])
    chain = prompt | make(num_rollouts=3) | StrOutputParser()
    assert chain.invoke({"q": APPLES_QUESTION}).endswith("The answer is 10.")


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.llm_run: UUID | None = None
        self.chain_parents: dict[str, UUID | None] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any):
        self.llm_run = self.llm_run or run_id

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        name = kw.get("name") or (serialized or {}).get("name")
        self.chain_parents.setdefault(str(name), kw.get("parent_run_id"))


def test_search_run_nests_under_the_chat_model_run() -> None:
    rec = _Recorder()
    make(num_rollouts=1).invoke(APPLES_QUESTION, config={"callbacks": [rec]})
    assert rec.llm_run is not None
    assert rec.chain_parents.get("RStar") == rec.llm_run
