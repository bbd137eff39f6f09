"""Yes/no answers (StrategyQA): ``yes``/``no``/``true``/``false`` and short phrasings of them.

Why hand-written: the rule is a few lines (first word, or the one polarity word of a short
answer without a negation) and must never read "not true" as "true"; no library does this.
"""

from __future__ import annotations

import re

from langchain_rstar.answers.base import AnswerChecker
from langchain_rstar.answers.extract import (
    _TEXT_CMD_RE,
    LOOSE_TAIL_CHARS,
    _cache_short,
    _candidates_reversed,
    _has_marker,
    find_boxed,
    reference_answer_window,
)

__all__ = ["YesNoChecker"]

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


def _yesno_normalize_uncached(answer: str) -> str | None:
    if _has_marker(answer):
        for a in _candidates_reversed(answer):
            k = _yesno_key_uncached(a)
            if k is not None:
                return k
    return _yesno_key_uncached(answer)


# One time limit and one cache entry per normalisation.
_yesno_normalize = _cache_short(_yesno_normalize_uncached)


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
        return _yesno_normalize(answer)

    def extract_loose(self, text: str) -> str | None:
        """Like :meth:`extract`, falling back to the last standalone yes/no/true/false word.

        Args:
            text: A model completion.
        """
        ans = self.extract(text)
        if ans is not None and self._interpretable(ans):
            return ans
        words = [w for w in _WORD_TOKEN_RE.findall((text or "")[-LOOSE_TAIL_CHARS:].lower())]
        for w in reversed(words):
            if w in _YESNO_CORE:
                return w
        return ans

    def _reference_extract(self, text: str) -> str | None:
        """The reference rule for yes/no: the first yes/no word after "answer is", else the last."""
        window, after_marker = reference_answer_window(text)
        words = [w for w in _WORD_TOKEN_RE.findall(window.lower()) if w in _YESNO_CORE]
        if not words:
            return None
        return words[0] if after_marker else words[-1]
