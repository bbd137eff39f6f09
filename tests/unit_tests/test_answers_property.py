"""Property tests: checkers never raise, finish in bounded time, and voting is consistent."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_rstar.answers import (
    AnswerChecker,
    MathChecker,
    YesNoChecker,
    get_checker,
    majority_vote,
)

ARITH = get_checker("arithmetic")
YESNO = get_checker("yesno")
# A short symbolic budget keeps the worst case of each example small.
MATH = MathChecker(time_limit=0.1, vote_time_budget=0.5)
CHECKERS: list[AnswerChecker] = [ARITH, YESNO, MATH]
# The reference evaluator's extraction rule is a different code path over the same text.
EXTRACTORS: list[AnswerChecker] = [
    *CHECKERS,
    get_checker("arithmetic", extraction="reference"),
    get_checker("yesno", extraction="reference"),
    MathChecker(time_limit=0.1, vote_time_budget=0.5, extraction="reference"),
]

BOUND_S = 2.0  # hard bound per call asked of every checker method

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies -----------------------------------------------------------------------------

_TOKENS = [
    "The answer is ",
    "the final answer is: ",
    "Answer: ",
    "#### ",
    "\\boxed{",
    "\\fbox{",
    "{",
    "}",
    "$",
    "$$",
    "\\(",
    "\\)",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\left(",
    "\\right)",
    "\\text{",
    "^",
    "_",
    "!",
    "\\!",
    ",",
    ".",
    "%",
    "\\%",
    "-",
    "/",
    "=",
    " ",
    "\n",
    "yes",
    "No",
    "true",
    "x",
    "\\pi",
    "\\infty",
    "1,234",
    "0.5",
    "99999999999999",
    "10^{10^{10}}",
    "e",
]

token_soup = st.lists(
    st.one_of(st.sampled_from(_TOKENS), st.integers(-(10**12), 10**12).map(str)),
    max_size=40,
).map("".join)

any_text = st.one_of(st.text(max_size=200), token_soup)

_leaf = st.one_of(
    st.integers(0, 10**6).map(str),
    st.sampled_from(["x", "y", "\\pi", "e", "i", "\\infty", "10^{100}", "99999999!"]),
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map(lambda t: f"{{{t[0]}}}^{{{t[1]}}}"),
        st.tuples(inner, inner).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"),
        inner.map(lambda a: f"\\sqrt{{{a}}}"),
        inner.map(lambda a: f"({a})!"),
        st.tuples(inner, inner).map(lambda t: f"\\binom{{{t[0]}}}{{{t[1]}}}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}+{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}\\cdot {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"\\left({t[0]},{t[1]}\\right]"),
        inner.map(lambda a: f"\\sin({a})"),
        inner.map(lambda a: f"\\{{{a}\\}}"),
    )


hostile_latex = st.recursive(_leaf, _extend, max_leaves=12)


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    result = fn(*args)
    elapsed = time.monotonic() - start
    assert elapsed < BOUND_S, f"{fn.__qualname__} took {elapsed:.2f}s on {args!r:.200}"
    return result


@pytest.fixture(scope="module", autouse=True)
def _warm_math_verify() -> None:
    # Importing math-verify / sympy is a one-time cost that is not part of any check.
    MATH.equivalent("x^2-1", "(x-1)(x+1)")


# -- never raise, bounded time -----------------------------------------------------------------


@pytest.mark.timeout(120, method="thread")
@FAST
@given(text=any_text)
def test_extract_and_normalize_never_raise(text: str) -> None:
    for checker in EXTRACTORS:
        extracted = _timed(checker.extract, text)
        assert extracted is None or isinstance(extracted, str)
        loose = _timed(checker.extract_loose, text)
        assert loose is None or isinstance(loose, str)
        key = _timed(checker.normalize, text)
        assert key is None or (isinstance(key, str) and key)
        if extracted is not None:
            _timed(checker.normalize, extracted)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(120, method="thread")
@FAST
@given(a=any_text, b=any_text)
def test_equivalent_never_raises(a: str, b: str) -> None:
    for checker in CHECKERS:
        same = _timed(checker.equivalent, a, b)
        assert isinstance(same, bool)
        assert _timed(checker.equivalent, a, a) == (checker.normalize(a) is not None)
        assert isinstance(_timed(checker.is_correct, a, b), bool)


# The watchdog's interrupt can land in a gc callback (hypothesis installs one), where Python
# reports it as "unraisable" and the watchdog simply re-fires; that report is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(120, method="thread")
@settings(FAST, max_examples=20)
@given(a=hostile_latex, b=hostile_latex)
def test_hostile_latex_is_bounded(a: str, b: str) -> None:
    assert isinstance(_timed(MATH.equivalent, a, b), bool)
    assert isinstance(_timed(MATH.is_correct, a, f"\\boxed{{{b}}}"), bool)
    key = _timed(MATH.normalize, a)
    assert key is not None
    # Equal keys mean equivalent answers.
    assert _timed(MATH.equivalent, a, f"${a}$")


# -- arithmetic invariants --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(n=st.integers(-(10**15), 10**15))
def test_integers_in_many_spellings(n: int) -> None:
    spellings = [str(n), f"{n:,}", f"{n}.0", f"${n:,}" if n >= 0 else f"-${-n:,}", f"{n} apples"]
    keys = {ARITH.normalize(s) for s in spellings}
    assert keys == {str(n)}
    assert not ARITH.equivalent(str(n), str(n + 1))


@settings(max_examples=150, deadline=None)
@given(x=st.floats(min_value=1e-3, max_value=1e12, allow_nan=False), neg=st.booleans())
def test_float_roundings_match(x: float, neg: bool) -> None:
    x = -x if neg else x
    exact = repr(x)
    assert ARITH.equivalent(exact, f"{x:.10f}")  # a rounding to 10 decimals
    assert ARITH.equivalent(exact, exact)
    assert ARITH.is_correct(exact, x)


@settings(max_examples=100, deadline=None)
@given(a=any_text, b=any_text)
def test_equivalence_is_symmetric_for_numbers_and_yesno(a: str, b: str) -> None:
    for checker in (ARITH, YESNO):
        assert checker.equivalent(a, b) == checker.equivalent(b, a)
        ka, kb = checker.normalize(a), checker.normalize(b)
        if ka is not None and ka == kb:
            assert checker.equivalent(a, b)


# -- majority vote invariants -----------------------------------------------------------------

_vote_item = st.one_of(
    st.none(),
    st.sampled_from(
        ["18", "18.0", "$18", "17", "1/3", "0.3333333", "yes", "No", "true", "x", "\\frac12"]
    ),
    st.sampled_from(["0.5", "x=5", "5", "\\sqrt{2}/2", "\\frac{1}{\\sqrt2}", "abc", ""]),
    st.integers(-5, 5).map(str),
    st.text(max_size=12),
)


def _check_vote(answers: list[str | None], checker: AnswerChecker) -> None:
    vote = majority_vote(answers, checker)
    n = len(answers)
    assert 0.0 <= vote.confidence <= 1.0
    readable = [i for i, a in enumerate(answers) if a is not None and checker.normalize(a)]
    assert sum(vote.counts.values()) == len(readable)
    if vote.answer is None:
        assert vote.winners == [] and vote.confidence == 0.0 and vote.counts == {}
        assert readable == []
        return
    assert vote.winners == sorted(set(vote.winners))
    assert set(vote.winners) <= set(readable)
    assert vote.confidence == pytest.approx(len(vote.winners) / n)
    assert vote.counts[vote.answer] == len(vote.winners) == max(vote.counts.values())
    assert answers[vote.winners[0]] == vote.answer  # the group's first-seen answer
    # Ties go to the group seen first: no other maximal group started earlier.
    first_index = {rep: answers.index(rep) for rep in vote.counts}
    best = len(vote.winners)
    tied = [rep for rep, c in vote.counts.items() if c == best]
    assert min(tied, key=first_index.__getitem__) == vote.answer
    for i in vote.winners:
        assert checker.equivalent(answers[i], vote.answer) or checker.normalize(
            answers[i]
        ) == checker.normalize(vote.answer)


@settings(max_examples=120, deadline=None)
@given(answers=st.lists(_vote_item, max_size=16))
def test_majority_vote_invariants_arithmetic_yesno(answers: list[str | None]) -> None:
    _check_vote(answers, ARITH)
    _check_vote(answers, YESNO)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(120, method="thread")
@settings(max_examples=25, deadline=None)
@given(answers=st.lists(_vote_item, max_size=10))
def test_majority_vote_invariants_math(answers: list[str | None]) -> None:
    _check_vote(answers, MATH)


def test_yesno_checker_type() -> None:
    assert isinstance(YESNO, YesNoChecker)
