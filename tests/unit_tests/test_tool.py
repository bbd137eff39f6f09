"""RStarTool: LangChain's standard tool tests, the answer format, budgets, nesting, agents."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_rstar import RStarChain, RStarConfig, RStarResult, RStarTool
from langchain_rstar.tool import RStarToolInput, format_result
from scripts import GOLD, QUESTION, apples_llm

ROOT = Path(__file__).resolve().parents[2]


def scripted_chain(**overrides: Any) -> RStarChain:
    config = RStarConfig(num_rollouts=4, num_votes=3, num_masks=2, **overrides)
    return RStarChain(generator=apples_llm(), discriminator=True, config=config)


class TestRStarToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[RStarTool]:
        return RStarTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chain": scripted_chain()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"question": QUESTION, "num_rollouts": 2}


class TestRStarToolStandardInvoke(ToolsIntegrationTests):
    """The "integration" suite only invokes the tool: offline here (scripted model)."""

    @property
    def tool_constructor(self) -> type[RStarTool]:
        return RStarTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chain": scripted_chain()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"question": QUESTION}


def test_schema_names_the_question_and_an_optional_budget() -> None:
    tool = RStarTool(chain=scripted_chain())
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["question"]
    assert set(schema["properties"]) == {"question", "num_rollouts"}
    assert tool.name == "rstar_solve" and "reasoning" in tool.description
    with pytest.raises(ValueError):
        RStarToolInput(question="x", num_rollouts=0)


def test_answer_comes_with_confidence_and_compressed_reasoning() -> None:
    text = RStarTool(chain=scripted_chain()).invoke({"question": QUESTION})
    lines = text.splitlines()
    assert lines[0] == f"Answer: {GOLD}"
    assert re.match(r"Confidence: [01]\.\d\d \(verified by the model re-solving", lines[1])
    assert "4 rollouts" in lines[1]
    assert lines[2] == "Reasoning:"
    assert "12 - 2 = 10" in text


def test_long_trajectories_are_cut_to_the_last_steps() -> None:
    result = scripted_chain().invoke(QUESTION)
    step = result.trajectory[-1].model_copy(update={"text": "word " * 200})
    long = result.model_copy(update={"trajectory": [step] * 9})
    text = format_result(long, max_steps=3, max_step_chars=50)
    assert "(6 earlier steps omitted)" in text
    assert text.count("\n  7. ") == 1 and "\n  1. " not in text
    steps = [line for line in text.splitlines() if line.startswith("  ") and ". " in line]
    assert len(steps) == 3 and all(len(line) <= 56 and line.endswith("…") for line in steps)


def test_no_answer_is_reported_not_raised() -> None:
    empty = RStarResult(question=QUESTION, answer=None, stop_reason="backend_dead")
    assert format_result(empty) == "No answer found (stop reason: backend_dead)."


def test_budget_argument_sets_the_rollouts() -> None:
    tool = RStarTool(chain=scripted_chain(), response_format="content_and_artifact")
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": tool.name,
            "args": {"question": QUESTION, "num_rollouts": 2},
        }
    )
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call-1"
    assert isinstance(message.artifact, RStarResult)
    assert message.artifact.usage.rollouts == 2
    assert "2 rollouts" in message.content
    # the tool's own chain is left as it was
    assert tool.chain.config.num_rollouts == 4


def test_invalid_question_goes_back_to_the_model_as_an_error() -> None:
    tool = RStarTool(chain=scripted_chain())
    message = tool.invoke(
        {"type": "tool_call", "id": "c", "name": tool.name, "args": {"question": " "}}
    )
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "Invalid question" in message.content and "empty" in message.content


async def test_async_matches_sync() -> None:
    tool = RStarTool(chain=scripted_chain())
    assert await tool.ainvoke({"question": QUESTION}) == tool.invoke({"question": QUESTION})


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_search_run_nests_under_the_tool_run(mode: str) -> None:
    collector = RunCollectorCallbackHandler()
    tool = RStarTool(chain=scripted_chain())
    config = {"callbacks": [collector], "tags": ["agent-tag"], "metadata": {"session": "s1"}}
    if mode == "sync":
        tool.invoke({"question": QUESTION}, config)
    else:
        await tool.ainvoke({"question": QUESTION}, config)
    (tool_run,) = collector.traced_runs
    assert tool_run.name == "rstar_solve" and tool_run.run_type == "tool"
    (search,) = tool_run.child_runs
    assert search.name == "RStar"
    assert "agent-tag" in search.tags
    assert search.extra["metadata"]["session"] == "s1"


def test_chain_as_tool_returns_an_rstar_tool() -> None:
    chain = scripted_chain()
    tool = chain.as_tool(name="math_solver", description="Solves math.", max_steps=2)
    assert isinstance(tool, RStarTool) and isinstance(tool, BaseTool)
    assert (tool.name, tool.description, tool.max_steps) == ("math_solver", "Solves math.", 2)
    assert tool.chain is chain
    assert tool.invoke({"question": QUESTION}).startswith(f"Answer: {GOLD}")


# --------------------------------------------------------------------------------------
# examples/agent_tool.py: a LangChain agent calling rStar
# --------------------------------------------------------------------------------------
def load_example(name: str) -> ModuleType:
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"rstar_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_agent_example_calls_rstar_and_uses_its_answer() -> None:
    example = load_example("agent_tool")
    chain = RStarChain(
        generator=example.scripted_rstar_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=4, num_votes=3, num_masks=2),
    )
    agent = example.build_agent(example.ScriptedToolCallingModel(), chain)
    collector = RunCollectorCallbackHandler()
    state = example.ask(agent, config={"callbacks": [collector]})
    messages = state["messages"]
    calls = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    assert calls[0].tool_calls[0]["name"] == "rstar_solve"
    tool_reply = next(m for m in messages if isinstance(m, ToolMessage))
    assert tool_reply.content.startswith("Answer: 31")
    assert messages[-1].content == "31 pencils are left, so there are enough pencils for 30 pupils."

    # the search is traced inside the agent's trace, under the tool run
    def find(run: Any, name: str) -> Any:
        if run.name == name:
            return run
        for child in run.child_runs:
            found = find(child, name)
            if found is not None:
                return found
        return None

    (agent_run,) = collector.traced_runs
    tool_run = find(agent_run, "rstar_solve")
    assert tool_run is not None and tool_run.run_type == "tool"
    assert any(child.name == "RStar" for child in tool_run.child_runs)


def test_scripted_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("solve_scripted")
    result = example.main(["--rollouts", "6", "--tree", str(tmp_path / "tree.html")])
    out = capsys.readouterr().out
    assert "scripted model" in out and "rollout 6/6" in out
    assert result.answer == "23"
    assert (tmp_path / "tree.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
