"""Answer extraction, normalisation, equivalence and majority voting.

The same checker is used inside the search (to vote over sampled answers) and for grading
against a dataset's gold solution, so the voting key (:meth:`AnswerChecker.normalize`) and the
equivalence relation (:meth:`AnswerChecker.equivalent`) are kept consistent: two answers with
the same key are always equivalent.

Where things live:

* ``base.py`` -- :class:`AnswerChecker`, the contract a custom task subclasses.
* ``extract.py`` -- finding the stated answer in a completion (markers, ``\\boxed{}``, the
  reference evaluator's rule).
* ``arithmetic.py`` / ``math.py`` / ``yesno.py`` -- the three built-in task families (GSM8K &
  SVAMP numbers; MATH LaTeX with optional ``math-verify``; StrategyQA yes/no).
* ``vote.py`` -- :func:`majority_vote` (all voting).
* ``_deadline.py`` -- the thread watchdog that time-limits normalisation and symbolic checks.
* ``tasks.py`` -- :func:`get_checker`: task and dataset names to checkers.

This module only re-exports the public names.
"""

from __future__ import annotations

from langchain_rstar.answers.arithmetic import ArithmeticChecker
from langchain_rstar.answers.base import AnswerChecker
from langchain_rstar.answers.extract import EXTRACTION_MODES, find_boxed, reference_extract
from langchain_rstar.answers.math import MathChecker
from langchain_rstar.answers.tasks import TASK_ALIASES, TASK_FAMILIES, get_checker
from langchain_rstar.answers.vote import VoteResult, majority_vote
from langchain_rstar.answers.yesno import YesNoChecker

__all__ = [
    "TASK_FAMILIES",
    "TASK_ALIASES",
    "EXTRACTION_MODES",
    "AnswerChecker",
    "ArithmeticChecker",
    "MathChecker",
    "YesNoChecker",
    "VoteResult",
    "find_boxed",
    "get_checker",
    "majority_vote",
    "reference_extract",
]
