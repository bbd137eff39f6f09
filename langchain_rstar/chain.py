"""``RStarChain``: the rStar search as a LangChain ``Runnable[str, RStarResult]``.

Inputs: a question string, a mapping with a ``question`` key, or a LangChain ``PromptValue``
(so ``PromptTemplate | chain`` and ``ChatPromptTemplate | chain`` work: a string prompt is
the question; of a chat prompt, the last human message is).

Per-call overrides: ``config={"configurable": {"rstar": {"num_rollouts": 4}}}`` changes
:class:`RStarConfig` fields for one call (validated before any model call; an unknown field
is an error). Only the ``"rstar"`` key of ``configurable`` is read: LangGraph and LangSmith
keep their own keys there (``thread_id``, ``checkpoint_ns``, ...), and a model in the same
pipeline may have configurable fields named like ours (``temperature``), so a bare field name
is never taken as an override.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Union

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import HumanMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config
from langchain_core.runnables.graph import Graph
from langchain_core.tracers.context import run_collector_var
from langgraph.types import Overwrite
from pydantic import BaseModel, Field

from langchain_rstar.config import RStarConfig
from langchain_rstar.llms import default_llm
from langchain_rstar.result import (
    Candidate,
    RStarProgress,
    RStarResult,
    Step,
    Usage,
    Verification,
)
from langchain_rstar.sampling.sampler import (
    Sampler,
    backend_dead_errors,
    raise_if_backend_dead,
    scoped_config,
)
from langchain_rstar.search._untraced import QUIET_KEY, manager_is_quiet
from langchain_rstar.search.budget import recursion_limit
from langchain_rstar.search.candidates import (
    build_candidates,
    checker_for,
    final_answer,
    winning_candidate,
)
from langchain_rstar.search.graph import build_graph
from langchain_rstar.search.state import ROOT_ID
from langchain_rstar.search.verify import model_label
from langchain_rstar.tool import RStarTool

__all__ = ["RStarChain", "RStarInput", "validate_question"]

RStarInputType = Union[str, Mapping[str, Any], PromptValue]  # noqa: UP007 - a runtime alias

#: The ``configurable`` key holding per-call :class:`RStarConfig` overrides.
OVERRIDES_KEY = "rstar"

# Bidirectional embeddings, overrides and isolates: they make text display in another order
# than the model reads it ("Trojan Source"); the marks LRM/RLM/ALM are ordinary RTL text.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that render as nothing (besides whitespace and format characters).
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")


def _invisible(c: str) -> bool:
    """Whitespace, a format character (ZWSP, ZWJ, BOM, soft hyphen...), a variation selector
    or a blank-looking letter: a question made only of these shows nothing."""
    if c.isspace() or c in _BLANK_LOOKING:
        return True
    category = unicodedata.category(c)
    if category == "Cf":
        return True
    return category == "Mn" and (
        "\ufe00" <= c <= "\ufe0f" or "\U000e0100" <= c <= "\U000e01ef" or "\u180b" <= c <= "\u180f"
    )


class RStarInput(BaseModel):
    """Input schema: the question to solve."""

    question: str = Field(description="The question to solve.")


def validate_question(value: Any, max_chars: int = 20_000) -> str:
    """Check a question before any model call.

    Rules: a ``str`` (or a mapping with a ``question`` string, or a ``PromptValue``: a
    string prompt's text, or a chat prompt's last human message); not empty, whitespace
    only or invisible only (zero-width spaces, BOMs, joiners, variation selectors,
    blank-looking fillers); at most ``max_chars`` characters; no NUL bytes or other control
    characters except tab and newlines, no bidirectional embedding/override/isolate controls
    (U+202A-E, U+2066-9: text that displays differently from what the model reads), and no
    lone surrogates (binary data, or bytes decoded with ``surrogateescape``, is rejected,
    not cleaned). Surrounding whitespace is stripped and the text is NFC-normalised.

    Raises:
        ValueError: with the reason, when the question breaks a rule.
    """
    if isinstance(value, PromptValue):
        value = _prompt_value_text(value)
    if isinstance(value, Mapping):
        if "question" not in value:
            raise ValueError(
                f"input mapping needs a 'question' key; got keys {sorted(map(str, value))}"
            )
        value = value["question"]
    if isinstance(value, (bytes, bytearray)):
        raise ValueError("the question must be text (str), not bytes")
    if not isinstance(value, str):
        raise ValueError(f"the question must be a str, got {type(value).__name__}")

    def too_long(length: int) -> ValueError:
        return ValueError(
            f"the question has {length} characters; the limit is {max_chars} "
            "(RStarConfig.max_question_chars)"
        )

    if len(value) > 4 * max_chars and len(value.strip()) > 4 * max_chars:
        raise too_long(len(value.strip()))  # far too long: no need to normalise it first
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValueError("the question is empty")
    if len(text) > max_chars:
        raise too_long(len(text))
    bad = [
        c
        for c in text
        if (unicodedata.category(c) == "Cc" and c not in "\t\n\r")
        or unicodedata.category(c) == "Cs"
    ]
    if bad:
        raise ValueError(
            f"the question contains {len(bad)} control or surrogate character(s) such as "
            f"{bad[0]!r}; binary or control characters are not accepted"
        )
    bidi = [c for c in text if c in _BIDI_CONTROLS]
    if bidi:
        raise ValueError(
            f"the question contains {len(bidi)} bidirectional override/embedding/isolate "
            f"control(s) such as {bidi[0]!r} (U+{ord(bidi[0]):04X}); they make the text "
            "display differently from what the model reads"
        )
    if all(map(_invisible, text)):
        raise ValueError(
            f"the question is empty: its {len(text)} character(s) are all invisible "
            f"(such as U+{ord(text[0]):04X}: zero-width, format or blank characters)"
        )
    return text


def _prompt_value_text(value: PromptValue) -> str:
    """The question in a prompt value: a chat prompt's last human message, else its text."""
    if not isinstance(value, ChatPromptValue):
        return value.to_string()
    for message in reversed(value.messages):
        if isinstance(message, HumanMessage):
            content = message.content
            if isinstance(content, str):
                return content
            return "\n".join(
                part if isinstance(part, str) else str(part.get("text", ""))
                for part in content
                if isinstance(part, str) or part.get("type") == "text"
            )
    raise ValueError("the chat prompt has no human message to take the question from")


