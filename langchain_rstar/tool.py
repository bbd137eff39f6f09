"""``RStarTool``: the rStar search as a LangChain tool for agents.

An agent hands a self-contained reasoning sub-problem (a word problem, a calculation with
steps) to the tool; the tool runs a full rStar search and answers with the result, its
confidence and the winning reasoning in a few lines. The run nests in the agent's trace:
the agent's callbacks, tags and metadata are forwarded to the search.

Example:
    >>> from langchain_rstar import RStarChain, RStarTool
    >>> tool = RStarTool(chain=RStarChain(generator=my_llm))
    >>> tool.invoke({"question": "Tom has 3 apples and buys 5 more. How many now?"})
    'Answer: 8 (confidence 0.91) ...'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from langchain_rstar.answers import get_checker
from langchain_rstar.result import RStarResult

__all__ = ["RStarTool", "RStarToolInput", "format_result"]

DEFAULT_DESCRIPTION = (
    "Solves a self-contained reasoning problem (math word problem, multi-step arithmetic, "
    "logic question) by a careful tree search with self-verification, and returns the "
    "answer with a short justification and a confidence. Pass the complete problem, "
    "including every number and condition it needs, as `question`. Slower than answering "
    "directly: use it for sub-problems that need several reasoning steps."
)


class RStarToolInput(BaseModel):
    """Arguments of :class:`RStarTool`."""

    question: str = Field(
        description="The complete, self-contained problem to solve, with all its numbers."
    )
    num_rollouts: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description=(
            "Optional search budget (MCTS rollouts); more is slower and more reliable. "
            "Leave unset for the default."
        ),
    )


def _compress(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_result(
    result: RStarResult,
    *,
    max_steps: int = 6,
    max_step_chars: int = 160,
    task: str = "arithmetic",
) -> str:
    """A short, agent-readable account of a search: answer, confidence, reasoning.

    Args:
        result: the search result.
        max_steps: steps of the winning trajectory to keep (the last ones when cut).
        max_step_chars: characters per step.
        task: the answer family (to count candidates reaching an equivalent answer).
    """
    if result.answer is None:
        reason = result.stop_reason or "no candidate answer"
        lines = [f"No answer found (stop reason: {reason})."]
        if result.errors:
            lines.append(f"Last error: {_compress(result.errors[-1].get('error', ''), 200)}")
        return "\n".join(lines)
    verification = result.verification
    if verification.ran and not verification.fell_back:
        how = (
            "verified by a second model"
            if verification.verifier == "discriminator"
            else "verified by the model re-solving its own partial solutions"
        )
    elif verification.ran:
        how = "not confirmed by verification; generator majority"
    else:
        how = "generator majority vote"
    n_candidates = len(result.candidates)
    checker = get_checker(task)
    agreeing = sum(1 for c in result.candidates if checker.equivalent(c.answer, result.answer))
    lines = [
        f"Answer: {result.answer}",
        f"Confidence: {result.confidence:.2f} ({how}; {agreeing} of {n_candidates} "
        f"candidate solutions reach this answer; {result.usage.rollouts} rollouts)",
    ]
    steps = result.trajectory
    if steps:
        lines.append("Reasoning:")
        shown = steps[-max_steps:]
        if len(steps) > len(shown):
            lines.append(f"  ({len(steps) - len(shown)} earlier steps omitted)")
        start = len(steps) - len(shown) + 1
        for i, step in enumerate(shown, start):
            text = step.text
            if step.subquestion:
                text = f"{step.subquestion} -> {step.text}"
            lines.append(f"  {i}. {_compress(text, max_step_chars)}")
    return "\n".join(lines)


class RStarTool(BaseTool):
    """rStar as an agent tool: ``{"question", "num_rollouts"?}`` in, answer and reasons out.

    Args:
        chain: the :class:`~langchain_rstar.chain.RStarChain` that runs the search.
        name: tool name shown to the model (default ``rstar_solve``).
        description: tool description shown to the model.
        max_steps: steps of the winning trajectory included in the answer.
        response_format: ``"content"`` (text only) or ``"content_and_artifact"`` (the text,
            and the :class:`~langchain_rstar.result.RStarResult` as the ``ToolMessage``
            artifact).

    The agent's config (callbacks, tags, metadata) is forwarded, so the search's ``RStar``
    run appears nested under the tool run in the agent's trace. Invalid questions (empty,
    too long, binary) come back to the model as an error message, not an exception.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "rstar_solve"
    description: str = DEFAULT_DESCRIPTION
    args_schema: type[BaseModel] = RStarToolInput
    chain: Any = Field(description="The RStarChain that runs the search.", exclude=True)
    max_steps: int = 6
    response_format: Literal["content", "content_and_artifact"] = "content"
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True

    def _chain_for(self, num_rollouts: int | None) -> Any:
        if num_rollouts is None or num_rollouts == self.chain.config.num_rollouts:
            return self.chain
        return self.chain.with_overrides(num_rollouts=num_rollouts)

    def _validate(self, question: str) -> None:
        try:
            self.chain.check_question(question)
        except ValueError as exc:
            raise ToolException(f"Invalid question: {exc}") from exc

    def _output(self, result: RStarResult) -> Any:
        text = format_result(result, max_steps=self.max_steps, task=self.chain.config.task)
        if self.response_format == "content_and_artifact":
            return text, result
        return text

    @staticmethod
    def _child_config(config: RunnableConfig | None, run_manager: Any) -> RunnableConfig:
        callbacks = run_manager.get_child() if run_manager is not None else None
        return patch_config(config, callbacks=callbacks)

    def _run(
        self,
        question: str,
        num_rollouts: int | None = None,
        *,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> Any:
        self._validate(question)
        chain = self._chain_for(num_rollouts)
        result = chain.invoke(question, self._child_config(config, run_manager))
        return self._output(result)

    async def _arun(
        self,
        question: str,
        num_rollouts: int | None = None,
        *,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> Any:
        self._validate(question)
        chain = self._chain_for(num_rollouts)
        result = await chain.ainvoke(question, self._child_config(config, run_manager))
        return self._output(result)
