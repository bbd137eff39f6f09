"""Competition-math answers (MATH, MATH-500): LaTeX keys, exact rationals, symbolic equality.

Why: most MATH answers are decided by a cheap canonical string (``\\dfrac12`` and ``0.5`` both
give ``"1/2"``); the rest need symbolic comparison (``x^2-1`` vs ``(x-1)(x+1)``). That is what
``math-verify`` (Hugging Face) does well, so it is used when installed -- it is an *optional*
dependency (``pip install langchain-rstar[math]``): without it the checker still works, with its
own normaliser and exact rational comparison only, and logs one warning.

What is hand-written and why: the canonical-string normaliser (math-verify has no voting key),
and the guards around math-verify. Its own timeouts use ``signal.alarm`` (main thread only), so
every symbolic check runs under this package's thread watchdog (``_deadline.py``) instead, after
a static screen (:func:`_too_risky`) rejects inputs whose evaluation could blow up inside one C
call (``10^{10^{10}}``, ``99999999!``), where no timeout can help.
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction
from functools import lru_cache
from typing import Any

from langchain_rstar.answers._deadline import _call_with_deadline
from langchain_rstar.answers.arithmetic import _numbers_close, _rel_tol
from langchain_rstar.answers.base import AnswerChecker, _check_extraction
from langchain_rstar.answers.extract import (
    _MATH_WRAPPERS,
    _MAX_DIGITS,
    _balanced,
    _cache_short,
    _candidates_reversed,
    _has_marker,
    _number_to_str,
    _segment_after,
    find_boxed,
    reference_answer_window,
)

__all__ = ["MathChecker"]

logger = logging.getLogger(__name__)

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
# "5 cm", "12 sq. ft", "3 m^2": a number followed by one or two unit words. The words must be
# separated by a period or whitespace, so a long letter run has exactly one way to match (the
# old ``(?:[a-zA-Z]{2,}\.?\s*){1,2}`` tried every split of it: quadratic, issue #19.1).
_PLAIN_UNIT_TAIL_RE = re.compile(
    r"^(-?[\d.,]+|\\frac\{\d+\}\{\d+\})\s+"
    r"[a-zA-Z]{2,}(?:(?:\.\s*|\s+)[a-zA-Z]{2,})?\.?\s*(?:\^\s*\{?[23]\}?)?$"
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


_MAX_ANSWER_CHARS = 2000


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
    if len(s) > _MAX_ANSWER_CHARS:
        # No competition answer is this long; refusing it keeps every step below bounded.
        return None
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


# ------------------------------------------------------------------------------------------
# Guarded symbolic verification (math-verify, optional)
# ------------------------------------------------------------------------------------------

_MAX_SYMBOLIC_LEN = 300
_MAX_NESTING = 12
_MAX_POWER_COST = 10**6
_FACTORIAL_RE = re.compile(r"(?<!\d)(\d+)\s*!(?!=)")
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


class MathChecker(AnswerChecker):
    """Checker for competition-math answers (MATH, MATH-500).

    Answers are compared by a canonical string (fast path), exact rational arithmetic, and
    finally ``math-verify`` (symbolic), the latter limited to ``time_limit`` seconds per check
    on any thread and skipped for inputs that could blow up uninterruptibly.

    Args:
        time_limit: Seconds allowed for one symbolic check (parsing both sides included).
        vote_time_budget: Seconds a :func:`majority_vote` may spend on symbolic merging
            before falling back to key equality.
        extraction: ``"marker"`` (default) or ``"reference"``: the text after the first
            "answer is", else the last ``\\boxed{}``, else the last number.
    """

    task = "math"
    merges_keys = True

    def __init__(
        self, time_limit: float = 1.0, vote_time_budget: float = 5.0, *, extraction: str = "marker"
    ) -> None:
        self.time_limit = float(time_limit)
        self.vote_time_budget = float(vote_time_budget)
        self.extraction = _check_extraction(extraction)

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

    def _reference_extract(self, text: str) -> str | None:
        window, after_marker = reference_answer_window(text)
        if after_marker:
            ans = _segment_after(window, 0)
            return ans or None
        boxed = find_boxed(window)
        if boxed is not None:
            return boxed
        return super()._reference_extract(text)

    def keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        """Equal keys, equal rationals, or symbolically equal (math-verify, time-limited)."""
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

    def __repr__(self) -> str:
        extra = "" if self.extraction == "marker" else f", extraction={self.extraction!r}"
        return f"MathChecker(time_limit={self.time_limit}{extra})"
