"""Cleaning up sampled text: valid Unicode, cut at stop strings, trim endless repetitions.

Pure string functions, no model and no LangChain: the sampler applies them to every sample,
the scripted and fault-injecting test models use :func:`cut_at_stop` to behave like a real
backend. Written by hand because the repetition detector is specific to small models that
loop until their token cap (nothing in LangChain trims that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["cut_at_stop", "trim_repetition", "valid_unicode"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD.

    A model (or a client decoding bytes with ``surrogateescape``) can produce code points
    that no UTF-8 encoder accepts; one of them in a sample made ``json.dumps(...).encode()``,
    ``model_dump_json`` and ``save_html`` fail, and an evaluation retry the same question
    forever (issue #19.2). The check is one C-level encode on clean text.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string (the text only; the
    backends' :func:`~langchain_rstar.llms._common.split_at_stop` also says which stop)."""
    cut = len(text)
    for s in stop:
        if not s:
            continue
        i = text.find(s)
        if 0 <= i < cut:
            cut = i
    return text[:cut]


#: A completion whose last ``_REP_MIN_CHARS`` or more characters are one unit repeated at
#: least ``_REP_MIN_COPIES`` times (the unit at most ``_REP_MAX_PERIOD`` characters) is a
#: degenerate endless repetition.
_REP_MIN_CHARS = 40
_REP_MIN_COPIES = 3
_REP_MAX_PERIOD = 512


def trim_repetition(
    text: str,
    *,
    min_chars: int = _REP_MIN_CHARS,
    min_copies: int = _REP_MIN_COPIES,
    max_period: int = _REP_MAX_PERIOD,
) -> tuple[str, bool]:
    """Cut a degenerate endless repetition at the end of ``text`` to its first occurrence.

    A model that loops repeats one unit (a word, a sentence, a line) until it hits its
    token cap, so the text *ends* inside the repetition. When the tail of ``text`` (at least
    ``min_chars`` characters and ``min_copies`` copies) is periodic with a period of at most
    ``max_period`` characters, everything after the first copy is dropped (the cut moves to
    the end of the word it falls in). Repetition followed by other text is left alone: it
    is not endless.

    Returns:
        ``(text, trimmed)``: the possibly shortened text and whether it was trimmed.
    """
    n = len(text)
    if n < min_chars:
        return text, False
    last = text[n - 1]
    longest = min(max_period, n // min_copies)  # so that min_copies * p <= n
    end = n - 1
    while True:
        # Candidate periods p in increasing order: text[n - 1 - p] must equal the last
        # character, so step through that character's earlier occurrences (str.rfind, in C)
        # instead of testing every p (this runs on every sample a search draws).
        j = text.rfind(last, max(0, n - 1 - longest), end)
        if j < 0:
            break
        end = j
        p = n - 1 - j
        need = max(min_chars, min_copies * p)
        if text[n - need] != text[n - need + p]:
            continue
        if text[n - need : n - p] != text[n - need + p :]:
            continue
        # Smallest start s with text[s:] p-periodic (periodicity is monotone in s).
        lo, hi = 0, n - need
        while lo < hi:
            mid = (lo + hi) // 2
            if text[mid : n - p] == text[mid + p :]:
                hi = mid
            else:
                lo = mid + 1
        cut = lo + p
        if any(c.isspace() for c in text[lo:cut]):
            # A unit of words may start mid-word (its rotation): end the cut at a word end.
            limit = min(n, lo + 2 * p)
            while cut < limit and not text[cut - 1].isspace() and not text[cut].isspace():
                cut += 1
        return text[:cut], True
    return text, False
