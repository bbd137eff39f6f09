"""Property tests of ``validate_question`` (#19): any input gets a clean answer, fast.

Every input either comes back as a question that keeps every rule (so the search never sees
control characters, surrogates, bidi overrides, an invisible-only or over-long question), or
fails with a ``ValueError``; nothing else escapes, and each call is bounded in time.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_rstar import validate_question
from langchain_rstar.search.question import _BIDI_CONTROLS, _invisible

BOUND_S = 0.5  # per call; a 400k-character question takes ~20 ms

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_tricky = st.sampled_from(
    [
        "\x00", "\x07", "\x1b", "\x7f", "\t", "\n", "\r", " ", "\u00a0", "\u200b", "\u200d",
        "\u200f", "\u202e", "\u2066", "\u2069", "\ufeff", "\u00ad", "\u3164", "\u2800", "\ufe0f",
        "\ud800", "\udfff", "e\u0301", "\u212b", "\U0001f468", "a", "1", "?",
    ]
)  # fmt: skip
questions = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(_tricky, st.text(max_size=3)), max_size=30).map("".join),
    st.tuples(st.text(min_size=1, max_size=4), st.integers(1, 100_000)).map(lambda t: t[0] * t[1]),
)
limits = st.integers(1, 30_000)


def _timed(value: Any, max_chars: int) -> str | ValueError:
    start = time.monotonic()
    try:
        out: str | ValueError = validate_question(value, max_chars=max_chars)
    except ValueError as exc:
        out = exc
    elapsed = time.monotonic() - start
    assert elapsed < BOUND_S, f"validate_question took {elapsed:.2f}s"
    return out


@FAST
@given(text=questions, max_chars=limits)
def test_accepted_questions_keep_every_rule(text: str, max_chars: int) -> None:
    out = _timed(text, max_chars)
    if isinstance(out, ValueError):
        assert str(out)  # a reason is given
        return
    assert isinstance(out, str)
    assert out == out.strip() and 0 < len(out) <= max_chars
    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in out)
    assert not any(c in _BIDI_CONTROLS for c in out)
    assert not all(map(_invisible, out))
    assert validate_question(out, max_chars=max_chars) == out  # idempotent


@FAST
@given(text=questions, max_chars=limits)
def test_a_mapping_is_judged_like_its_question(text: str, max_chars: int) -> None:
    direct = _timed(text, max_chars)
    mapped = _timed({"question": text, "other": 1}, max_chars)
    assert type(direct) is type(mapped)
    if isinstance(direct, str):
        assert direct == mapped


@FAST
@given(
    text=st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=80),
)
def test_ordinary_text_is_accepted(text: str) -> None:
    """Letters, digits, punctuation and spaces: accepted unless blank (no over-rejection)."""
    expected = unicodedata.normalize("NFC", text).strip()
    out = _timed(text, 1_000)
    if all(map(_invisible, expected)):
        assert isinstance(out, ValueError) and "empty" in str(out)
    else:
        assert out == expected


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_non_text_is_a_value_error(value: Any) -> None:
    assert isinstance(_timed(value, 100), ValueError)
    assert isinstance(_timed({"question": value}, 100), ValueError)
