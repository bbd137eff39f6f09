"""Chat models get chat prompts, and their preambles never enter the search tree."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar import prompts as P
from langchain_rstar.sampling.chat import (
    CHAT_RULES,
    CONTINUE_TURN,
    chat_request,
    clean_reply,
    continuation_mode,
    parse_prompt,
    to_messages,
)
from langchain_rstar.sampling.prompt import Prompt
from langchain_rstar.testing import APPLES_QUESTION, apples_llm

SOLVE = (
    P.solve_prefix("arithmetic", APPLES_QUESTION) + "Step 1: Ann has 3 * 4 = 12 apples.\nStep 2:"
)


class ChattyModel(BaseChatModel):
    """A chat-tuned stand-in for the scripted apples model.

    It rebuilds the completion prompt from the conversation (last ``Question:`` user turn
    plus the assistant prefix), takes the scripted continuation (cycling through the
    script's samples per prompt), and wraps it the way chat models do.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    style: Literal["preamble", "restate", "plain"] = "preamble"
    calls: list[tuple[list[BaseMessage], Any, dict[str, Any]]] = Field(default_factory=list)
    _script: Any = PrivateAttr(default_factory=apples_llm)
    _seen: Counter = PrivateAttr(default_factory=Counter)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "chatty"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self.calls.append((messages, stop, kwargs))
            user = max(
                i
                for i, m in enumerate(messages)
                if isinstance(m, HumanMessage) and str(m.content).startswith("Question:")
            )
            after = messages[user + 1 :]
            prefix = str(after[0].content) if after and isinstance(after[0], AIMessage) else ""
            text = f"{messages[user].content}\n{prefix}"
            k = self._seen[text]
            self._seen[text] += 1
        completion = self._script.samples_for(text, k + 1)[k]
        label = prefix.strip().splitlines()[-1] if prefix.strip() else ""
        if self.style == "preamble":
            reply = f"Sure! Let's solve it.\n{label}{completion}"
        elif self.style == "restate":
            reply = f"{prefix.strip()}{completion}"
        else:
            reply = completion.lstrip()
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def test_parse_prompt_round_trips_the_package_prompts() -> None:
    for text in (
        SOLVE,
        P.solve_prefix("math", "What is 2 + 2?"),
        P.rephrase_prompt("arithmetic", APPLES_QUESTION),
    ):
        parts = parse_prompt(text)
        assert parts.text() == text
        assert parts.user.startswith("Question:") and parts.shots
        assert all(u.startswith("Question:") for u, _ in parts.shots)
    parts = parse_prompt(SOLVE)
    assert parts.instruction.startswith("Solve each math word problem")
    assert parts.prefix == "Step 1: Ann has 3 * 4 = 12 apples.\nStep 2:"
    assert parse_prompt("just text") == Prompt(instruction="", user="just text")


def test_messages_turn_and_continue_modes() -> None:
    turn = to_messages(SOLVE, "turn")
    assert isinstance(turn[0], SystemMessage) and CHAT_RULES in turn[0].content
    assert "Solve each math word problem" in turn[0].content
    roles = [type(m).__name__ for m in turn[1:]]
    assert roles[: 2 * 4] == ["HumanMessage", "AIMessage"] * 4  # exemplars as turns
    assert turn[-3].content == f"Question: {APPLES_QUESTION}"
    assert turn[-2].content == "Step 1: Ann has 3 * 4 = 12 apples.\nStep 2:"
    assert turn[-1].content == CONTINUE_TURN
    cont = to_messages(SOLVE, "continue")
    assert isinstance(cont[-1], AIMessage) and cont[-1].content.endswith("Step 2:")
    no_prefix = to_messages(P.solve_prefix("arithmetic", APPLES_QUESTION), "turn")
    assert isinstance(no_prefix[-1], HumanMessage) and no_prefix[-1].content.startswith("Q")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "Sure! Let's solve it.\nStep 2: 12 - 2 = 10. The answer is 10.",
            " 12 - 2 = 10. The answer is 10.",
        ),
        ("Certainly, here's the next step:\n12 - 2 = 10.", " 12 - 2 = 10."),
        ("Step 1: Ann has 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10.", " 12 - 2 = 10."),
        ("Step 1:  Ann has 3 * 4 = 12 apples.\n Step 2: 12 - 2 = 10.", " 12 - 2 = 10."),
        ("Step 2: 12 - 2 = 10.", " 12 - 2 = 10."),
        (" 12 - 2 = 10.", " 12 - 2 = 10."),
        ("Okay so 12 - 2 = 10.", " Okay so 12 - 2 = 10."),  # content, not a preamble
        ("Let's subtract: 12 - 2 = 10.", " Let's subtract: 12 - 2 = 10."),
        ("Sure!", ""),
    ],
)
def test_clean_reply(reply: str, expected: str) -> None:
    assert clean_reply(reply, SOLVE) == expected


