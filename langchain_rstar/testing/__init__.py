"""Test doubles for rStar: scripted models (no weights, deterministic) and fault injection.

``ScriptedLLM`` answers from a script keyed on the prompt's tail; ``FaultyLLM`` wraps any
model and injects failures (errors, hangs, empty or huge replies) on a schedule. Both
subclass the backend contract in :mod:`langchain_rstar.llms.base` like a real backend.
"""

from __future__ import annotations

from langchain_rstar.testing.scripted import APPLES_QUESTION, ScriptedLLM, apples_llm, prompt_tail

__all__ = ["APPLES_QUESTION", "ScriptedLLM", "apples_llm", "prompt_tail"]
