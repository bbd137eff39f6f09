"""Finding the answer a completion states, shared by every task family.

Why: a model states its answer in many ways ("The answer is 18.", "Answer: 18", "#### 18",
``\\boxed{18}``), and the search votes over what the *last* such statement says. The scanners
here are hand-written (a small brace matcher, bounded candidate lists) rather than one big
regular expression because nested ``\\boxed{...}`` groups are not regular, and because every
step must stay linear on hostile model output: only the last ``_MAX_CANDIDATES`` statements are
looked at and brace groups longer than 4,000 characters count as unbalanced.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TypeVar

from langchain_rstar.answers._deadline import _call_with_deadline

__all__ = ["EXTRACTION_MODES", "find_boxed", "reference_extract"]

logger = logging.getLogger(__name__)

#: Ways an :class:`~langchain_rstar.answers.AnswerChecker` can extract answers:
#: ``"marker"`` (default) -- the last stated answer the family can read; ``"reference"`` -- the
#: rStar reference evaluator's rule (first number after "answer is", else the last number).
EXTRACTION_MODES = ("marker", "reference")

#: Completions longer than this are cut (to their tail) before any scan: no model answer needs
#: more, and it bounds the work done on hostile output.
MAX_TEXT_CHARS = 100_000
#: How far back loose fallbacks (last number, last yes/no word) look.
LOOSE_TAIL_CHARS = 20_000

_MAX_DIGITS = 300  # longer digit runs are not numbers a model means (and are slow to convert)

# A number as written in prose: sign, currency, thousands separators, decimals, "a/b",
# exponent, percent, scale word. The look-behind keeps it from starting inside a word or a
# digit run, so a scan stays linear.
_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-+]\s*)?(?:[$€£¥]\s*)?(?P<sign2>-\s*)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.]))?"
    r"(?:[eE](?P<exp>[-+]?\d{1,3})(?!\d))?"
    r"(?P<pct>\s*%)?"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)

# ``\\text{...}`` and friends: their content is kept, the command dropped.
_TEXT_CMD_RE = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}"
)

_T = TypeVar("_T")

_CACHE_MAX_LEN = 512


#: Seconds one normalisation (one answer's voting key) may take before it counts as
#: unreadable. Real answers take microseconds; this only stops hostile inputs. Read at call time.
NORMALIZE_TIME_LIMIT = 1.0


class _TimedOut(Exception):
    """A normalisation ran past :data:`NORMALIZE_TIME_LIMIT` (never cached)."""


def _cache_short(fn: Callable[[str], _T]) -> Callable[[str], _T | None]:
    """Time-limit ``fn`` and memoise it for short strings only.

    Every call runs under the thread watchdog (:func:`_call_with_deadline`, nested calls share
    the outer deadline); a call that runs out of time returns None and is not remembered (it
    may have been slow only because the machine was busy). Long inputs are not cached (hostile
    inputs would bloat the cache).
    """

    def guarded(text: str) -> _T:
        result, timed_out = _call_with_deadline(
            lambda: fn(text), NORMALIZE_TIME_LIMIT, default=None
        )
        if timed_out:
            raise _TimedOut
        return result  # type: ignore[return-value]

    cached = lru_cache(maxsize=8192)(guarded)

    def wrapper(text: str) -> _T | None:
        try:
            if len(text) > _CACHE_MAX_LEN:
                return guarded(text)
            return cached(text)
        except _TimedOut:
            logger.warning(
                "answer normalisation took over %.1fs; treated as unreadable (%d chars)",
                NORMALIZE_TIME_LIMIT,
                len(text),
            )
            return None

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = getattr(fn, "__name__", "cached")
    wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return wrapper


# --------------------------------------------------------------------------------------------
# Extraction helpers (shared by all families)
# --------------------------------------------------------------------------------------------

# "The answer is X", "the final answer is: X", "Answer: X", "Final answer: X", "#### X".
_MARKER_RE = re.compile(
    r"(?:\b(?:final\s+)?answer\s*(?:is\b\s*:?|:|=)|####)",
    re.IGNORECASE,
)
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_TOKEN_RE = re.compile(r"[^\s$]+")
_MAX_CANDIDATES = 64
_SENTENCE_END_RE = re.compile(r"(?<!\\)(?:[.!?](?=\s|$)|;)|\n")


def _balanced(
    text: str, start: int, open_ch: str = "{", close_ch: str = "}", max_span: int = 4000
) -> int:
    """Index just past the group opened at ``text[start]`` (-1 if unbalanced).

    Backslash-escaped characters (``\\{``) do not count as group delimiters. Groups longer
    than ``max_span`` characters count as unbalanced (keeps hostile input linear).
    """
    depth = 0
    i = start
    n = min(len(text), start + max_span)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _boxed_at(text: str, pos: int) -> tuple[str | None, int]:
    """Content of the ``\\boxed`` command matched at ``pos`` and the index after it."""
    m = _BOX_RE.match(text, pos)
    if m is None:
        return None, pos
    i = m.end()
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        end = _balanced(text, i)
        if end < 0:
            return None, len(text)
        return text[i + 1 : end - 1], end
    # ``\boxed 5``: a single token.
    m2 = _TOKEN_RE.match(text, i)
    if m2 is None:
        return None, i
    return m2.group(0), m2.end()


def find_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    Nested braces are handled; unbalanced boxes are skipped.

    Args:
        text: Any text, e.g. a model completion or a MATH solution.

    Returns:
        The stripped content of the last box, or ``None`` if there is none.
    """
    if not text or "box" not in text:
        return None
    starts = [m.start() for m in _BOX_RE.finditer(text)]
    for pos in reversed(starts[-_MAX_CANDIDATES:]):
        content, _ = _boxed_at(text, pos)
        if content is not None and content.strip():
            return content.strip()
    return None


_MATH_WRAPPERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def _segment_after(text: str, pos: int) -> str:
    """The answer stated right after a marker ending at ``pos``."""
    n = len(text)
    i = pos
    while i < n and text[i] in " \t*:_\"'`":
        i += 1
    if i < n and text[i] == "\n":
        # "The answer is:\n\n18" -- allow the value on the next non-empty line.
        while i < n and text[i] in " \t\r\n*":
            i += 1
    rest = text[i : i + 4000]
    for opener, closer in _MATH_WRAPPERS:
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if end > 0:
                return rest[len(opener) : end].strip()
            break
    if _BOX_RE.match(rest):
        content, _ = _boxed_at(rest, 0)
        if content is not None:
            return content.strip()
    m = _SENTENCE_END_RE.search(rest)
    seg = rest[: m.start()] if m else rest
    return _strip_decorations(seg)


def _strip_decorations(seg: str) -> str:
    seg = seg.strip()
    seg = seg.strip("*_`\"' \t")
    while seg.endswith((".", ",", ":")):
        seg = seg[:-1].rstrip()
    return seg.strip("*_`\"' \t")


def _candidates_reversed(text: str) -> Iterator[str]:
    """Stated answers in ``text`` (after answer markers or in boxes), last one first.

    Only the last ``_MAX_CANDIDATES`` statements are considered, so hostile input (thousands
    of markers or unclosed boxes) stays cheap.
    """
    if not text:
        return
    if len(text) > MAX_TEXT_CHARS:
        text = text[-MAX_TEXT_CHARS:]
    found: list[tuple[int, int, bool]] = [
        (m.start(), m.end(), False) for m in _MARKER_RE.finditer(text)
    ]
    if "box" in text:
        found.extend((m.start(), m.end(), True) for m in _BOX_RE.finditer(text))
    found.sort()
    for start, end, is_box in reversed(found[-_MAX_CANDIDATES:]):
        if is_box:
            content, _ = _boxed_at(text, start)
            ans = content.strip() if content is not None else ""
        else:
            ans = _segment_after(text, end)
        if ans:
            yield ans


def _has_marker(text: str) -> bool:
    return "box" in text or _MARKER_RE.search(text) is not None


def _number_to_str(value: float | int) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return None
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


_ANSWER_IS = "answer is"
# How far after "answer is" the reference rule looks for its number.
_REFERENCE_WINDOW = 4000


def reference_answer_window(text: str) -> tuple[str, bool]:
    """The text the reference rule reads: ``(after_first_answer_is, True)`` or ``(tail, False)``.

    The rStar reference evaluator splits the completion at "answer is" and reads the piece
    after the *first* occurrence; without one it reads the whole completion (here: its last
    ``LOOSE_TAIL_CHARS`` characters). Case-insensitive; plain ``str.find``, no regex.
    """
    head = text[:MAX_TEXT_CHARS]
    low = head.lower()
    pos = low.find(_ANSWER_IS)
    if pos >= 0:
        start = pos + len(_ANSWER_IS)
        end = low.find(_ANSWER_IS, start)  # the reference reads only up to the next one
        end = len(head) if end < 0 else end
        return head[start : min(end, start + _REFERENCE_WINDOW)], True
    return text[-LOOSE_TAIL_CHARS:], False


def reference_extract(text: str) -> str | None:
    """Extract a numeric answer the way the rStar reference evaluator does.

    The first number after the first "answer is" (case-insensitive), else the last number in
    the text; thousands separators are dropped and a trailing period is not part of the
    number. Used by checkers built with ``extraction="reference"`` (the ``paper`` profile).

    Args:
        text: A model completion.

    Returns:
        The number as written (``"18"``, ``"-3.5"``, ``"$1,200"``), or None if there is none.
    """
    if not text or not isinstance(text, str):
        return None
    window, after_marker = reference_answer_window(text)
    if after_marker:
        m = _NUMBER_RE.search(window)
        if m is not None:
            return m.group(0).strip()
        # "The answer is unclear." -- the reference then finds no number at all.
        return None
    last: re.Match[str] | None = None
    for last in _NUMBER_RE.finditer(window):  # noqa: B007 - keep the last match
        pass
    return None if last is None else last.group(0).strip()
