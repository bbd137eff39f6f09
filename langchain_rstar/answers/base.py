"""The answer-checker contract: what a task family must provide to be searched and graded.

Why a base class: the search votes over sampled answers, the verifier compares candidates and
the evaluation grades predictions against gold solutions, and all three must use the *same*
notion of "the same answer". :class:`AnswerChecker` fixes that contract in one place:

* :meth:`~AnswerChecker.extract` ``(text) -> str | None`` -- the answer a completion states.
* :meth:`~AnswerChecker.normalize` ``(answer) -> str | None`` -- the voting key; ``None`` when
  the answer cannot be read. **The one method a subclass must implement.**
* :meth:`~AnswerChecker.equivalent` ``(a, b) -> bool`` -- symmetric, never raises. Answers
  with equal keys are always equivalent; :meth:`~AnswerChecker.keys_equivalent` may merge
  *different* keys (for example ``0.5`` and ``1/2``), and :func:`~langchain_rstar.answers.
  majority_vote` uses the same hook, so voting and grading agree.

A custom task subclasses it::

    class ColourChecker(AnswerChecker):
        task = "colour"

        def normalize(self, answer):
            words = (answer or "").lower().split()
            return words[-1] if words else None

and passes an instance wherever a ``checker`` is accepted. The three built-in families live in
``arithmetic.py``, ``math.py`` and ``yesno.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar

from langchain_rstar.answers._deadline import _Deadline
from langchain_rstar.answers.extract import (
    _NUMBER_RE,
    EXTRACTION_MODES,
    LOOSE_TAIL_CHARS,
    _candidates_reversed,
    _number_to_str,
    find_boxed,
    reference_extract,
)

__all__ = ["AnswerChecker"]

logger = logging.getLogger(__name__)


class AnswerChecker:
    """Extracts, normalises and compares answers for one task family (base class).

    Subclasses must implement :meth:`normalize`; everything else has a working default. Use
    :func:`~langchain_rstar.answers.get_checker` for the built-in families.

    Args:
        extraction: How :meth:`extract` finds the answer: ``"marker"`` (default: the last
            stated answer this family can read) or ``"reference"`` (as the rStar reference
            evaluator: the first number after "answer is", else the last number).

    Attributes:
        task: The task family name.
        rel_tol: Relative tolerance allowed when one number is a rounding of the other.
        vote_time_budget: Seconds :func:`~langchain_rstar.answers.majority_vote` may spend
            merging distinct keys (None: no limit; merging is cheap for most families).
    """

    task: str = "custom"
    rel_tol: float = 1e-6
    vote_time_budget: float | None = None
    extraction: str = "marker"
    #: Whether :meth:`keys_equivalent` can ever merge two *different* keys.
    merges_keys: ClassVar[bool] = False

    def __init__(self, *, extraction: str = "marker") -> None:
        self.extraction = _check_extraction(extraction)

    # -- extraction ---------------------------------------------------------------------------

    def extract(self, text: str) -> str | None:
        """Return the final answer stated in a model completion, or None.

        With ``extraction="marker"``: understands "The answer is X.", "The final answer is:
        X", "Answer: X", "#### X" and ``\\boxed{X}`` (nested braces); the statement made last
        wins, preferring the last one that this family can interpret. Nothing is guessed from
        loose numbers: see :meth:`extract_loose` for that. With ``extraction="reference"``: see
        :func:`~langchain_rstar.answers.extract.reference_extract`.

        Args:
            text: A model completion.

        Returns:
            The stated answer (stripped of markdown, math delimiters and a final period), or
            None when the completion states no answer.
        """
        if not text or not isinstance(text, str):
            return None
        if self.extraction == "reference":
            return self._reference_extract(text)
        last: str | None = None
        for ans in _candidates_reversed(text):
            if self._interpretable(ans):
                return ans
            if last is None:
                last = ans
        return last

    def _reference_extract(self, text: str) -> str | None:
        return reference_extract(text)

    def extract_loose(self, text: str) -> str | None:
        """Like :meth:`extract`, but fall back to the last number in the text.

        Args:
            text: A model completion.

        Returns:
            The stated answer, else the last number mentioned, else None.
        """
        ans = self.extract(text)
        if ans is not None and self._interpretable(ans):
            return ans
        last: str | None = None
        for m in _NUMBER_RE.finditer((text or "")[-LOOSE_TAIL_CHARS:]):
            last = m.group(0).strip()
        return last if last is not None else ans

    def _interpretable(self, answer: str) -> bool:
        return self.normalize(answer) is not None

    # -- normalisation / equivalence ------------------------------------------------------------

    def normalize(self, answer: str | None) -> str | None:
        """Canonical form of an answer (the voting key), or None if it cannot be read.

        Must not raise on any string; equal keys must mean :meth:`equivalent` answers.

        Args:
            answer: An extracted answer (or a whole completion).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement normalize(answer) -> str | None"
        )

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
            return ka == kb or self.keys_equivalent(ka, kb)
        except (Exception, _Deadline):
            logger.debug("equivalence check failed", exc_info=True)
            return False

    def keys_equivalent(self, ka: str, kb: str, *, gold_first: bool = False) -> bool:
        """Whether two *voting keys* denote the same answer (default: equal strings).

        Override together with ``merges_keys = True`` (or :meth:`mergeable_key`) to merge
        different keys, e.g. numbers within a tolerance.

        Args:
            ka: First key (the gold answer's when ``gold_first``).
            kb: Second key.
            gold_first: ``ka`` is a gold answer (grading may be asymmetric).
        """
        return ka == kb

    def mergeable_key(self, key: str) -> bool:
        """Whether ``key`` may be equivalent to some *different* key.

        Two non-mergeable keys are never compared by
        :func:`~langchain_rstar.answers.majority_vote`.
        """
        return self.merges_keys

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
            return kg == kp or self.keys_equivalent(kg, kp, gold_first=True)
        except (Exception, _Deadline):
            logger.debug("grading failed", exc_info=True)
            return False

    def __repr__(self) -> str:
        extra = "" if self.extraction == "marker" else f", extraction={self.extraction!r}"
        return f"{type(self).__name__}(task={self.task!r}{extra})"


def _may_merge(checker: AnswerChecker, keys: Sequence[str]) -> bool:
    """Whether any of ``keys`` could be merged with a different key."""
    return any(checker.mergeable_key(k) for k in keys)


def _check_extraction(extraction: object) -> str:
    if extraction not in EXTRACTION_MODES:
        raise ValueError(
            f"unknown extraction {extraction!r}; expected one of {list(EXTRACTION_MODES)}"
        )
    return str(extraction)
