"""How the search's sampling parameters and ``n`` reach a plain LangChain model.

Why: the search draws its votes at ``temperature`` (``verify_temperature`` for the
discriminator) with ``top_k``, ``top_p``, ``min_p`` and a ``max_tokens`` cap. This
package's backends and the ``langchain_openai`` clients take these per call; any other
LangChain model (ChatOllama, ChatAnthropic, a Hugging Face endpoint, a hand-written model)
used to get none of them, so its votes came at whatever temperature it was built with (at
0, every vote is the same and the search degenerates silently). LangChain has no common
per-call sampling interface, so each parameter goes the first way that model has:

1. **keyword**: a per-call keyword of ``generate``, for models whose ``_generate`` (or
   ``_call``) names the parameter, and for integrations known to merge call keywords into
   their API request: ``langchain_anthropic`` (temperature, top_k, top_p, max_tokens) and
   chat models built on ``langchain_openai``'s client outside that package (DeepSeek,
   xAI, Together, ...: temperature, top_p, max_tokens and ``n``), i.e. what ``bind`` does;
2. **field**: the model has a field of that name (``max_tokens`` also as
   ``max_new_tokens``, ``num_predict``, ``max_output_tokens``): the request goes to a
   copy of the model with those fields set, which is what ``configurable_fields`` plus
   ``with_config`` does, without asking the user to mark fields configurable. ChatOllama
   takes this way on purpose: a per-call ``options`` dict *replaces* all of its options
   (``num_ctx`` included), while its fields are merged into the options it builds;
3. **none**: the model keeps its own setting. The sampler logs that once, and warns in
   ``RStarResult.errors`` when the votes then come back identical.

Anthropic's API takes ``temperature`` or ``top_p``, not both (Claude Sonnet 4.5, Haiku 4.5,
Opus 4.1 and later reject a request with both: "`temperature` and `top_p` cannot both be
specified for this model"), so ``top_p`` is withheld from Claude models: any
``langchain_anthropic`` model, and any model whose ``model`` / ``model_name`` /
``model_id`` names Claude (Bedrock, Vertex, LiteLLM, an OpenAI-compatible gateway). Their
votes are drawn at ``temperature`` and ``top_k`` where the route takes it; the route's
``how`` says so.

``n`` goes as ``n`` only where the API returns ``n`` choices per request (keyword route of
an OpenAI-derived model, or a ``_generate`` that names ``n``); elsewhere the sampler sends
``n`` requests and runs them concurrently (see :class:`~langchain_rstar.sampling.sampler.
Sampler`). Seeds never go to plain models: ``n`` repeated requests carrying one seed would
all draw the same sample.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.language_models.llms import LLM

from langchain_rstar.llms.base import unwrap

__all__ = [
    "SAMPLING_PARAMS",
    "PlainModel",
    "is_claude",
    "PlainRoute",
    "route_for",
    "runs_prompts_one_by_one",
]

#: The search's sampling parameters (``SampleCall.params`` keys).
SAMPLING_PARAMS = ("temperature", "top_p", "top_k", "min_p", "max_tokens")

#: Model field names that carry each parameter, first match wins.
_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "min_p": ("min_p",),
    "max_tokens": ("max_tokens", "max_new_tokens", "num_predict", "max_output_tokens"),
}

#: Chat integrations (by module of the model's class or a base class) whose request
#: builder merges call keywords into the API payload, and the keywords they take.
_KEYWORD_INTEGRATIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("langchain_anthropic", frozenset({"temperature", "top_k", "top_p", "max_tokens"})),
    ("langchain_openai", frozenset({"temperature", "top_p", "max_tokens", "n"})),
)

#: Most model copies kept per model (one per distinct set of field values).
_MAX_COPIES = 32


@dataclass(frozen=True)
class PlainRoute:
    """How each sampling parameter reaches one model.

    Attributes:
        keywords: parameters sent as per-call keywords (``n`` among them: native ``n``).
        fields: parameter -> the model field that carries it (set on a copy of the model).
        how: a short description for messages ("keywords of ChatX._generate", ...).
        withheld: parameters never sent to this model although it could take them (``top_p``
            to Claude models; see the module docstring).
    """

    keywords: frozenset[str] = frozenset()
    fields: Mapping[str, str] = field(default_factory=dict)
    how: str = ""
    withheld: frozenset[str] = frozenset()

    @property
    def native_n(self) -> bool:
        """Whether one request returns ``n`` samples."""
        return "n" in self.keywords

    def takes(self, param: str) -> bool:
        """Whether ``param`` reaches the model."""
        return param in self.keywords or param in self.fields


def _named_parameters(fn: Any) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params if p.kind in kinds}


def _signature_keywords(llm: Any) -> set[str]:
    """Sampling parameters (and ``n``) that the model's own methods name explicitly."""
    cls = type(llm)
    named = _named_parameters(cls._generate) & {*SAMPLING_PARAMS, "n"}
    if isinstance(llm, LLM) and cls._generate is LLM._generate:
        # an ``LLM`` answers one prompt per ``_call``: a named ``n`` there means nothing
        named |= _named_parameters(cls._call) & set(SAMPLING_PARAMS)
    return named


