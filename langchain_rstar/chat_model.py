"""``ChatRStar``: the rStar search behind LangChain's chat-model interface.

Why a chat model: most of the ecosystem (LCEL pipelines, ``create_agent``, UIs, the
OpenAI-compatible server in :mod:`langchain_rstar.server`) expects "something that takes
messages and returns an ``AIMessage``". Wrapping :class:`~langchain_rstar.chain.RStarChain`
as a :class:`~langchain_core.language_models.BaseChatModel` lets rStar go wherever a chat
model goes, with no glue code at the call site.

How messages map onto a search:

* the **last user message** is the question (system and earlier turns are ignored: an rStar
  search solves one self-contained problem);
* the reply's ``content`` is the chosen trajectory followed by ``The answer is X.``;
* the full :class:`~langchain_rstar.result.RStarResult` rides in
  ``response_metadata["rstar"]`` (as JSON-ready data; :meth:`ChatRStar.result_of` turns it
  back into the model);
* ``usage_metadata`` sums the tokens of every model call the search made;
* ``stream``/``astream`` yield one reasoning chunk per finished rollout
  (``additional_kwargs["reasoning_content"]``, the field vLLM, DeepSeek and LangChain's
  OpenAI client use for reasoning text) and the answer in the last chunk.

rStar cannot call tools, so :meth:`ChatRStar.bind_tools` raises ``NotImplementedError``;
inside an agent, give a tool-calling model :class:`~langchain_rstar.tool.RStarTool`, or use
``ChatRStar`` as the model of a tool-less ``create_agent`` or as a step in an LCEL chain.

Everything here is plain LangChain plumbing (``BaseChatModel`` hooks); the only
hand-written parts are the message-to-question mapping and the progress text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from langchain_rstar.chain import RStarChain, validate_question
from langchain_rstar.config import PROFILES, RStarConfig
from langchain_rstar.eval.harness import render_trajectory
from langchain_rstar.result import RStarProgress, RStarResult

__all__ = [
    "ChatRStar",
    "config_with_profile",
    "format_progress",
    "format_reply",
    "question_from_messages",
    "usage_metadata_of",
]

#: Per-call keyword arguments that change the search (``model.invoke(msgs, num_rollouts=4)``).
CALL_OPTIONS = ("num_rollouts", "profile", "rstar_config")


def question_from_messages(messages: Sequence[BaseMessage]) -> str:
    """The text of the last user message.

    Raises:
        ValueError: when there is no user message or it holds no text.
    """
    for message in reversed(messages):
        if isinstance(message, HumanMessage) or getattr(message, "type", "") == "human":
            text = message.text if isinstance(message.text, str) else message.text()
            if not text.strip():
                raise ValueError("the last user message has no text to solve")
            return text
    raise ValueError(
        "ChatRStar needs a user message: the last user (human) message is the question"
    )


def config_with_profile(
    config: RStarConfig, profile: str | None = None, overrides: Mapping[str, Any] | None = None
) -> RStarConfig:
    """``config`` switched to a named profile and with some fields changed (validated).

    A profile is a classmethod of :class:`RStarConfig` (``RStarConfig.paper(**fields)``,
    ``RStarConfig.fast(**fields)`` where this version has them); the fields the user set
    explicitly on ``config`` are carried over, then ``overrides`` win.

    Raises:
        ValueError: for an unknown profile or an invalid field (pydantic's
            ``ValidationError`` is a ``ValueError``).
    """
    fields = dict(overrides or {})
    if profile is None:
        if not fields:
            return config
        return RStarConfig.model_validate({**config.model_dump(), **fields})
    factory = getattr(RStarConfig, profile, None) if profile in PROFILES else None
    if not callable(factory):
        known = [name for name in PROFILES if callable(getattr(RStarConfig, name, None))]
        raise ValueError(
            f"unknown profile {profile!r}; this version offers: {', '.join(known) or 'none'}"
        )
    explicit = {k: getattr(config, k) for k in config.model_fields_set if k != "profile"}
    out = factory(**{**explicit, **fields})
    if not isinstance(out, RStarConfig):
        raise ValueError(f"unknown profile {profile!r}")
    return out


def format_progress(event: RStarProgress) -> str:
    """One line of reasoning text for a finished rollout."""
    best = "none yet" if event.best_answer is None else event.best_answer
    return (
        f"Rollout {event.rollout + 1}/{event.num_rollouts} done: best answer so far {best} "
        f"(confidence {event.confidence:.2f}); {event.completion_tokens} tokens generated, "
        f"{event.nodes} nodes.\n"
    )


def format_reply(result: RStarResult, include_trajectory: bool = True) -> str:
    """The reply text: the chosen trajectory's steps, then ``The answer is X.``"""
    if result.answer is None:
        reason = result.stop_reason or "no candidate answer"
        return f"No answer found (stop reason: {reason})."
    lines = render_trajectory(result.trajectory) if include_trajectory else []
    lines.append(f"The answer is {result.answer}.")
    return "\n".join(lines)