def test_mode_detection() -> None:
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI

    local = ChatOpenAI(model="m", base_url="http://127.0.0.1:8000/v1", api_key="x")
    assert continuation_mode(local) == "continue"
    assert continuation_mode(ChatOpenAI(model="gpt-4o-mini", api_key="x")) == "turn"
    assert continuation_mode(FakeListChatModel(responses=["x"])) == "turn"
    forced = FakeListChatModel(responses=["x"], metadata={"rstar_continuation": "prefill"})
    assert continuation_mode(forced) == "prefill"
    msgs, common, kwargs = chat_request(
        local, [SOLVE], {"stop": ["\n"]}, {"extra_body": {"top_k": 40}, "n": 3}
    )
    assert kwargs["extra_body"] == {
        "top_k": 40,
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    assert common["stop"] == ["\n"] and isinstance(msgs[0][-1], AIMessage)
    # a prompt with nothing to continue: the whole request takes the explicit-turn route
    bare = P.solve_prefix("arithmetic", APPLES_QUESTION)
    msgs, common, kwargs = chat_request(local, [SOLVE, bare], {"stop": ["\n"]}, {"n": 3})
    assert "extra_body" not in kwargs and common["stop"] is None
    assert msgs[0][-1].content == CONTINUE_TURN and isinstance(msgs[1][-1], HumanMessage)


def _texts(result: Any) -> list[str]:
    return [str(n.get("text", "")) for n in result.tree.values()] + [
        str(n.get("subquestion", "")) for n in result.tree.values()
    ]


@pytest.mark.parametrize("style", ["preamble", "restate", "plain"])
def test_chat_model_search_keeps_preambles_and_restated_prefixes_out_of_the_tree(
    style: str,
) -> None:
    model = ChattyModel(style=style)
    config = RStarConfig(num_rollouts=6, num_votes=3, seed=0)
    result = RStarChain(generator=model, config=config).invoke(APPLES_QUESTION)
    assert result.answer == "10"
    texts = _texts(result)
    assert not [t for t in texts if "Sure" in t or "Let's solve" in t]
    assert not [t for t in texts if t.lstrip().startswith(("Step ", "Sub-question "))]
    for step in result.trajectory:
        assert "Sure" not in step.text
    # the conversation had a system message and exemplar turns; no stop strings were sent
    messages, stop, _ = model.calls[0]
    assert isinstance(messages[0], SystemMessage) and stop is None


async def test_async_chat_path_cleans_too() -> None:
    model = ChattyModel(style="preamble")
    config = RStarConfig(num_rollouts=4, num_votes=3, seed=0)
    result = await RStarChain(generator=model, config=config).ainvoke(APPLES_QUESTION)
    assert result.answer == "10"
    assert not [t for t in _texts(result) if "Sure" in t]


def test_continue_mode_sends_the_prefix_as_assistant_message_with_stops() -> None:
    model = ChattyModel(style="plain", metadata={"rstar_continuation": "continue"})
    RStarChain(generator=model, config=RStarConfig(num_rollouts=2, num_votes=2)).invoke(
        APPLES_QUESTION
    )
    continued = [(m, s) for m, s, _ in model.calls if isinstance(m[-1], AIMessage)]
    assert continued, "some calls continue a partial trajectory"
    assert all(s for _, s in continued)  # stop strings go to the API in this mode
