"""Pick a local backend for the embedded model: :func:`default_llm`.

Its own module because it sits *above* the backends (it constructs them) while
``llms/embedded.py`` sits *below* them (they resolve model names there); keeping the two
apart is what keeps ``llms/`` free of import cycles.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from langchain_core.language_models import BaseLLM

from langchain_rstar.llms.embedded import resolve_model
from langchain_rstar.llms.transformers_llm import TransformersLLM
from langchain_rstar.llms.vllm_engine import VLLMEngine

__all__ = ["default_llm"]


def default_llm(
    backend: Literal["auto", "vllm", "transformers"] = "auto",
    model: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> BaseLLM:
    """Return a local LLM on the embedded model (or ``model``).

    Args:
        backend: ``"vllm"`` for :class:`~langchain_rstar.llms.VLLMEngine`,
            ``"transformers"`` for :class:`~langchain_rstar.llms.TransformersLLM`, or
            ``"auto"``: vLLM when ``import vllm`` works, else transformers.
        model: Model name/path (see :func:`~langchain_rstar.llms.embedded.resolve_model`);
            default the embedded model.
        **kwargs: Passed to the backend's constructor (e.g. ``temperature``,
            ``max_tokens``, ``kv_cache_space_gb``).

    Returns:
        A LangChain ``BaseLLM``. The engine itself is created lazily on first use.
    """
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"unknown backend {backend!r}")
    if backend == "auto":
        try:
            import vllm  # noqa: F401

            backend = "vllm"
        except Exception:  # ImportError, or a broken binary build
            backend = "transformers"
    resolved = resolve_model(model)
    if backend == "vllm":
        return VLLMEngine(model=resolved, **kwargs)
    return TransformersLLM(model=resolved, **kwargs)
