"""Answer extraction, normalisation, equivalence and majority voting.

The same checker is used inside the search (to vote over sampled answers) and for grading
against a dataset's gold solution, so the voting key (:meth:`AnswerChecker.normalize`) and the
equivalence relation (:meth:`AnswerChecker.equivalent`) are kept consistent: two answers with
the same key are always equivalent.

Three task families are supported:

* ``arithmetic`` (GSM8K, GSM-Hard, SVAMP): answers are numbers. Commas, currency, units,
  percentages, LaTeX fractions and number words are understood; model text is never ``eval``-ed.
* ``math`` (MATH / MATH-500): answers are LaTeX expressions. A cheap string normalisation decides
  most cases; the rest go to ``math-verify`` under a hard per-check time limit that works on any
  thread (see :func:`_call_with_deadline`), after a static screen rejects inputs whose evaluation
  could blow up inside C code (``10^{10^{10}}``, ``99999999!``, ...), where no timeout can help.
* ``yesno`` (StrategyQA): answers are yes/no (also true/false).
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any, TypeVar

__all__ = [
    "TASK_FAMILIES",
    "TASK_ALIASES",
    "AnswerChecker",
    "ArithmeticChecker",
    "MathChecker",
    "YesNoChecker",
    "VoteResult",
    "find_boxed",
    "get_checker",
    "majority_vote",
]

logger = logging.getLogger(__name__)

TASK_FAMILIES = ("arithmetic", "math", "yesno")

#: Accepted names for :func:`get_checker` (dataset names and family names) -> family.
TASK_ALIASES: dict[str, str] = {
    "arithmetic": "arithmetic",
    "number": "arithmetic",
    "numeric": "arithmetic",
    "gsm8k": "arithmetic",
    "gsm8khard": "arithmetic",
    "gsm-hard": "arithmetic",
    "gsmhard": "arithmetic",
    "svamp": "arithmetic",
    "math": "math",
    "math500": "math",
    "math-500": "math",
    "yesno": "yesno",
    "stg": "yesno",
    "strategyqa": "yesno",
}

_T = TypeVar("_T")

_CACHE_MAX_LEN = 512


def _cache_short(fn: Callable[[str], _T]) -> Callable[[str], _T]:
    """Memoise ``fn`` for short strings only (long hostile inputs would bloat the cache)."""
    cached = lru_cache(maxsize=8192)(fn)

    def wrapper(text: str) -> _T:
        if len(text) > _CACHE_MAX_LEN:
            return fn(text)
        return cached(text)

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = getattr(fn, "__name__", "cached")
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


# --------------------------------------------------------------------------------------------
# Arithmetic helpers
# --------------------------------------------------------------------------------------------

_MAX_DIGITS = 300  # longer digit runs are not numbers a model means (and are slow to convert)

_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-+]\s*)?(?:[$€£¥]\s*)?(?P<sign2>-\s*)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.]))?"
    r"(?:[eE](?P<exp>[-+]?\d{1,3})(?!\d))?"
    r"(?P<pct>\s*%)?"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORD_NUMBERS.update(
    {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
)
_WORD_NUMBERS.update({"ninety": 90, "hundred": 100})
_WORD_RE = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)
_LATEX_FRAC_RE = re.compile(
    r"\\[dt]?frac\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))"
)
_TEXT_CMD_RE = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}"
)
_ARITH_DROP_RE = re.compile(r"(?<!\\)\\[,;:!> ]|\\(?:left|right|displaystyle|quad|qquad)\b|\{,\}|~")
_POW10_RE = re.compile(r"\s*(?:\\times|\\cdot|x|\*)\s*10\s*\^\s*\{?\s*([-+]?\d{1,3})\s*\}?")
_POWER_AFTER_RE = re.compile(r"\s*(?:\^|\*\*)\s*\{?\s*([-+]?\d{1,2})(?![\d.])\s*\}?")


def _to_fraction(num: str) -> Fraction | None:
    num = num.replace(",", "")
    if len(num) > _MAX_DIGITS:
        return None
    try:
        return Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None


def _parse_arith_uncached(answer: str) -> Fraction | None:
    """The number stated in an (already extracted) arithmetic answer, exactly."""
    s = answer.strip()
    if not s:
        return None
    if len(s) > 2000:
        s = s[:2000]
    s = s.replace("\u2212", "-").replace("\u2013", "-").replace("\u00a0", " ")
    if "\\" in s or "{" in s:
        boxed = find_boxed(s)
        if boxed is not None:
            s = boxed
        s = _TEXT_CMD_RE.sub(r" \1 ", s)
        s = _ARITH_DROP_RE.sub("", s)
        s = s.replace("\\$", "$").replace("\\%", "%")

        def _frac(m: re.Match[str]) -> str:
            a = m.group(1) or m.group(2)
            b = m.group(3) or m.group(4)
            return f" {a}/{b} "

        s = _LATEX_FRAC_RE.sub(_frac, s)
        s = s.replace("{", " ").replace("}", " ")
    if "=" in s:
        tail = s.rsplit("=", 1)[1]
        if re.search(r"\d", tail):
            s = tail
    m = _NUMBER_RE.search(s)
    if m is None:
        w = _WORD_RE.search(s)
        if w is None:
            return None
        return Fraction(_WORD_NUMBERS[w.group(1).lower()])
    value = _to_fraction(m.group("num"))
    if value is None:
        return None
    if m.group("den"):
        den = _to_fraction(m.group("den"))
        if den is None or den == 0:
            return None
        value /= den
    if m.group("exp"):
        value *= Fraction(10) ** int(m.group("exp"))
    elif not m.group("den") and not m.group("pct"):
        p = _POW10_RE.match(s, m.end())
        if p is not None:
            value *= Fraction(10) ** int(p.group(1))
        else:
            p = _POWER_AFTER_RE.match(s, m.end())
            if p is not None and (value != 0 or int(p.group(1)) >= 0):
                value = value ** int(p.group(1))
    if m.group("scale"):
        value *= _SCALES[m.group("scale").lower()]
    sign = (m.group("sign") or "").strip() + (m.group("sign2") or "").strip()
    if sign.count("-") % 2 == 1:
        value = -value
    return value


_parse_arith = _cache_short(_parse_arith_uncached)


def _decimals(value: Fraction) -> int | None:
    """Number of decimals of a terminating expansion (``0.75`` -> 2), None if repeating."""
    den = value.denominator
    twos = (den & -den).bit_length() - 1
    den >>= twos
    fives = 0
    while den % 5 == 0:
        den //= 5
        fives += 1
    return max(twos, fives) if den == 1 else None


def _format_number(value: Fraction) -> str:
    """Voting key of a number, exact: ``"18"``, ``"0.75"``, ``"3244047.0999999996"``, ``"1/3"``.

    Terminating values keep all their decimals and repeating ones become ``p/q``, so the
    tolerant comparison of :func:`_numbers_close` gives the same result on keys as on values.
    """
    if value.denominator == 1:
        return str(value.numerator)
    d = _decimals(value)
    if d is None or d > 30:
        return f"{value.numerator}/{value.denominator}"
    scaled = abs(value.numerator) * (10**d // value.denominator)
    whole, frac = divmod(scaled, 10**d)
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{frac:0{d}d}"


_ARTEFACT_TOL = Fraction(1, 10**9)


@lru_cache(maxsize=16)
def _rel_tol(value: float) -> Fraction:
    return Fraction(str(value))


def _numbers_close(a: Fraction, b: Fraction, rel_tol: Fraction) -> bool:
    """Numeric equality that forgives rounding, exactly (no float error).

    * Values written with the same number of decimals must be equal (so two integers compare
      exactly, whatever their size).
    * Otherwise values within a relative ``1e-9`` (float artefacts such as
      ``3244047.0999999996`` vs ``3244047.1``) are equal.
    * Otherwise the less precise value, written with ``d >= 1`` decimals, must be the more
      precise one rounded or truncated to ``d`` decimals (``|a - b| <= 10**-d``) *and* within
      ``rel_tol`` relatively: ``14053029.67`` matches ``14053029.666666666`` and ``0.3333333``
      matches ``1/3``, but ``0.33`` does not match ``1/3``.
    * An integer never matches a non-integer beyond artefacts: ``3431580.5`` != ``3431580``.
    """
    if a == b:
        return True
    da, db = _decimals(a), _decimals(b)
    if da is not None and da == db:
        return False
    diff = abs(a - b)
    scale = max(abs(a), abs(b))
    if diff <= scale * _ARTEFACT_TOL:
        return True
    if da is not None and db is not None:
        d = min(da, db)
    elif da is not None:
        d = da
    elif db is not None:
        d = db
    else:
        return False
    if d == 0:
        return False
    return diff <= Fraction(1, 10**d) and diff <= scale * rel_tol


# --------------------------------------------------------------------------------------------
# Yes/no helpers
# --------------------------------------------------------------------------------------------

_YES_WORDS = frozenset({"yes", "true"})
_NO_WORDS = frozenset({"no", "false"})
_YESNO_CORE = _YES_WORDS | _NO_WORDS
_NEGATIONS = frozenset({"not", "never", "nor", "neither", "cannot", "t"})  # "t": isn't, don't
_WORD_TOKEN_RE = re.compile(r"[a-z]+")


def _yesno_key_uncached(answer: str) -> str | None:
    s = answer.strip()[:400].lower()
    if "\\" in s:
        boxed = find_boxed(s)
        if boxed is not None:
            s = boxed
        s = _TEXT_CMD_RE.sub(r" \1 ", s)
    words = _WORD_TOKEN_RE.findall(s)
    if not words:
        return None
    first = words[0]
    if first in _YES_WORDS or (first == "y" and len(words) == 1):
        return "yes"
    if first in _NO_WORDS or (first == "n" and len(words) == 1):
        return "no"
    # A short answer with exactly one polarity word and no negation: "definitely yes",
    # "it is false" (but not "not true").
    if len(words) <= 8 and not _NEGATIONS.intersection(words):
        pol = {"yes" if w in _YES_WORDS else "no" for w in words if w in _YESNO_CORE}
        if len(pol) == 1:
            return pol.pop()
    return None


_yesno_key = _cache_short(_yesno_key_uncached)


# --------------------------------------------------------------------------------------------
# MATH helpers: normalisation
# --------------------------------------------------------------------------------------------

_MATH_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u00b7": "\\cdot ",
    "\u00d7": "\\times ",
    "\u00b0": "^\\circ",
    "\u03c0": "\\pi ",
    "\u221a": "\\sqrt",
    "\u221e": "\\infty ",
    "\u00a0": " ",
}
_MATH_DROP_RE = re.compile(
    r"\\left\b\.?|\\right\b\.?|\\[bB]igg?[lr]?\b|\\displaystyle\b|(?<!\\)\\[,;:!> ]|\\q?quad\b"
    r"|\\(?:mathrm|text)\{\s*\}|~"
)
_DEGREE_RE = re.compile(r"(?:\{\})?\^\s*\{?\s*\\circ\s*\}?|\\degree\b")
_UNIT_TAIL_RE = re.compile(
    r"(?<=[\d}).a-zA-Z])\s*\\(?:text|textbf|mbox|mathrm|textnormal)\s*\{\s*[A-Za-z][A-Za-z .]*\}"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_PLAIN_UNIT_TAIL_RE = re.compile(
    r"^(-?[\d.,]+|\\frac\{\d+\}\{\d+\})\s+(?:[a-zA-Z]{2,}\.?\s*){1,2}(?:\^\s*\{?[23]\}?)?$"
)
_TEXT_UNWRAP_RE = re.compile(
    r"\\(?:text|textbf|textit|textnormal|mbox|mathrm|mathbf|mathit|operatorname)\s*\{([^{}]*)\}"
)
_FRAC_SHORT_RE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_SHORT_NUM_RE = re.compile(r"\\frac\s*(\d)\s*(?=\{)")
_FRAC_SHORT_DEN_RE = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT_RE = re.compile(r"\\sqrt\s*(\d)")
_CMD_SPACE_RE = re.compile(r"\\[a-zA-Z]+$")
_WS_RE = re.compile(r"\s+")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_INT_RE = re.compile(r"^-?\d+$")
_DEC_RE = re.compile(r"^-?(?:\d+\.\d*|\.\d+)$")
_SLASH_FRAC_RE = re.compile(r"^(-?)(\d+)/(\d+)$")
_TEX_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_MIXED_RE = re.compile(r"^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_CHOICE_RE = re.compile(r"^\(([A-Ea-e])\)$")
_WORD_ANSWER_RE = re.compile(r"^[A-Za-z][A-Za-z' -]*[A-Za-z]$")
_RATIONAL_KEY_RE = re.compile(r"^-?\d+(?:/\d+)?$")


def _strip_math_wrappers(s: str) -> str:
    changed = True
    while changed and s:
        changed = False
        for opener, closer in _MATH_WRAPPERS:
            if s.startswith(opener) and s.endswith(closer) and len(s) >= len(opener) + len(closer):
                s = s[len(opener) : len(s) - len(closer)].strip()
                changed = True
    return s


def _remove_spaces(s: str) -> str:
    """Remove whitespace, keeping one space where it ends a command name (``\\pi r``)."""
    if not s or (" " not in s and "\t" not in s and "\n" not in s):
        return s
    out: list[str] = []
    last = 0
    for m in _WS_RE.finditer(s):
        out.append(s[last : m.start()])
        prev = s[max(0, m.start() - 32) : m.start()]
        nxt = s[m.end() : m.end() + 1]
        if nxt.isalpha() and _CMD_SPACE_RE.search(prev):
            out.append(" ")
        last = m.end()
    out.append(s[last:])
    return "".join(out)


def _rational_key(s: str) -> str | None:
    """``p`` or ``p/q`` (reduced) when ``s`` is a plain rational literal, else None."""
    if len(s) > _MAX_DIGITS:
        return None
    value: Fraction | None = None
    try:
        if _INT_RE.match(s):
            value = Fraction(int(s))
        elif _DEC_RE.match(s):
            value = Fraction(s)
        elif m := _SLASH_FRAC_RE.match(s):
            if int(m.group(3)) != 0:
                value = Fraction(int(m.group(2)), int(m.group(3)))
                value = -value if m.group(1) else value
        elif m := _TEX_FRAC_RE.match(s):
            if int(m.group(3)) != 0:
                value = Fraction(int(m.group(2)), int(m.group(3)))
                value = -value if m.group(1) else value
        elif m := _MIXED_RE.match(s):
            if int(m.group(4)) != 0:
                value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
                value = -value if m.group(1) else value
    except (ValueError, ZeroDivisionError):
        return None
    if value is None:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _math_key_uncached(answer: str) -> str | None:
    """Canonical string of a MATH answer (the voting key)."""
    s = answer.strip()
    if not s:
        return None
    if _has_marker(s):
        s = next(_candidates_reversed(s), s)
    boxed = find_boxed(s)
    if boxed is not None:
        s = boxed
    s = _strip_math_wrappers(s.strip())
    if any(ch in s for ch in _MATH_UNICODE):
        for k, v in _MATH_UNICODE.items():
            s = s.replace(k, v)
    s = _MATH_DROP_RE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _DEGREE_RE.sub("", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = s.strip()
    s = _UNIT_TAIL_RE.sub("", s).strip()
    s = _TEXT_UNWRAP_RE.sub(r"\1", s).strip()
    s = _PLAIN_UNIT_TAIL_RE.sub(r"\1", s)
    s = _remove_spaces(s)
    s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_SHORT_NUM_RE.sub(r"\\frac{\1}", s)
    s = _FRAC_SHORT_DEN_RE.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", s)
    while s.endswith((".", ",", ";")) and not s.endswith("\\,"):
        s = s[:-1]
    if s.startswith("+") and len(s) > 1:
        s = s[1:]
    if not s:
        return None
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    rk = _rational_key(s)
    if rk is not None:
        return rk
    m = _CHOICE_RE.match(s)
    if m is not None:
        return m.group(1).upper()
    if _WORD_ANSWER_RE.match(s) and len(s) > 1:
        return s.lower()
    return s


_math_key = _cache_short(_math_key_uncached)


@lru_cache(maxsize=8192)
def _rational_of_key(key: str) -> Fraction | None:
    if not _RATIONAL_KEY_RE.match(key) or len(key) > _MAX_DIGITS:
        return None
    try:
        return Fraction(key)
    except (ValueError, ZeroDivisionError):
        return None


# --------------------------------------------------------------------------------------------
# MATH helpers: guarded symbolic verification
# --------------------------------------------------------------------------------------------

_MAX_SYMBOLIC_LEN = 300
_MAX_NESTING = 12
_MAX_POWER_COST = 10**6
_FACTORIAL_RE = re.compile(r"(\d+)\s*!(?!=)")
_DIGITS_RE = re.compile(r"\d+")
_CMD_NAME_RE = re.compile(r"\\[a-zA-Z]+")
_POWER_RE = re.compile(r"\^|\*\*")
_RISKY_FUNC_RE = re.compile(
    r"\\(?:binom|dbinom|tbinom|choose|Gamma|prod|sum)\b|\b(?:gamma|factorial|binomial)\b"
)


def _group_after(s: str, pos: int) -> str:
    """The exponent that starts at ``s[pos]`` (braced group, parenthesised group or token)."""
    n = len(s)
    while pos < n and s[pos] == " ":
        pos += 1
    if pos >= n:
        return ""
    ch = s[pos]
    if ch in "{(":
        end = _balanced(s, pos, ch, "}" if ch == "{" else ")")
        return s[pos:] if end < 0 else s[pos:end]
    if ch in "-+":
        return ch + _group_after(s, pos + 1)
    if ch.isdigit():
        m = _DIGITS_RE.match(s, pos)
        return m.group(0) if m else ch
    if ch == "\\":
        m = _CMD_NAME_RE.match(s, pos)
        if m:
            return m.group(0) + _group_after(s, m.end())
    return ch


def _too_risky(s: str) -> bool:
    """Static screen for inputs whose symbolic evaluation could run away inside C code.

    Timeouts only interrupt Python bytecode; a single huge integer power or factorial computed
    by CPython/gmpy cannot be interrupted, so such inputs never reach sympy.
    """
    if len(s) > _MAX_SYMBOLIC_LEN:
        return True
    depth = max_depth = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            if depth > max_depth:
                max_depth = depth
        elif ch in "})]":
            depth -= 1
    if max_depth > _MAX_NESTING:
        return True
    digit_runs = _DIGITS_RE.findall(s)
    longest = max((len(d) for d in digit_runs), default=1)
    if longest > 100:
        return True
    cost = 1
    powers = 0
    for m in _POWER_RE.finditer(s):
        powers += 1
        if powers > 16:
            return True
        exp = _group_after(s, m.end())
        if "^" in exp or "**" in exp:
            return True
        runs = _DIGITS_RE.findall(exp)
        if any(len(r) > 6 for r in runs):
            return True
        val = max((int(r) for r in runs), default=1)
        cost *= max(val, 1)
        if cost * longest > _MAX_POWER_COST:
            return True
    plain = s.replace("\\!", "").replace("!=", "")
    bangs = plain.count("!")
    if bangs > 1:
        return True
    if bangs:
        fact = _FACTORIAL_RE.search(plain)
        if fact is not None:  # n! of a literal
            if len(fact.group(1)) > 4 or int(fact.group(1)) > 2000:
                return True
        elif powers or longest > 2:
            # factorial of a group, e.g. (3+4)!: only with small numbers and no powers
            return True
    if _RISKY_FUNC_RE.search(s) and (powers or longest > 3):
        return True
    return False


class _Deadline(BaseException):
    """Raised asynchronously in a thread whose time budget ran out.

    A ``BaseException`` so that the broad ``except Exception`` handlers inside sympy and
    math-verify cannot swallow it.
    """


_HAS_ASYNC_EXC = hasattr(ctypes, "pythonapi") and hasattr(
    getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc"
)
if _HAS_ASYNC_EXC:
    _set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    _set_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
    _set_async_exc.restype = ctypes.c_int


def _raise_in_thread(tid: int, exc: type[BaseException] | None) -> None:
    if _HAS_ASYNC_EXC:
        _set_async_exc(tid, None if exc is None else id(exc))


class _Watchdog:
    """One daemon thread that interrupts overrunning checks on any thread.

    ``signal.alarm`` (what math-verify uses) only works on the main thread. Instead, when a
    thread's deadline passes, the watchdog raises :class:`_Deadline` in it via
    ``PyThreadState_SetAsyncExc`` and keeps re-raising every ``refire`` seconds until the thread
    disarms (in case some bare ``except:`` swallowed it).
    """

    refire = 0.1

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, float] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def arm(self, tid: int, deadline: float) -> None:
        with self._cond:
            self._due[tid] = deadline
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="langchain-rstar-answer-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def disarm(self, tid: int) -> None:
        with self._cond:
            self._due.pop(tid, None)
            if tid in self._fired:
                self._fired.discard(tid)
                _raise_in_thread(tid, None)  # clear a pending, undelivered interrupt

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                wait: float | None = None
                for tid, due in list(self._due.items()):
                    if due <= now:
                        _raise_in_thread(tid, _Deadline)
                        self._fired.add(tid)
                        due = now + self.refire
                        self._due[tid] = due
                    left = due - now
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)


_WATCHDOG = _Watchdog()
_LOCAL = threading.local()


def _reset_after_fork() -> None:
    """A forked child has no watchdog thread and may inherit held locks: start afresh."""
    global _WATCHDOG, _LOCAL, _MV_LOCK
    _WATCHDOG = _Watchdog()
    _LOCAL = threading.local()
    _MV_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _disarm(tid: int) -> None:
    for _ in range(100):
        try:
            _WATCHDOG.disarm(tid)
            return
        except _Deadline:
            continue


def _call_with_deadline(fn: Callable[[], _T], seconds: float, default: _T) -> tuple[_T, bool]:
    """Run ``fn()`` on the current thread, giving up after ``seconds``.

    Works on the main thread and on worker threads alike. Nested calls run under the outer
    deadline.

    Returns:
        ``(result, timed_out)``; ``result`` is ``default`` when it timed out.
    """
    if getattr(_LOCAL, "armed", False) or not _HAS_ASYNC_EXC:
        return fn(), False
    tid = threading.get_ident()
    _LOCAL.armed = True
    result, timed_out = default, False
    try:
        try:
            try:
                _WATCHDOG.arm(tid, time.monotonic() + seconds)
                result = fn()
            finally:
                _disarm(tid)
        except _Deadline:
            timed_out = True
            _disarm(tid)
    finally:
        _LOCAL.armed = False
    return result, timed_out


_MV_LOCK = threading.Lock()
_MV_STATE: dict[str, Any] = {}


def _math_verify() -> tuple[Any, Any] | None:
    """``(parse, verify)`` from math-verify, imported and warmed up once (None if missing)."""
    state = _MV_STATE.get("fns")
    if state is not None or _MV_STATE.get("missing"):
        return state
    with _MV_LOCK:
        if "fns" in _MV_STATE or _MV_STATE.get("missing"):
            return _MV_STATE.get("fns")
        try:
            import math_verify  # type: ignore[import-untyped]
            import math_verify.grader as mv_grader  # type: ignore[import-untyped]
            import math_verify.parser as mv_parser  # type: ignore[import-untyped]
        except Exception:  # pragma: no cover - depends on the environment
            logger.warning("math-verify is not installed; MATH answers compare as strings")
            _MV_STATE["missing"] = True
            return None
        # We disable math-verify's signal-based timeouts (main-thread only) and time-limit
        # the calls ourselves; silence its one-time warning about that.
        for mod in (mv_parser, mv_grader):
            if hasattr(mod, "TIMEOUT_WARNING_SHOWN"):
                mod.TIMEOUT_WARNING_SHOWN = True
        parse, verify = math_verify.parse, math_verify.verify
        # Warm up outside any deadline so lazy imports/grammar set-up are never interrupted.
        for a, b in (
            ("\\frac{1}{2}", "0.5"),
            ("x^2-1", "(x-1)(x+1)"),
            ("[\\frac{\\pi^2}{8},\\frac{5\\pi}{4}]", "[1,2)"),
            ("(1,\\frac{\\pi}{2})", "(-\\infty,0]\\cup(1,2)"),
            ("x=5", "\\{1,2\\}"),
            ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "1+\\sqrt{2}i"),
            ("\\sin x+\\log 2", "3\\sqrt{13}"),
        ):
            try:
                verify(
                    parse(f"${a}$", parsing_timeout=None),
                    parse(f"${b}$", parsing_timeout=None),
                    timeout_seconds=None,
                )
            except Exception:  # pragma: no cover
                pass
        _MV_STATE["fns"] = (parse, verify)
        return _MV_STATE["fns"]


@lru_cache(maxsize=4096)
def _mv_parse(key: str) -> tuple[Any, ...]:
    fns = _math_verify()
    if fns is None:
        return ()
    parse = fns[0]
    try:
        return tuple(parse(f"${key}$", parsing_timeout=None))
    except Exception:
        return ()


def _mv_equal(gold_key: str, pred_key: str, symmetric: bool) -> bool:
    fns = _math_verify()
    if fns is None:
        return False
    verify = fns[1]
    pg = _mv_parse(gold_key)
    pp = _mv_parse(pred_key)
    if not pg or not pp:
        return False
    try:
        if verify(list(pg), list(pp), timeout_seconds=None):
            return True
        return symmetric and bool(verify(list(pp), list(pg), timeout_seconds=None))
    except Exception:
        return False


_SYM_CACHE: dict[tuple[str, str, bool], bool] = {}
_SYM_CACHE_MAX = 16384


def _symbolic_equal(gold_key: str, pred_key: str, symmetric: bool, limit: float) -> bool:
    if symmetric and pred_key < gold_key:
        gold_key, pred_key = pred_key, gold_key
    ck = (gold_key, pred_key, symmetric)
    hit = _SYM_CACHE.get(ck)
    if hit is not None:
        return hit
    if _too_risky(gold_key) or _too_risky(pred_key):
        return False
    if _math_verify() is None:
        return False
    result, timed_out = _call_with_deadline(
        lambda: _mv_equal(gold_key, pred_key, symmetric), limit, default=False
    )
    if not timed_out:  # a timeout may be due to load: do not remember it
        if len(_SYM_CACHE) >= _SYM_CACHE_MAX:
            _SYM_CACHE.clear()
        _SYM_CACHE[ck] = bool(result)
    return bool(result)


# --------------------------------------------------------------------------------------------
# Checkers
# --------------------------------------------------------------------------------------------


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


class AnswerChecker:
    """Extracts, normalises and compares answers for one task family.

    The base class implements the ``arithmetic`` family (numbers); :class:`MathChecker` and
    :class:`YesNoChecker` override the family-specific parts. Use :func:`get_checker` to get
    the checker for a dataset.

    Attributes:
        task: The task family (``"arithmetic"``, ``"math"`` or ``"yesno"``).
        rel_tol: Relative tolerance allowed when one number is a rounding of the other (see
            :func:`_numbers_close`).
    """

    task: str = "arithmetic"
    rel_tol: float = 1e-6

    # -- extraction ---------------------------------------------------------------------------

    def extract(self, text: str) -> str | None:
        """Return the final answer stated in a model completion, or None.

        Understands "The answer is X.", "The final answer is: X", "Answer: X", "#### X" and
        ``\\boxed{X}`` (nested braces); the statement made last wins, preferring the last one
        that this family can interpret. Nothing is guessed from loose numbers: see
        :meth:`extract_loose` for that.

        Args:
            text: A model completion.

        Returns:
            The stated answer (stripped of markdown, math delimiters and a final period), or
            None when the completion states no answer.
        """
        if not text or not isinstance(text, str):
            return None
        last: str | None = None
        for ans in _candidates_reversed(text):
            if self._interpretable(ans):
                return ans
            if last is None:
                last = ans
        return last

    def extract_loose(self, text: str) -> str | None:
        """Like :meth:`extract`, but fall back to the last number in the text.

        Args:
            text: A model completion.

        Returns:
            The stated answer, else (arithmetic) the last number mentioned, else None.
        """
        ans = self.extract(text)
        if ans is not None and self._interpretable(ans):
            return ans
        last: str | None = None
        for m in _NUMBER_RE.finditer((text or "")[-20000:]):
            last = m.group(0).strip()
        return last if last is not None else ans

    def _interpretable(self, answer: str) -> bool:
        return self.normalize(answer) is not None

    # -- normalisation / equivalence ------------------------------------------------------------

    def normalize(self, answer: str | None) -> str | None:
        """Canonical form of an answer (the voting key), or None if it cannot be read.

        Equal keys imply :meth:`equivalent` answers. For arithmetic the key is the number:
        an integer string (``"1234"``) or a 12-significant-digit decimal (``"0.333333333333"``).

        Args:
            answer: An extracted answer (a whole completion also works: its stated answer is
                used).
        """
        value = self._value(answer)
        return None if value is None else _format_number(value)

    def _value(self, answer: str | None) -> Fraction | None:
        if answer is None:
            return None
        if not isinstance(answer, str):
            answer = _number_to_str(answer) if isinstance(answer, (int, float)) else str(answer)
            if answer is None:
                return None
        if _has_marker(answer):
            for a in _candidates_reversed(answer):
                v = _parse_arith(a)
                if v is not None:
                    return v
        return _parse_arith(answer)

    def equivalent(self, a: str | None, b: str | None) -> bool:
        """Whether two answers are the same (symmetric, never raises).

        Args:
            a: First answer.
            b: Second answer.
        """
        try:
            ka, kb = self.normalize(a), self.normalize(b)
            if ka is None or kb is None:
                return False
            return ka == kb or self._keys_equivalent(ka, kb)
        except (Exception, _Deadline):  # pragma: no cover - defensive
            logger.debug("equivalence check failed", exc_info=True)
            return False

    def _keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        if ka == kb:
            return True
        va, vb = _to_fraction(ka), _to_fraction(kb)
        if va is None or vb is None:
            return False
        return _numbers_close(va, vb, _rel_tol(self.rel_tol))

    def _may_merge(self, keys: Sequence[str]) -> bool:
        """Whether distinct voting keys could still be equivalent (arithmetic: non-integers)."""
        return any(self._mergeable_key(k) for k in keys)

    def _mergeable_key(self, key: str) -> bool:
        """Whether ``key`` may be equivalent to some *different* key.

        Two non-mergeable keys are never compared by :func:`majority_vote`.
        """
        return not _INT_RE.match(key)

    # -- grading -------------------------------------------------------------------------------

    def gold(self, solution: object) -> str | None:
        """The gold answer inside a dataset ``solution`` field.

        Handles GSM8K (``"... #### 18"``), numeric solutions (SVAMP / GSM-Hard floats such as
        ``51.0`` or ``14053029.666666666``), MATH (last ``\\boxed{...}``; a record mapping with
        ``extra_info.answer`` or ``answer`` is also accepted) and StrategyQA (``"true"``).

        Args:
            solution: The solution field (str, int, float, bool) or a whole record mapping.

        Returns:
            The gold answer as a string, or None if there is none.
        """
        if solution is None:
            return None
        if isinstance(solution, Mapping):
            extra = solution.get("extra_info")
            if isinstance(extra, Mapping) and extra.get("answer") is not None:
                return self.gold(extra["answer"])
            for key in ("answer", "solution"):
                if solution.get(key) is not None:
                    return self.gold(solution[key])
            return None
        if isinstance(solution, (bool, int, float)):
            return _number_to_str(solution)
        text = str(solution).strip()
        if "####" in text:
            text = text.rsplit("####", 1)[1].strip()
            return text.replace(",", "") or None
        boxed = find_boxed(text)
        if boxed is not None:
            return boxed
        return text or None

    def is_correct(self, prediction: str | None, solution: object) -> bool:
        """Grade a prediction (an extracted answer) against a dataset solution.

        Args:
            prediction: The predicted answer, e.g. from :meth:`extract`.
            solution: The dataset solution field (see :meth:`gold`).
        """
        if prediction is None:
            return False
        try:
            gold = self.gold(solution)
            if gold is None:
                return False
            kg, kp = self.normalize(gold), self.normalize(prediction)
            if kg is None or kp is None:
                return False
            return kg == kp or self._keys_equivalent(kg, kp, gold_first=True)
        except (Exception, _Deadline):  # pragma: no cover - defensive
            logger.debug("grading failed", exc_info=True)
            return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r})"


ArithmeticChecker = AnswerChecker


class YesNoChecker(AnswerChecker):
    """Checker for yes/no questions (StrategyQA): ``yes``/``no``/``true``/``false``."""

    task = "yesno"

    def normalize(self, answer: str | None) -> str | None:
        """``"yes"``, ``"no"`` or None.

        Args:
            answer: An extracted answer or a bool.
        """
        if answer is None:
            return None
        if isinstance(answer, bool):
            return "yes" if answer else "no"
        if not isinstance(answer, str):
            return None
        if _has_marker(answer):
            for a in _candidates_reversed(answer):
                k = _yesno_key(a)
                if k is not None:
                    return k
        return _yesno_key(answer)

    def extract_loose(self, text: str) -> str | None:
        """Like :meth:`extract`, falling back to the last standalone yes/no/true/false word.

        Args:
            text: A model completion.
        """
        ans = self.extract(text)
        if ans is not None and self._interpretable(ans):
            return ans
        words = [w for w in _WORD_TOKEN_RE.findall((text or "")[-20000:].lower())]
        for w in reversed(words):
            if w in _YESNO_CORE:
                return w
        return ans

    def _keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        return ka == kb

    def _may_merge(self, keys: Sequence[str]) -> bool:
        return False

    def _mergeable_key(self, key: str) -> bool:
        return False


class MathChecker(AnswerChecker):
    """Checker for competition-math answers (MATH, MATH-500).

    Answers are compared by a canonical string (fast path), exact rational arithmetic, and
    finally ``math-verify`` (symbolic), the latter limited to ``time_limit`` seconds per check
    on any thread and skipped for inputs that could blow up uninterruptibly.

    Args:
        time_limit: Seconds allowed for one symbolic check (parsing both sides included).
        vote_time_budget: Seconds a :func:`majority_vote` may spend on symbolic merging
            before falling back to key equality.
    """

    task = "math"

    def __init__(self, time_limit: float = 1.0, vote_time_budget: float = 5.0) -> None:
        self.time_limit = float(time_limit)
        self.vote_time_budget = float(vote_time_budget)

    def normalize(self, answer: str | None) -> str | None:
        """Canonical LaTeX string of an answer.

        Strips ``$``/``\\(\\)``, whitespace, ``\\left``/``\\right``, ``\\!``, degrees,
        ``\\%``, ``\\$``, ``\\text{}`` units and trailing periods; ``\\dfrac`` -> ``\\frac``;
        rational literals become ``p`` or ``p/q`` (``0.5``, ``\\frac12`` and ``1/2`` all give
        ``"1/2"``); words are lower-cased.

        Args:
            answer: An extracted answer (or a completion: its stated answer is used).
        """
        if answer is None:
            return None
        if not isinstance(answer, str):
            if isinstance(answer, (int, float)) and not isinstance(answer, bool):
                answer = _number_to_str(answer)
                if answer is None:
                    return None
            else:
                return None
        return _math_key(answer)

    def _keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        if ka == kb:
            return True
        ra, rb = _rational_of_key(ka), _rational_of_key(kb)
        if ra is not None and rb is not None:
            return _numbers_close(ra, rb, _rel_tol(self.rel_tol))
        if _WORD_ANSWER_RE.match(ka) or _WORD_ANSWER_RE.match(kb):
            # "evelyn" vs "evelny": sympy would multiply the letters and call them equal.
            if len(ka) > 1 and len(kb) > 1:
                return False
        return _symbolic_equal(ka, kb, symmetric=not gold_first, limit=self.time_limit)

    def _may_merge(self, keys: Sequence[str]) -> bool:
        return True

    def _mergeable_key(self, key: str) -> bool:
        return True

    def __repr__(self) -> str:
        return f"MathChecker(time_limit={self.time_limit})"


# Backwards-compatible private names.
_YesNoChecker = YesNoChecker
_MathChecker = MathChecker


def get_checker(task: str) -> AnswerChecker:
    """Return the checker for a task family or dataset name.

    Args:
        task: ``arithmetic``, ``math``, ``yesno`` or a dataset name (``gsm8k``, ``gsm8khard``,
            ``svamp``, ``math``, ``math500``, ``stg``, ``strategyqa``); case-insensitive.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones).
    """
    family = TASK_ALIASES.get(str(task).strip().lower())
    if family == "arithmetic":
        return AnswerChecker()
    if family == "yesno":
        return YesNoChecker()
    if family == "math":
        return MathChecker()
    raise ValueError(
        f"unknown task {task!r}; expected a task family {TASK_FAMILIES} or one of "
        f"{sorted(set(TASK_ALIASES) - set(TASK_FAMILIES))}"
    )


# --------------------------------------------------------------------------------------------
# Voting
# --------------------------------------------------------------------------------------------


@dataclass
class VoteResult:
    """Outcome of a majority vote.

    Attributes:
        answer: The first-seen answer of the majority group (None if nothing was answered).
        confidence: Share of *all* samples (unanswered ones included) in the majority group.
        counts: Group size keyed by each group's first-seen answer.
        winners: Indices of the samples in the majority group, ascending.
    """

    answer: str | None
    confidence: float
    counts: dict[str, int] = field(default_factory=dict)
    winners: list[int] = field(default_factory=list)


def majority_vote(answers: Sequence[str | None], checker: AnswerChecker) -> VoteResult:
    """Majority vote over answers, grouping equivalent ones.

    Answers are grouped by :meth:`AnswerChecker.normalize` key in one pass (O(n)); groups with
    different keys are then merged when equivalent (arithmetic: only non-integer keys can
    merge; yes/no: never; math: pairwise checks between distinct keys, within the checker's
    ``vote_time_budget``). Unreadable answers (None or no key) count as unanswered.

    ``confidence`` is the share of *all* samples (unanswered ones included) that agree with
    the majority answer; ``winners`` are the indices of the samples in the majority group.
    Ties go to the group seen first.

    Args:
        answers: Extracted answers, None for samples without one.
        checker: The task's checker.
    """
    n = len(answers)
    if n == 0:
        return VoteResult(None, 0.0, {}, [])
    by_key: dict[str, int] = {}
    keys: list[str] = []
    reps: list[str] = []
    members: list[list[int]] = []
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        try:
            key = checker.normalize(ans)
        except Exception:  # pragma: no cover - defensive
            key = None
        if key is None:
            continue
        g = by_key.get(key)
        if g is None:
            by_key[key] = len(keys)
            keys.append(key)
            reps.append(ans)
            members.append([i])
        else:
            members[g].append(i)
    if not keys:
        return VoteResult(None, 0.0, {}, [])

    if len(keys) > 1 and checker._may_merge(keys):
        budget = getattr(checker, "vote_time_budget", None)
        stop_at = None if budget is None else time.monotonic() + float(budget)
        roots: list[int] = []
        open_roots: list[int] = []  # roots whose key may equal a different key
        for j in range(len(keys)):
            target = -1
            mergeable = checker._mergeable_key(keys[j])
            if stop_at is None or time.monotonic() < stop_at:
                for r in roots if mergeable else open_roots:
                    try:
                        same = checker._keys_equivalent(keys[r], keys[j])
                    except Exception:  # pragma: no cover - defensive
                        same = False
                    if same:
                        target = r
                        break
            if target < 0:
                roots.append(j)
                if mergeable:
                    open_roots.append(j)
            else:
                members[target].extend(members[j])
                members[j] = []
        roots.sort()
        groups = [(reps[r], sorted(members[r])) for r in roots]
    else:
        groups = [(reps[g], members[g]) for g in range(len(keys))]

    best_rep, best_idx = groups[0]
    for rep, idx in groups[1:]:
        if len(idx) > len(best_idx):
            best_rep, best_idx = rep, idx
    counts = {rep: len(idx) for rep, idx in groups}
    return VoteResult(best_rep, len(best_idx) / n, counts, list(best_idx))
