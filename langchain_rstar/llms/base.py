"""The backend contract: everything the search needs to know about a model, in one place.

The search talks to any LangChain ``BaseLLM`` or ``BaseChatModel``. What it needs to know
beyond that interface (can the model take sampling keywords per call, does it return ``n``
samples per prompt, does top-p cost it a full-vocabulary sort, does it wrap another model)
is answered here and nowhere else: :func:`backend_traits` reads it off a model.

A first-class backend says so by subclassing :class:`RStarBackend` next to its LangChain
base class and overriding what differs (the package's ``VLLMEngine``, ``TransformersLLM``,
``ScriptedLLM`` and ``FaultyLLM`` all do)::

    class MyEngine(RStarBackend, BaseLLM):
        def rstar_top_p_costly(self) -> bool:
            return self.device == "cpu"

The contract is three members, all with defaults on :class:`RStarBackend`:
``accepts_sampling_kwargs`` (class attribute), ``rstar_top_p_costly()`` (method) and
``rstar_wrapped_llm`` (property). A model that does not subclass it may still carry them
by duck typing (``rstar_top_p_costly`` may then also be a plain bool attribute);
:func:`backend_traits` and :func:`top_p_is_costly` are the only readers.

Other models are classified by their LangChain type and provider module (the OpenAI
clients take ``n`` and sampling keywords; other chat and completion models get sampling
parameters through ``bind``-style keywords where they accept them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM

__all__ = [
    "BackendMode",
    "BackendTraits",
    "RStarBackend",
    "backend_traits",
    "top_p_is_costly",
    "unwrap",
]

#: How the sampler calls a model:
#: ``native``: a first-class backend (sampling keywords and ``n`` per call);
#: ``openai`` / ``openai_chat``: ``langchain_openai`` completion / chat clients;
#: ``chat``: any other chat model; ``generic``: any other completion model.
BackendMode = Literal["native", "openai", "openai_chat", "chat", "generic"]

_MAX_WRAPPING = 8


class RStarBackend:
    """Mixin that makes a LangChain model a first-class rStar backend.

    Subclass it together with ``BaseLLM`` (or ``BaseChatModel``). The defaults describe a
    backend whose ``generate`` takes ``n`` and the sampling keywords ``temperature``,
    ``top_k``, ``top_p``, ``min_p``, ``max_tokens``, ``seed`` per call and returns all ``n``
    samples per prompt, with token counts in ``llm_output["token_usage"]``. The ``paper``
    profile also sends ``repetition_penalty`` (``RStarConfig.repetition_penalty``); a
    backend accepts it (``VLLMEngine`` and ``TransformersLLM`` apply it).
    """

    #: ``generate`` takes ``n`` and the sampling keywords per call (then the sampler sends
    #: them as keywords and asks for all ``n`` samples in one call: mode ``native``).
    #: A wrapper may turn it into a property that asks the wrapped model.
    accepts_sampling_kwargs: ClassVar[bool] = True

    def rstar_top_p_costly(self) -> bool:
        """Whether top-p sampling costs this model a sort of the whole vocabulary per token
        (``sampling_preset="auto"`` then drops top-p). Default False."""
        return False

    @property
    def rstar_wrapped_llm(self) -> BaseLanguageModel | None:
        """The model this one forwards to unchanged (a transparent wrapper whose traits
        are the wrapped model's), else None (the default)."""
        return None


@dataclass(frozen=True)
class BackendTraits:
    """What :func:`backend_traits` found out about a model.

    Attributes:
        mode: how the sampler calls it (see :data:`BackendMode`).
        top_p_costly: top-p sorts the whole vocabulary per token on this model.
        chat: it is a chat model (messages in, a message out).
        wrapped: the model a transparent wrapper forwards to, else None.
    """

    mode: BackendMode
    top_p_costly: bool
    chat: bool
    wrapped: BaseLanguageModel | None = None


def unwrap(llm: Any) -> Any:
    """The innermost model behind transparent wrappers (``rstar_wrapped_llm``)."""
    for _ in range(_MAX_WRAPPING):
        inner = getattr(llm, "rstar_wrapped_llm", None)
        if inner is None or inner is llm:
            break
        llm = inner
    return llm


def top_p_is_costly(llm: Any) -> bool:
    """Whether top-p sampling costs ``llm`` a sort of the whole vocabulary per token.

    Read from ``rstar_top_p_costly`` (a method, or a bool attribute), asking the wrapped
    model through transparent wrappers; a model that does not say is not costly (remote
    and other LangChain models). The package's ``VLLMEngine`` and ``TransformersLLM`` apply
    top-p inside the top-k shortlist by default and say False; with
    ``shortlist_top_p=False`` they say True on CPU (vLLM) or always (``transformers``).
    """
    for _ in range(_MAX_WRAPPING):
        flag = getattr(llm, "rstar_top_p_costly", None)
        if callable(flag):
            flag = flag()
        if isinstance(flag, bool):
            return flag
        inner = getattr(llm, "rstar_wrapped_llm", None)
        if inner is None or inner is llm:
            break
        llm = inner
    return False


def _mode(llm: Any) -> BackendMode:
    wrapped = getattr(llm, "rstar_wrapped_llm", None)
    if isinstance(wrapped, BaseLanguageModel) and wrapped is not llm and isinstance(llm, BaseLLM):
        # A transparent completion wrapper (e.g. FaultyLLM) forwards keywords as they are.
        inner = _mode(wrapped)
        return "generic" if inner in ("chat", "openai_chat") else inner
    if getattr(llm, "accepts_sampling_kwargs", False):
        return "native"
    module = type(llm).__module__
    if module.startswith("langchain_openai") or module.startswith(
        "langchain_community.llms.openai"
    ):
        return "openai_chat" if isinstance(llm, BaseChatModel) else "openai"
    if isinstance(llm, BaseChatModel):
        return "chat"
    if isinstance(llm, BaseLLM):
        return "generic"
    raise TypeError(f"expected a LangChain BaseLLM or BaseChatModel, got {type(llm).__name__}")


def backend_traits(llm: Any) -> BackendTraits:
    """Classify ``llm`` for the sampler (raises ``TypeError`` for a non-LangChain model)."""
    mode = _mode(llm)
    wrapped = getattr(llm, "rstar_wrapped_llm", None)
    return BackendTraits(
        mode=mode,
        top_p_costly=top_p_is_costly(llm),
        chat=isinstance(llm, BaseChatModel),
        wrapped=wrapped if isinstance(wrapped, BaseLanguageModel) else None,
    )
