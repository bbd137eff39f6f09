"""No regular expression of ``langchain_rstar.answers`` is super-linear on hostile text (#19.1).

The answer checkers run every model completion through their regexes, and a regex match cannot
be interrupted by the checkers' watchdog (it is one C call). So every module-level pattern of
the package is collected by introspection (a new pattern is covered without editing this file)
and run on adversarial inputs: long runs (10k-50k characters) of each character class, with the
prefixes and suffixes that make a backtracking engine retry every split of the run. A linear
pattern takes milliseconds on these; the quadratic ``_PLAIN_UNIT_TAIL_RE`` of #19.1 took
seconds at 8,000 characters.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time

import pytest

import langchain_rstar.answers as answers_pkg
from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.answers import extract as extract_mod
from langchain_rstar.answers import get_checker
from langchain_rstar.testing import ScriptedLLM

#: Seconds one regex call may take on a 20k-character input. Linear patterns take ~1-10 ms; a
#: quadratic one takes many seconds at this length (the pre-fix pattern of #19.1: ~100 s on a
#: busy machine), so the bound has two orders of margin either way.
CALL_BOUND_S = 1.0


def _answer_patterns() -> list[tuple[str, re.Pattern[str]]]:
    found: dict[int, tuple[str, re.Pattern[str]]] = {}
    for info in pkgutil.iter_modules(answers_pkg.__path__):
        module = importlib.import_module(f"{answers_pkg.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found.setdefault(id(value), (f"{info.name}.{name}", value))
    return sorted(found.values())


PATTERNS = _answer_patterns()

# One representative per character class the patterns care about, and short units that the
# patterns' alternatives start with (a run of them makes an engine try every start position).
_UNITS = [
    "a", "Z", "1", "0", " ", "\t", "\n", ".", ",", "-", "+", "{", "}", "(", ")", "\\", "$", "^",
    "_", "!", "%", "/", "*", "=", "x", "~", "'", "\u00a0", "\u2212", "\u03c0", "é",
    "ab", "a.", "a ", "a. ", "1 ", "1,", "1.", "1,000", "{1}", "\\,", "\\!", "\\\\", "^{", "{}",
    "^2", "10^", "x10^", " x ", "\\text{", "\\frac", "\\frac1", "\\sqrt", "\\left", "\\boxed{",
    "answer ", "answer is ", "#", "####", "yes ", "no.", "e5", "1e", "$1", "%1", " 1/",
    "thousand ",
]  # fmt: skip
_PREFIXES = ["", "1 ", "-1.5 ", "\\frac{1}{2} ", "\\boxed{1 ", "The answer is "]
_SUFFIXES = ["", "!", "}", "$", "1", " cm", "\x00"]


def _adversarial(length: int) -> list[str]:
    """Runs of every unit: bare, framed by a number and a failing end, boxed, and with each
    prefix and suffix in turn (cycled, so the list stays short)."""
    out: list[str] = []
    for i, unit in enumerate(_UNITS):
        run = unit * (length // len(unit))
        prefix = _PREFIXES[i % len(_PREFIXES)]
        suffix = _SUFFIXES[i % len(_SUFFIXES)]
        out += [run, "1 " + run + "!", "\\boxed{1 " + run + "}", prefix + run + suffix]
    return out


def test_the_patterns_are_found() -> None:
    names = {name for name, _ in PATTERNS}
    # the pattern of #19.1 and one of every module, so the introspection cannot silently miss
    assert "math._PLAIN_UNIT_TAIL_RE" in names
    assert {n.split(".")[0] for n in names} >= {"arithmetic", "extract", "math", "yesno"}
    assert len(PATTERNS) >= 30


@pytest.mark.timeout(300, method="thread")
@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[n for n, _ in PATTERNS])
def test_every_answer_regex_is_linear_on_adversarial_input(
    name: str, pattern: re.Pattern[str]
) -> None:
    slowest = (0.0, "")
    for text in _adversarial(20_000):
        # search() tries every start position (match() is its first try); finditer() visits
        # every match as sub() does: each must stay linear, or one call takes seconds.
        start = time.perf_counter()
        pattern.search(text)
        elapsed = time.perf_counter() - start
        slowest = max(slowest, (elapsed, f"search({text[:30]!r}...{text[-10:]!r})"))
        start = time.perf_counter()
        for _ in pattern.finditer(text):
            pass
        elapsed = time.perf_counter() - start
        slowest = max(slowest, (elapsed, f"finditer({text[:30]!r}...{text[-10:]!r})"))
    assert slowest[0] < CALL_BOUND_S, f"{name}: {slowest[1]} took {slowest[0]:.2f}s"


@pytest.mark.timeout(300, method="thread")
def test_the_old_unit_pattern_would_fail_this_test() -> None:
    """The check above can fail: the pre-fix pattern of #19.1 is caught by the same bound."""
    old = re.compile(
        r"^(-?[\d.,]+|\\frac\{\d+\}\{\d+\})\s+(?:[a-zA-Z]{2,}\.?\s*){1,2}(?:\^\s*\{?[23]\}?)?$"
    )
    # Doubling lengths up to the 20k characters of the check above: the quadratic pattern
    # passes CALL_BOUND_S on the way (on a fast machine ~1 s at 5k, ~17 s at 20k), a linear one
    # would not at any of them. No fixed small-length timing, which a fast machine undercuts.
    timings = []
    for length in (2_500, 5_000, 10_000, 20_000):
        text = "1 " + "a" * length + "!"
        start = time.perf_counter()
        old.search(text)
        timings.append((length, time.perf_counter() - start))
        if timings[-1][1] >= CALL_BOUND_S:
            break
    assert timings[-1][1] >= CALL_BOUND_S, timings


