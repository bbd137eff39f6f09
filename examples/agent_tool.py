"""An agent that hands its math sub-problem to rStar (``RStarTool``).

The agent is LangChain's current agent, ``langchain.agents.create_agent`` (it replaces the
deprecated ``langgraph.prebuilt.create_react_agent``). Its tool is rStar: when the user's
request contains a word problem, the agent calls ``rstar_solve`` with the self-contained
problem, gets the answer with its justification, and finishes the request.

Run::

    # rStar on the embedded model; the agent's own "brain" is a SCRIPTED tool-calling
    # model (it always calls the tool once, then reports) unless --agent-model is given.
    python examples/agent_tool.py
    python examples/agent_tool.py --agent-model openai:gpt-4o-mini   # a real agent model
    python examples/agent_tool.py --scripted   # everything scripted: no model, no network

Scripted parts are canned and only show the wiring; they do not reason.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_rstar import RStarChain, RStarConfig, RStarTool
from langchain_rstar.testing import ScriptedLLM

REQUEST = (
    "Our class has 30 pupils. The school orders 3 boxes of 12 pencils and gives 5 pencils "
    "to the library. Are there enough pencils left for one per pupil?"
)
SUB_PROBLEM = (
    "A school orders 3 boxes of 12 pencils and gives 5 pencils away. How many pencils are left?"
)
SYSTEM_PROMPT = (
    "You are a helpful assistant. When a request contains a math word problem, pass the "
    "self-contained problem to the rstar_solve tool and use its answer."
)


# --------------------------------------------------------------------------------------
# Scripted pieces (no model): the agent's tool-calling model and rStar's generator
# --------------------------------------------------------------------------------------
class ScriptedToolCallingModel(BaseChatModel):
    """A canned chat model for the agent: first it calls ``tool_name`` with ``tool_args``,
    then, once the tool has answered, it writes a final reply quoting the tool's answer."""

    tool_name: str = "rstar_solve"
    tool_args: dict[str, Any] = {"question": SUB_PROBLEM}
    pupils: int = 30

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-calling"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolCallingModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tool_replies = [m for m in messages if isinstance(m, ToolMessage)]
        if not tool_replies:
            message = AIMessage(
                content="",
                tool_calls=[
                    {"name": self.tool_name, "args": dict(self.tool_args), "id": "call_rstar_1"}
                ],
            )
        else:
            text = str(tool_replies[-1].content)
            found = re.search(r"Answer:\s*(-?[\d.,]+)", text)
            if found is None:
                reply = f"I could not solve the sub-problem: {text}"
            else:
                left = float(found.group(1).replace(",", ""))
                verdict = "enough" if left >= self.pupils else "not enough"
                reply = (
                    f"{found.group(1)} pencils are left, so there are {verdict} pencils "
                    f"for {self.pupils} pupils."
                )
            message = AIMessage(content=reply)
        return ChatResult(generations=[ChatGeneration(message=message)])


def scripted_rstar_llm() -> ScriptedLLM:
    """A canned generator for :data:`SUB_PROBLEM` (right answer 31)."""
    right = " 3 * 12 = 36 pencils.\nStep 2: 36 - 5 = 31 pencils are left. The answer is 31."
    return ScriptedLLM(
        rules=[
            (r"36 pencils\.\nStep 2:$", [" 36 - 5 = 31 pencils are left. The answer is 31."]),
            (
                r"Sub-question 2: Now we can answer[^\n]*\nAnswer 2:$",
                [" 36 - 5 = 31. The answer is 31."],
            ),
            (
                r"Answer 1:( Let's work it out step by step\.)?$",
                [" 3 * 12 = 36. The answer is 36."],
            ),
            (r"Sub-question 1:$", [" How many pencils does the school order?"]),
            (r"Sub-question 2:$", [" Now we can answer the question: How many pencils are left?"]),
            (
                r"Rephrased question:$",
                [
                    " Condition 1: 3 boxes. Condition 2: 12 pencils per box. Condition 3: 5 "
                    "pencils are given away. Question: How many pencils are left?"
                ],
            ),
            (r"Step \d+:$", [right, " 3 * 12 = 36 pencils. The answer is 36.", right]),
        ],
        default=[" The answer is 31."],
    )


# --------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------
def build_agent(model: Any, chain: RStarChain) -> Any:
    """A LangChain agent (``create_agent``) whose one tool is rStar."""
    from langchain.agents import create_agent

    return create_agent(model, tools=[RStarTool(chain=chain)], system_prompt=SYSTEM_PROMPT)


def ask(agent: Any, request: str = REQUEST, config: dict[str, Any] | None = None) -> dict:
    """Run the agent on one request; returns its final state (``messages``)."""
    return agent.invoke({"messages": [HumanMessage(content=request)]}, config)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="An agent that calls rStar as a tool.")
    parser.add_argument("--scripted", action="store_true", help="scripted rStar model too")
    parser.add_argument("--agent-model", help="e.g. openai:gpt-4o-mini (init_chat_model)")
    parser.add_argument("--rollouts", type=int, default=8)
    args = parser.parse_args(argv)

    config = RStarConfig(num_rollouts=args.rollouts)
    if args.scripted:
        print("NOTE: scripted rStar model - canned answers, for illustration only.")
        chain = RStarChain(generator=scripted_rstar_llm(), discriminator=True, config=config)
    else:
        chain = RStarChain(config=config)  # the embedded model (downloads/loads lazily)
    if args.agent_model:
        from langchain.chat_models import init_chat_model

        model: Any = init_chat_model(args.agent_model)
    else:
        print("NOTE: scripted agent model - it always calls rstar_solve once.")
        model = ScriptedToolCallingModel()
    state = ask(build_agent(model, chain))
    for message in state["messages"]:
        message.pretty_print()
    return state


if __name__ == "__main__":
    main(sys.argv[1:])