def usage_metadata_of(result: RStarResult) -> UsageMetadata:
    inp, out = result.usage.prompt_tokens, result.usage.completion_tokens
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    if result.usage.cached_prompt_tokens:
        usage["input_token_details"] = {"cache_read": result.usage.cached_prompt_tokens}
    return UsageMetadata(**usage)  # type: ignore[typeddict-item]


class ChatRStar(BaseChatModel):
    """rStar as a LangChain chat model.

    Args:
        chain: the :class:`RStarChain` to run; or give ``generator`` (and optionally
            ``discriminator``/``config``) and one is built.
        generator: the generator model (any LangChain LLM or chat model).
        discriminator: as in :class:`RStarChain` (None: the generator verifies in the
            ``paper`` profile, nobody in ``fast``; ``True``: the generator; ``False``: none).
        config: an :class:`RStarConfig` or a dict of its fields.
        model: the name reported in traces and responses (default ``rstar``).
        temperature, max_tokens, timeout, max_retries: when set, override the search's
            ``temperature``, per-step ``max_tokens``, ``call_timeout`` and ``max_retries``
            (LangChain's standard chat-model parameters). Note that at temperature 0 every
            vote is the same sample: the search degenerates to greedy decoding.
        stop: accepted for compatibility; rStar's prompts set their own stop strings.
        include_trajectory: put the reasoning steps before the answer in the reply.

    Per call: ``num_rollouts=``, ``profile=`` and ``rstar_config={...}`` keyword arguments
    (or ``.bind(...)``) change the search for that call; invalid values raise
    ``ValueError`` before any model call.

    Example:
        >>> from langchain_rstar.testing import apples_llm, APPLES_QUESTION
        >>> chat = ChatRStar(generator=apples_llm(), config={"num_rollouts": 4})
        >>> chat.invoke(APPLES_QUESTION).content.splitlines()[-1]
        'The answer is 10.'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    chain: Any = Field(default=None, exclude=True)
    generator: Any = Field(default=None, exclude=True)
    discriminator: Any = Field(default=None, exclude=True)
    config: Any = Field(default=None, exclude=True)
    model_name: str = Field(default="rstar", alias="model")
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    stop: list[str] | None = None
    streaming: bool = False
    include_trajectory: bool = True
    _chain: RStarChain = PrivateAttr()

    @model_validator(mode="after")
    def _build_chain(self) -> ChatRStar:
        overrides: dict[str, Any] = {}
        if self.temperature is not None:
            overrides["temperature"] = self.temperature
        if self.max_tokens is not None:
            overrides["max_tokens"] = self.max_tokens
        if self.timeout is not None:
            overrides["call_timeout"] = self.timeout
        if self.max_retries is not None:
            overrides["max_retries"] = self.max_retries
        if self.chain is not None:
            if not isinstance(self.chain, RStarChain):
                raise TypeError(f"chain must be an RStarChain, got {type(self.chain).__name__}")
            if self.generator is not None or self.config is not None:
                raise ValueError("give either chain= or generator=/config=, not both")
            chain = self.chain
        else:
            if self.generator is None:
                raise ValueError(
                    "ChatRStar needs chain=RStarChain(...) or generator=<a LangChain model> "
                    "(RStarChain() with no generator loads the embedded model)"
                )
            chain = RStarChain(
                generator=self.generator,
                discriminator=self.discriminator,
                config=self.config,
            )
        self._chain = chain.with_overrides(**overrides) if overrides else chain
        return self

    # -- identity -----------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "rstar-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "rstar_config": self._chain.config.model_dump()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="rstar",
            ls_model_name=kwargs.get("model", self.model_name),
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self._chain.config.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self._chain.config.max_tokens),
        )
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    @property
    def rstar_chain(self) -> RStarChain:
        """The search this model runs (with the standard-parameter overrides applied)."""
        return self._chain

    @staticmethod
    def result_of(message: BaseMessage) -> RStarResult:
        """The :class:`RStarResult` carried by a ``ChatRStar`` reply."""
        data = message.response_metadata.get("rstar")
        if data is None:
            raise ValueError("this message carries no rStar result")
        return RStarResult.model_validate(data)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Not supported: an rStar search answers, it does not call tools.

        Raises:
            NotImplementedError: always, with what to do instead.
        """
        raise NotImplementedError(
            "ChatRStar cannot call tools: an rStar search only answers the question. In an "
            "agent, give a tool-calling model langchain_rstar.RStarTool (chain.as_tool()), or "
            "use ChatRStar as a tool-less model / as a step in an LCEL chain."
        )

    # -- per-call set-up ----------------------------------------------------------------
    def prepare_call(
        self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> tuple[RStarChain, str]:
        """The chain (with per-call options applied) and the checked question of a call.

        Raises:
            ValueError: for a missing or invalid question or an invalid option, before any
                model call.
        """
        unknown = sorted(k for k in kwargs if k not in CALL_OPTIONS and k not in ("model",))
        if unknown:
            raise ValueError(
                f"ChatRStar does not take {', '.join(unknown)}; per-call options are "
                f"{', '.join(CALL_OPTIONS)}"
            )
        overrides = dict(kwargs.get("rstar_config") or {})
        if kwargs.get("num_rollouts") is not None:
            overrides["num_rollouts"] = kwargs["num_rollouts"]
        chain = self._chain
        if overrides or kwargs.get("profile") is not None:
            config = config_with_profile(chain.config, kwargs.get("profile"), overrides)
            chain = chain.with_overrides(**config.model_dump())
        question = question_from_messages(messages)
        return chain, validate_question(question, chain.config.max_question_chars)

    @staticmethod
    def _child(run_manager: Any) -> RunnableConfig:
        """Config that nests the search's run under this model's run in traces.

        LLM run managers have no ``get_child``; the equivalent is built from their
        inheritable handlers, tags and metadata with this run as the parent.
        """
        if run_manager is None:
            return {}
        from langchain_core.callbacks import AsyncCallbackManager, CallbackManager

        cls = (
            AsyncCallbackManager
            if isinstance(run_manager, AsyncCallbackManagerForLLMRun)
            else CallbackManager
        )
        child = cls(
            handlers=list(run_manager.inheritable_handlers),
            inheritable_handlers=list(run_manager.inheritable_handlers),
            parent_run_id=run_manager.run_id,
            tags=list(run_manager.inheritable_tags),
            inheritable_tags=list(run_manager.inheritable_tags),
            metadata=dict(run_manager.inheritable_metadata),
            inheritable_metadata=dict(run_manager.inheritable_metadata),
        )
        return {"callbacks": child}

    def _message(self, result: RStarResult) -> AIMessage:
        return AIMessage(
            content=format_reply(result, self.include_trajectory),
            response_metadata=self._metadata(result),
            usage_metadata=usage_metadata_of(result),
        )

    def _metadata(self, result: RStarResult) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "finish_reason": "stop" if result.answer is not None else "no_answer",
            "rstar": result.model_dump(mode="json"),
        }

    def _final_chunk(self, result: RStarResult) -> ChatGenerationChunk:
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=format_reply(result, self.include_trajectory),
                response_metadata=self._metadata(result),
                usage_metadata=usage_metadata_of(result),
                chunk_position="last",
            )
        )

    # -- execution ----------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chain, question = self.prepare_call(messages, kwargs)
        result = chain.invoke(question, self._child(run_manager))
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chain, question = self.prepare_call(messages, kwargs)
        result = await chain.ainvoke(question, self._child(run_manager))
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chain, question = self.prepare_call(messages, kwargs)
        for event in chain.stream(question, self._child(run_manager)):
            chunk = self._chunk(event)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chain, question = self.prepare_call(messages, kwargs)
        async for event in chain.astream(question, self._child(run_manager)):
            chunk = self._chunk(event)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _chunk(self, event: Any) -> ChatGenerationChunk:
        if isinstance(event, RStarResult):
            return self._final_chunk(event)
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="", additional_kwargs={"reasoning_content": format_progress(event)}
            )
        )