# -- the checkers end to end -------------------------------------------------------------------


@pytest.mark.timeout(300, method="thread")
@pytest.mark.parametrize("family", ["arithmetic", "math", "yesno"])
@pytest.mark.parametrize("length", [10_000, 50_000])
def test_every_normalisation_is_fast_on_adversarial_answers(family: str, length: int) -> None:
    checker = get_checker(family)
    inputs = _adversarial(length)[::3] + ["1 " + "a" * length + "!", "\\boxed{1 " + "a" * length]
    for text in inputs:
        for method in (checker.extract, checker.extract_loose, checker.normalize):
            start = time.perf_counter()
            method(text)
            elapsed = time.perf_counter() - start
            # the normalisation time limit plus the watchdog's re-fire slack
            assert elapsed < extract_mod.NORMALIZE_TIME_LIMIT + 1.0, (
                f"{family}.{method.__name__}({text[:30]!r}...) took {elapsed:.2f}s"
            )


def test_the_issue_19_1_input_is_fast() -> None:
    math_checker = get_checker("math")
    for n in (4_000, 8_000, 50_000):
        start = time.perf_counter()
        math_checker.normalize("1 " + "a" * n + "!")
        assert time.perf_counter() - start < 0.5


def test_a_slow_normalisation_is_cut_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every normalisation runs under NORMALIZE_TIME_LIMIT: one that overruns is unreadable."""
    calls: list[str] = []

    def slow(text: str) -> str:
        calls.append(text)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # pure Python: the watchdog can interrupt it
            pass
        return "never"

    monkeypatch.setattr(extract_mod, "NORMALIZE_TIME_LIMIT", 0.2)
    guarded = extract_mod._cache_short(slow)
    start = time.perf_counter()
    assert guarded("1") is None
    assert guarded("1") is None  # a timed-out result is not cached: it runs (and is cut) again
    assert time.perf_counter() - start < 3.0
    assert calls == ["1", "1"]


@pytest.mark.timeout(120, method="thread")
def test_math_search_over_hostile_completions_finishes_fast() -> None:
    """#19.1: a 4-rollout math search whose completions are a long letter run took 138 s."""
    hostile = " So \\boxed{1 " + "a" * 3990 + "!}"
    llm = ScriptedLLM(default=[hostile])
    chain = RStarChain(generator=llm, config=RStarConfig(num_rollouts=4, task="math", seed=0))
    start = time.perf_counter()
    result = chain.invoke("What is 1 plus 1?")
    elapsed = time.perf_counter() - start
    assert elapsed < 20.0, f"the search took {elapsed:.1f}s"
    # no answer can be read from these completions: the search ends cleanly without one
    assert result.answer is None
    assert result.stop_reason == "no_candidates"
    assert len(result.tree) > 1


@pytest.mark.parametrize("family", ["arithmetic", "math", "yesno"])
def test_every_checkers_normalisation_runs_under_the_time_limit(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each family's voting key is computed under the watchdog with NORMALIZE_TIME_LIMIT; a
    normalisation that runs out of time is unreadable, and that is not cached."""
    checker = get_checker(family)
    answer = "yes" if family == "yesno" else str(time.time_ns() % 10**9)
    text = f"So the answer is {answer}." + " " * (time.time_ns() % 300 + 1)  # not cached yet
    limits: list[float] = []

    def out_of_time(fn, seconds, default):  # type: ignore[no-untyped-def]
        limits.append(seconds)
        return default, True

    monkeypatch.setattr(extract_mod, "_call_with_deadline", out_of_time)
    assert checker.normalize(text) is None
    assert limits and set(limits) == {extract_mod.NORMALIZE_TIME_LIMIT}
    monkeypatch.undo()
    assert checker.normalize(text) is not None  # the timeout was not remembered
