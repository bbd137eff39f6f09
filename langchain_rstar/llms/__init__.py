"""Local small-LM backends for rStar.

* :class:`VLLMEngine`: in-process vLLM (``vllm.LLM``) with cross-thread batching;
* :class:`TransformersLLM`: ``transformers`` ``generate`` (no vLLM needed);
* :func:`default_llm`: the first of the two that is installed, on the embedded model.

Both return all ``n`` samples per prompt, accept per-call sampling kwargs
(``accepts_sampling_kwargs = True``) and report token usage. Neither imports ``torch``,
``vllm`` or ``transformers`` until a model is loaded. A served model (``python -m
vllm.entrypoints.openai.api_server``) is used through ``langchain_openai.OpenAI``.
"""

from __future__ import annotations

from langchain_rstar.llms._common import SAMPLING_KWARGS, split_at_stop
from langchain_rstar.llms.default import default_llm
from langchain_rstar.llms.transformers_llm import TransformersLLM
from langchain_rstar.llms.vllm_engine import VLLMEngine

__all__ = ["SAMPLING_KWARGS", "TransformersLLM", "VLLMEngine", "default_llm", "split_at_stop"]
