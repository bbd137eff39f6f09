"""Scripted models shared by the unit tests."""

from __future__ import annotations

from langchain_rstar.testing import APPLES_QUESTION as QUESTION
from langchain_rstar.testing import apples_llm

__all__ = ["GOLD", "QUESTION", "R_ADD", "R_MUL", "R_RIGHT", "apples_llm"]

GOLD = "10"

R_RIGHT = " Ann has 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10 apples are left. The answer is 10."
R_ADD = " 3 + 4 = 7 apples. The answer is 7."
R_MUL = " 3 * 4 = 12 apples. The answer is 12."
