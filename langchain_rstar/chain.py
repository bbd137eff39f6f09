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

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Union

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseLanguageModel
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config
from langchain_core.runnables.graph import Graph
from langchain_core.tracers.context import run_collector_var
from pydantic import BaseModel, Field

from langchain_rstar.config import RStarConfig
from langchain_rstar.llms import default_llm
from langchain_rstar.result import (
    RStarProgress,
    RStarResult,
)
from langchain_rstar.sampling._unobserved import QUIET_KEY, manager_is_quiet
from langchain_rstar.sampling.sampler import (
    Sampler,
    raise_if_backend_dead,
    scoped_config,
)
from langchain_rstar.search.budget import recursion_limit
from langchain_rstar.search.candidates import (
    generator_candidates,
)
from langchain_rstar.search.finish import result_from_state
from langchain_rstar.search.graph import build_graph
from langchain_rstar.search.question import validate_question
from langchain_rstar.search.verify import model_label
from langchain_rstar.tool import RStarTool

__all__ = ["RStarChain", "RStarInput", "validate_question"]

RStarInputType = Union[str, Mapping[str, Any], PromptValue]  # noqa: UP007 - a runtime alias

#: The ``configurable`` key holding per-call :class:`RStarConfig` overrides.
OVERRIDES_KEY = "rstar"


class RStarInput(BaseModel):
    """Input schema: the question to solve."""

    question: str = Field(description="The question to solve.")


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
            # per-run set-up (see langchain_rstar.search._untraced and sampling._unobserved).
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
        and config; otherwise a fresh start (the graph's ``init`` clears what an earlier
        search left in the thread)."""
        config = self.config.model_dump()
        if pending and values.get("question") == question and values.get("config") == config:
            return None
        return {"question": question, "config": config}

    def _progress(self, values: Mapping[str, Any], rollout: int) -> RStarProgress:
        _, best, confidence = generator_candidates(values, self.config)
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
        """The public result of a graph state (what the graph's ``finish`` node builds; see
        :func:`langchain_rstar.search.finish.result_from_state`)."""
        return result_from_state(
            values, wall_seconds, self.config.task, self.config.answer_extraction
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
        graph_config, scope = scoped_config(self._graph_config(config, run_manager))
        state = self._initial_state(question, graph_config)
        values: dict[str, Any] = {}
        try:
            modes = ["updates", "values"] if progress else ["values"]
            for mode, chunk in self._graph.stream(
                state, graph_config, context=self.config, stream_mode=modes
            ):
                if mode == "values":
                    values = chunk
                else:
                    for rollout in _finished_rollouts(chunk):
                        yield self._progress(values, rollout)
        finally:
            for sampler in (self._gen_sampler, self._disc_sampler):
                if sampler is not None:
                    sampler.end_scope(scope)
        yield raise_if_backend_dead(_result_of(values))

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
        graph_config, scope = scoped_config(self._graph_config(config, run_manager))
        state = await self._ainitial_state(question, graph_config)
        values: dict[str, Any] = {}
        try:
            modes = ["updates", "values"] if progress else ["values"]
            async for mode, chunk in self._graph.astream(
                state, graph_config, context=self.config, stream_mode=modes
            ):
                if mode == "values":
                    values = chunk
                else:
                    for rollout in _finished_rollouts(chunk):
                        yield self._progress(values, rollout)
        finally:
            for sampler in (self._gen_sampler, self._disc_sampler):
                if sampler is not None:
                    sampler.end_scope(scope)
        yield raise_if_backend_dead(_result_of(values))

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
        if isinstance(update, dict) and isinstance(update.get("finished"), list)
        for fin in update["finished"]
    ]


def _result_of(values: Mapping[str, Any]) -> RStarResult:
    """The result the graph's ``finish`` node left in its output."""
    data = values.get("result")
    if not data:
        raise RuntimeError("the search graph ended without a result (it did not reach 'finish')")
    return RStarResult.model_validate(data)
