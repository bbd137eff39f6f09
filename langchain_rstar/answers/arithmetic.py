"""Numeric answers (GSM8K, GSM-Hard, SVAMP, MultiArith): parsing, exact keys, tolerant equality.

Why hand-written: answers arrive as prose ("$1,200", "3/4 of a cup", "2.5 million",
``\\frac{3}{4}``, "twelve"), and the value must be read *exactly* (``fractions.Fraction``, never
``float`` and never ``eval``) so that voting keys are stable and large integers compare exactly.
Libraries that parse numbers from text (``word2number``, ``price-parser``) each cover one of
these forms and none gives exact rationals, so one small parser covers them all; its regexes are
linear (checked by ``tests/unit_tests/test_redos.py``) and inputs are capped before parsing.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from langchain_rstar.answers.base import AnswerChecker
from langchain_rstar.answers.extract import (
    _MAX_DIGITS,
    _NUMBER_RE,
    _TEXT_CMD_RE,
    _cache_short,
    _candidates_reversed,
    _has_marker,
    _number_to_str,
    find_boxed,
)

__all__ = ["ArithmeticChecker"]

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
_ARITH_DROP_RE = re.compile(r"(?<!\\)\\[,;:!> ]|\\(?:left|right|displaystyle|quad|qquad)\b|\{,\}|~")
# Both are used with ``.match`` right after a number; the look-behind keeps a ``search`` over
# long whitespace runs linear too.
_POW10_RE = re.compile(r"(?<!\s)\s*(?:\\times|\\cdot|x|\*)\s*10\s*\^\s*\{?\s*([-+]?\d{1,3})\s*\}?")
_POWER_AFTER_RE = re.compile(r"(?<!\s)\s*(?:\^|\*\*)\s*\{?\s*([-+]?\d{1,2})(?![\d.])\s*\}?")


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


def _arith_value_uncached(answer: str) -> Fraction | None:
    """The number an answer (or a whole completion: its last readable statement) states."""
    if _has_marker(answer):
        for a in _candidates_reversed(answer):
            v = _parse_arith_uncached(a)
            if v is not None:
                return v
    return _parse_arith_uncached(answer)


# One time limit and one cache entry per normalisation.
_arith_value = _cache_short(_arith_value_uncached)


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


class ArithmeticChecker(AnswerChecker):
    """Checker for numeric answers (GSM8K, GSM-Hard, SVAMP).

    Keys are exact numbers (``"18"``, ``"0.75"``, ``"1/3"``); two different keys are equal when
    one is a rounding of the other (see :func:`_numbers_close`, ``rel_tol``).

    Args:
        extraction: ``"marker"`` (default) or ``"reference"`` (see :class:`AnswerChecker`).
    """

    task = "arithmetic"

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
        return _arith_value(answer)

    def keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        """Numbers equal up to rounding (see :func:`_numbers_close`)."""
        if ka == kb:
            return True
        va, vb = _to_fraction(ka), _to_fraction(kb)
        if va is None or vb is None:
            return False
        return _numbers_close(va, vb, _rel_tol(self.rel_tol))

    def mergeable_key(self, key: str) -> bool:
        """Only non-integer keys can equal a different key (integers compare exactly)."""
        return not _INT_KEY_RE.match(key)


_INT_KEY_RE = re.compile(r"^-?\d+$")