def _call_overrides(config: RunnableConfig) -> dict[str, Any]:
    """The per-call config overrides (``configurable["rstar"]``), checked to be a mapping."""
    raw = (config.get("configurable") or {}).get(OVERRIDES_KEY)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f'configurable["{OVERRIDES_KEY}"] must be a mapping of RStarConfig fields, got '
            f"{type(raw).__name__}"
        )
    unknown = sorted(set(raw) - set(RStarConfig.model_fields))
    if unknown:
        raise ValueError(
            f'configurable["{OVERRIDES_KEY}"] has unknown RStarConfig field(s) {unknown}'
        )
    return dict(raw)


class RStarChain(Runnable[RStarInputType, RStarResult]):
    """rStar: MCTS over five reasoning actions plus mutual verification, as a Runnable.

    Args:
        generator: any LangChain ``BaseLLM`` or ``BaseChatModel``; None uses the embedded
            default small model (:func:`langchain_rstar.llms.default_llm`).
        discriminator: the model that verifies candidates. None (default): the generator
            verifies its own candidates (``RStarConfig.self_verify``, on in the ``paper``
            profile; the ``fast`` profile then skips verification). ``True``: the generator
            verifies. ``False``: no verification (answer = generator majority), kept by
            :meth:`with_overrides`. ``result.verification.verifier`` says which model did.
        config: an :class:`RStarConfig` (or a dict of its fields).
        checkpointer: optional LangGraph checkpointer; with a ``thread_id`` in the config an
            interrupted search resumes from its last finished step.
        name: run name in traces.

    Example:
        >>> chain = RStarChain(generator=my_llm, config=RStarConfig(num_rollouts=8))
        >>> result = chain.invoke("Tom has 3 apples and buys 5 more. How many now?")
        >>> result.answer
    """

    def __init__(
        self,
        generator: BaseLanguageModel | None = None,
        discriminator: BaseLanguageModel | bool | None = None,
        config: RStarConfig | Mapping[str, Any] | None = None,
        *,
        checkpointer: Any = None,
        name: str = "RStar",
    ) -> None:
        if config is None:
            config = RStarConfig()
        elif isinstance(config, Mapping):
            config = RStarConfig(**config)
        elif not isinstance(config, RStarConfig):
            raise TypeError(f"config must be an RStarConfig or a dict, got {type(config).__name__}")
        if generator is None:
            generator = default_llm()
            if discriminator is None:
                discriminator = True  # the embedded model verifies itself, in every profile
        # What the caller asked for: copies (with_overrides) resolve it again under their
        # own config, so an explicit False stays off and None follows self_verify.
        self._discriminator_arg: Any = discriminator
        if discriminator is True or (discriminator is None and config.self_verify):
            discriminator = generator
        elif discriminator is False:
            discriminator = None
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.checkpointer = checkpointer
        self.name = name
        self._gen_sampler = self._sampler(generator)
        self._disc_sampler = (
            None
            if discriminator is None
            else self._gen_sampler
            if discriminator is generator
            else self._sampler(discriminator)
        )
        self._graph = build_graph(
            self._gen_sampler,
            self._disc_sampler,
            checkpointer=checkpointer,
            name="rstar_search",
            verifier="generator" if discriminator is generator else "discriminator",
            verifier_model=None if discriminator is None else model_label(discriminator),
        )

    def _sampler(self, llm: Any) -> Sampler:
        return Sampler(
            llm,
            max_retries=self.config.max_retries,
            retry_backoff=self.config.retry_backoff,
            call_timeout=self.config.call_timeout,
            dead_after=self.config.dead_after,
        )

    # -- Runnable plumbing -------------------------------------------------------------
    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return RStarInputType

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        return RStarResult

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return RStarInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return RStarResult

    def get_graph(self, config: RunnableConfig | None = None) -> Graph:
        """The controller graph (with the verification subgraph expanded)."""
        return self._graph.get_graph(xray=True)

    def draw_mermaid(self) -> str:
        """Mermaid text of the controller graph."""
        return self.get_graph().draw_mermaid()

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph (for LangGraph Server, Studio or direct use)."""
        return self._graph

    def with_overrides(self, **fields: Any) -> RStarChain:
        """A chain with the same models and some config fields changed (validated).

        Raises:
            pydantic.ValidationError: naming the field, when a value is invalid.
        """
        config = RStarConfig.model_validate({**self.config.model_dump(), **fields})
        return RStarChain(
            generator=self.generator,
            discriminator=self._discriminator_arg,
            config=config,
            checkpointer=self.checkpointer,
            name=self.name or "RStar",
        )

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
        **kwargs: Any,
    ) -> Any:
        """This search as an agent tool: an :class:`~langchain_rstar.tool.RStarTool`.

        Args:
            args_schema: replaces the default schema (``question``, optional
                ``num_rollouts``); its fields are passed to the tool's ``_run``.
            name: tool name (default ``rstar_solve``).
            description: tool description shown to the model.
            arg_types: not used (the schema is fixed); accepted for compatibility.
            **kwargs: other :class:`~langchain_rstar.tool.RStarTool` fields
                (``max_steps``, ``response_format``, ...).
        """
        fields: dict[str, Any] = dict(kwargs)
        if args_schema is not None:
            fields["args_schema"] = args_schema
        if name is not None:
            fields["name"] = name
        if description is not None:
            fields["description"] = description
        return RStarTool(chain=self, **fields)

    def check_question(self, value: Any) -> str:
        """The question of an input, checked (:func:`validate_question`) before any model call.

        Raises:
            ValueError: with the reason, when the input is not a valid question.
        """
        return validate_question(value, self.config.max_question_chars)

    # -- state helpers -----------------------------------------------------------------
    def _for_call(self, config: RunnableConfig) -> tuple[RStarChain, RunnableConfig]:
        """The chain to run one call with (this one, or one with the call's overrides) and
        the call's config without the overrides; checks before any model call.

        Raises:
            ValueError: for an unknown override field or a bad value (pydantic's error
                names the field), or a checkpointer without a ``thread_id``.
        """
        overrides = _call_overrides(config)
        if overrides:
            configurable = dict(config.get("configurable") or {})
            configurable.pop(OVERRIDES_KEY, None)
            config = {**config, "configurable": configurable}
            return self.with_overrides(**overrides), config
        if self.checkpointer is not None and not (config.get("configurable") or {}).get(
            "thread_id"
        ):
            # LangGraph's own message (its check is skipped once we add our scope key, and
            # the checkpointer then fails with a bare KeyError)
            raise ValueError(
                "Checkpointer requires one or more of the following 'configurable' keys: "
                "thread_id, checkpoint_ns, checkpoint_id"
            )
        return self, config

    def _graph_config(self, config: RunnableConfig, run_manager: Any) -> RunnableConfig:
        out = patch_config(
            config,
            callbacks=_child_callbacks(run_manager),
            recursion_limit=recursion_limit(self.config),
        )
        if manager_is_quiet(run_manager):
            # Nothing observes this search: its nodes and model calls skip LangChain's
            # per-run set-up (see langchain_rstar.search._untraced).
            out["configurable"] = {**(out.get("configurable") or {}), QUIET_KEY: True}
        return out

    def _initial_state(self, question: str, graph_config: RunnableConfig) -> dict[str, Any] | None:
        """Input for the graph: None resumes an unfinished checkpointed search."""
        if self.checkpointer is not None and graph_config.get("configurable", {}).get("thread_id"):
            snapshot = self._graph.get_state(graph_config)
            return self._start_or_resume(question, snapshot.values or {}, bool(snapshot.next))
        return {"question": question, "config": self.config.model_dump()}

    async def _ainitial_state(
        self, question: str, graph_config: RunnableConfig
    ) -> dict[str, Any] | None:
        if self.checkpointer is not None and graph_config.get("configurable", {}).get("thread_id"):
            snapshot = await self._graph.aget_state(graph_config)
            return self._start_or_resume(question, snapshot.values or {}, bool(snapshot.next))
        return {"question": question, "config": self.config.model_dump()}

    def _start_or_resume(
        self, question: str, values: Mapping[str, Any], pending: bool
    ) -> dict[str, Any] | None:
        """Resume (None) when the thread holds an unfinished search of the same question
        and config; otherwise a fresh start that also clears what an earlier search left in
        the thread (reducer channels are overwritten, not merged)."""
        config = self.config.model_dump()
        if pending and values.get("question") == question and values.get("config") == config:
            return None
        if not values:
            return {"question": question, "config": config}
        return {
            "question": question,
            "config": config,
            "nodes": Overwrite({}),
            "finished": Overwrite([]),
            "usage": Overwrite({}),
            "intervals": Overwrite([]),
            "errors": Overwrite([]),
            "wave": [],
            "next_rollout": 0,
            "stop_reason": "",
            "limits_hit": [],
            "candidates": [],
            "verification": {},
            "answer": None,
            "confidence": 0.0,
        }

    def _progress(self, values: Mapping[str, Any], rollout: int) -> RStarProgress:
        checker = checker_for(self.config.task, self.config.answer_extraction)
        best, confidence = final_answer(
            build_candidates(values.get("nodes") or {}, checker), checker
        )
        usage = values.get("usage") or {}
        return RStarProgress(
            rollout=rollout,
            num_rollouts=self.config.num_rollouts,
            best_answer=best,
            confidence=confidence,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            llm_calls=int(usage.get("llm_calls", 0)),
            nodes=len(values.get("nodes") or {}),
        )

    def result_from_state(self, values: Mapping[str, Any], wall_seconds: float) -> RStarResult:
        """Build the public result from the graph's final state."""
        nodes: dict[str, Any] = dict(values.get("nodes") or {})
        candidates = [Candidate.model_validate(c) for c in values.get("candidates") or []]
        answer = values.get("answer")
        best = winning_candidate(
            candidates, answer, checker_for(self.config.task, self.config.answer_extraction)
        )
        trajectory: list[Step] = best.trajectory if best is not None else []
        usage_raw = values.get("usage") or {}
        busy = _union_seconds(values.get("intervals") or [])
        usage = Usage(
            llm_calls=int(usage_raw.get("llm_calls", 0)),
            batches=int(usage_raw.get("batches", 0)),
            prompts=int(usage_raw.get("prompts", 0)),
            samples=int(usage_raw.get("samples", 0)),
            prompt_tokens=int(usage_raw.get("prompt_tokens", 0)),
            cached_prompt_tokens=int(usage_raw.get("cached_prompt_tokens", 0)),
            completion_tokens=int(usage_raw.get("completion_tokens", 0)),
            tokens_estimated=bool(usage_raw.get("tokens_estimated", 0)),
            wall_seconds=wall_seconds,
            model_seconds=busy,
            framework_seconds=max(wall_seconds - busy, 0.0),
            rollouts=int(usage_raw.get("rollouts", 0)),
            nodes=len(nodes),
            failed_calls=int(usage_raw.get("failed_calls", 0)),
            repetitions_trimmed=int(usage_raw.get("repetitions_trimmed", 0)),
        )
        verification = Verification.model_validate(values.get("verification") or {})
        question = values.get("question") or nodes.get(ROOT_ID, {}).get("text", "")
        errors = list(values.get("errors") or [])
        stop_reason = values.get("stop_reason") or "budget"
        if backend_dead_errors(errors):
            stop_reason = "backend_dead"
        return RStarResult(
            question=question,
            answer=answer,
            confidence=float(values.get("confidence") or 0.0),
            trajectory=trajectory,
            candidates=candidates,
            tree=nodes,
            usage=usage,
            verification=verification,
            errors=errors,
            stop_reason=stop_reason,
            limits_hit=list(values.get("limits_hit") or []),
        )

    # -- execution ---------------------------------------------------------------------
    def _run(
        self,
        input: RStarInputType,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> RStarResult:
        result: RStarResult | None = None
        for event in self._iter(input, run_manager, config, progress=False):
            if isinstance(event, RStarResult):
                result = event
        assert result is not None
        return result

    def _iter(
        self,
        input: RStarInputType,
        run_manager: CallbackManagerForChainRun | None,
        config: RunnableConfig,
        progress: bool = True,
    ) -> Iterator[RStarProgress | RStarResult]:
        chain, config = self._for_call(config)
        if chain is not self:
            yield from chain._iter(input, run_manager, config, progress)
            return
        question = self.check_question(input)
        start = time.time()
        graph_config, scope = scoped_config(self._graph_config(config, run_manager))
        state = self._initial_state(question, graph_config)
        values: dict[str, Any] = {}
        try:
            modes = ["updates", "values"] if progress else ["values"]
            for mode, chunk in self._graph.stream(state, graph_config, stream_mode=modes):
                if mode == "values":
                    values = chunk
                else:
                    for rollout in _finished_rollouts(chunk):
                        yield self._progress(values, rollout)
        finally:
            for sampler in (self._gen_sampler, self._disc_sampler):
                if sampler is not None:
                    sampler.end_scope(scope)
        yield raise_if_backend_dead(self.result_from_state(values, time.time() - start))

    async def _aiter(
        self,
        input: RStarInputType,
        run_manager: AsyncCallbackManagerForChainRun | None,
        config: RunnableConfig,
        progress: bool = True,
    ) -> AsyncIterator[RStarProgress | RStarResult]:
        chain, config = self._for_call(config)
        if chain is not self:
            async for event in chain._aiter(input, run_manager, config, progress):
                yield event
            return
        question = self.check_question(input)
        start = time.time()
        graph_config, scope = scoped_config(self._graph_config(config, run_manager))
        state = await self._ainitial_state(question, graph_config)
        values: dict[str, Any] = {}
        try:
            modes = ["updates", "values"] if progress else ["values"]
            async for mode, chunk in self._graph.astream(state, graph_config, stream_mode=modes):
                if mode == "values":
                    values = chunk
                else:
                    for rollout in _finished_rollouts(chunk):
                        yield self._progress(values, rollout)
        finally:
            for sampler in (self._gen_sampler, self._disc_sampler):
                if sampler is not None:
                    sampler.end_scope(scope)
        yield raise_if_backend_dead(self.result_from_state(values, time.time() - start))

    async def _arun(
        self,
        input: RStarInputType,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> RStarResult:
        result: RStarResult | None = None
        async for event in self._aiter(input, run_manager, config, progress=False):
            if isinstance(event, RStarResult):
                result = event
        assert result is not None
        return result

    def invoke(
        self, input: RStarInputType, config: RunnableConfig | None = None, **kwargs: Any
    ) -> RStarResult:
        """Solve one question."""
        config = ensure_config(config)
        if not config.get("run_name"):
            config["run_name"] = self.name or "RStar"
        return self._call_with_config(self._run, input, config, run_type="chain", **kwargs)

    async def ainvoke(
        self, input: RStarInputType, config: RunnableConfig | None = None, **kwargs: Any
    ) -> RStarResult:
        """Solve one question asynchronously."""
        config = ensure_config(config)
        if not config.get("run_name"):
            config["run_name"] = self.name or "RStar"
        return await self._acall_with_config(self._arun, input, config, run_type="chain", **kwargs)

    def stream(
        self, input: RStarInputType, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Yield an :class:`RStarProgress` after each rollout, then the :class:`RStarResult`."""
        config = ensure_config(config)
        if not config.get("run_name"):
            config["run_name"] = self.name or "RStar"

        def _transform(
            inputs: Iterator[RStarInputType],
            run_manager: CallbackManagerForChainRun,
            config: RunnableConfig,
        ) -> Iterator[Any]:
            for item in inputs:
                yield from self._iter(item, run_manager, config)

        yield from self._transform_stream_with_config(iter([input]), _transform, config, **kwargs)

    async def astream(
        self, input: RStarInputType, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        config = ensure_config(config)
        if not config.get("run_name"):
            config["run_name"] = self.name or "RStar"

        async def _input() -> AsyncIterator[RStarInputType]:
            yield input

        async def _transform(
            inputs: AsyncIterator[RStarInputType],
            run_manager: AsyncCallbackManagerForChainRun,
            config: RunnableConfig,
        ) -> AsyncIterator[Any]:
            async for item in inputs:
                async for event in self._aiter(item, run_manager, config):
                    yield event

        async for event in self._atransform_stream_with_config(
            _input(), _transform, config, **kwargs
        ):
            yield event


def _child_callbacks(run_manager: Any) -> Any:
    """Callbacks for the search's graph, nested under the ``RStar`` run.

    ``collect_runs()`` adds its collector to each run's handlers but not to the handlers a
    run passes to its children; LangGraph's node runs then start without it, and every run
    below them looked like a root. The collector is made inheritable for the search, so it
    sees the whole search as one tree under ``RStar``.
    """
    if run_manager is None:
        return None
    child = run_manager.get_child()
    collector = run_collector_var.get()
    if (
        collector is not None
        and any(h is collector for h in run_manager.handlers)
        and not any(h is collector for h in child.handlers)
    ):
        child.add_handler(collector, inherit=True)
    return child


def _finished_rollouts(updates: Mapping[str, Any]) -> list[int]:
    """Rollout numbers finished in one ``updates`` chunk (from whichever node ended a wave)."""
    return [
        fin["rollout"]
        for update in updates.values()
        if isinstance(update, dict)
        for fin in update.get("finished") or []
    ]


def _union_seconds(intervals: list[list[float]]) -> float:
    """Total length of the union of ``[start, end]`` intervals."""
    total = 0.0
    cur_start: float | None = None
    cur_end = 0.0
    for start, end in sorted((float(a), float(b)) for a, b in intervals):
        if cur_start is None or start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total