def _integration_keywords(llm: Any) -> tuple[frozenset[str], str]:
    if not isinstance(llm, BaseChatModel):
        return frozenset(), ""
    for cls in type(llm).__mro__:
        module = getattr(cls, "__module__", "") or ""
        for prefix, keywords in _KEYWORD_INTEGRATIONS:
            if module == prefix or module.startswith(prefix + "."):
                return keywords, f"{prefix} call keywords"
    return frozenset(), ""


def route_for(llm: BaseLanguageModel) -> PlainRoute:
    """The route of each sampling parameter to ``llm`` (see the module docstring).

    A transparent wrapper (``rstar_wrapped_llm``, e.g. ``FaultyLLM``) forwards call
    keywords, so the wrapped model's keywords count; fields of the wrapped model cannot be
    set through the wrapper.
    """
    inner = unwrap(llm)
    withheld = frozenset({"top_p"}) if is_claude(inner) else frozenset()
    keywords = set(_signature_keywords(inner))
    how = [f"keywords of {type(inner).__name__}._generate"] if keywords else []
    known, label = _integration_keywords(inner)
    if known:
        keywords |= known
        how.append(label)
    keywords -= withheld
    fields: dict[str, str] = {}
    if inner is llm:
        names = type(llm).model_fields if hasattr(type(llm), "model_fields") else {}
        for param, candidates in _FIELDS.items():
            if param in keywords or param in withheld:
                continue
            for name in candidates:
                if name in names:
                    fields[param] = name
                    break
        if fields:
            how.append(f"fields of a {type(llm).__name__} copy ({', '.join(fields.values())})")
    if withheld:
        how.append("top_p withheld (Claude models take temperature or top_p, not both)")
    return PlainRoute(frozenset(keywords), fields, "; ".join(how) or "no way", withheld)


def is_claude(llm: Any) -> bool:
    """A ``langchain_anthropic`` model, or one whose model id names Claude (then ``top_p``
    is withheld: see the module docstring)."""
    for cls in type(llm).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module == "langchain_anthropic" or module.startswith("langchain_anthropic."):
            return True
    for name in ("model", "model_name", "model_id"):
        value = getattr(llm, name, None)
        if isinstance(value, str) and "claude" in value.lower():
            return True
    return False


class PlainModel:
    """A plain model and its :class:`PlainRoute`: what to call, with which keywords."""

    def __init__(self, llm: BaseLanguageModel) -> None:
        self.llm = llm
        self.route = route_for(llm)
        self._lock = threading.Lock()
        self._copies: OrderedDict[tuple[Any, ...], BaseLanguageModel] = OrderedDict()

    def request(
        self, params: Mapping[str, Any], n: int
    ) -> tuple[BaseLanguageModel, dict[str, Any]]:
        """The model to call for ``params`` and the keywords to pass it.

        ``n`` goes as a keyword only on the native-``n`` route (the caller then asks once
        per prompt, else ``n`` times).
        """
        kwargs: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for key, value in params.items():
            if value is None:
                continue
            if key in self.route.keywords:
                kwargs[key] = value
            elif key in self.route.fields:
                fields[self.route.fields[key]] = value
        if self.route.native_n:
            kwargs["n"] = n
        return self._copy(fields), kwargs

    def _copy(self, fields: Mapping[str, Any]) -> BaseLanguageModel:
        if not fields:
            return self.llm
        if all(getattr(self.llm, k, object()) == v for k, v in fields.items()):
            return self.llm
        key = tuple(sorted((k, repr(v)) for k, v in fields.items()))
        with self._lock:
            found = self._copies.get(key)
            if found is not None:
                self._copies.move_to_end(key)
                return found
            copy = self.llm.model_copy(update=dict(fields))
            self._copies[key] = copy
            while len(self._copies) > _MAX_COPIES:
                self._copies.popitem(last=False)
            return copy


def runs_prompts_one_by_one(llm: BaseLanguageModel, *, asynchronous: bool) -> bool:
    """Whether ``llm.generate`` (``agenerate``) answers a batch of prompts one after another.

    True for chat models in sync (``BaseChatModel.generate`` loops over the conversations;
    ``agenerate`` gathers them) and for ``LLM`` subclasses that answer one prompt per
    ``_call`` (``LLM._generate`` / ``_agenerate`` loop); a model that implements
    ``_generate`` itself is trusted to batch.
    """
    if isinstance(llm, BaseChatModel):
        return not asynchronous
    if isinstance(llm, LLM) and isinstance(llm, BaseLLM):
        cls = type(llm)
        return (
            (cls._agenerate is LLM._agenerate) if asynchronous else (cls._generate is LLM._generate)
        )
    return False
