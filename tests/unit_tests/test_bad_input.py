"""Bad input: every bad question fails with a clear ValueError before any model call;
bad configs fail at construction with the field named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from langchain_rstar import RStarChain, RStarConfig, RStarResult, validate_question
from scripts import GOLD, QUESTION, apples_llm

LIMIT = 200

#: (bad input, words the error message must contain)
BAD: list[tuple[Any, str]] = [
    ("", "empty"),
    ("   ", "empty"),
    ("\n\t \r\n", "empty"),
    ({"question": ""}, "empty"),
    ({"question": " \t "}, "empty"),
    (None, "must be a str, got NoneType"),
    (42, "must be a str, got int"),
    (3.5, "must be a str, got float"),
    (["What is 1 plus 1?"], "must be a str, got list"),
    ({"question": 7}, "must be a str, got int"),
    ({"question": None}, "must be a str, got NoneType"),
    ({"q": QUESTION}, "'question' key"),
    ({}, "'question' key"),
    (b"What is 1 plus 1?", "not bytes"),
    (bytearray(b"What is 1 plus 1?"), "not bytes"),
    ({"question": b"What is 1 plus 1?"}, "not bytes"),
    ("x" * (LIMIT + 1), f"the limit is {LIMIT}"),
    ("x" * (100 * LIMIT), f"the limit is {LIMIT}"),
    ({"question": "y" * (LIMIT + 1)}, "max_question_chars"),
    ("What is\x00 1 plus 1?", "control"),
    ("\x1b[31mWhat is 1 plus 1?\x1b[0m", "control"),
    ("What is 1 plus 1?\x07", "control"),
    ("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "control"),
    (b"\xff\xfeWhat".decode("utf-8", "surrogateescape"), "surrogate"),
    ({"question": "bell\x07"}, "control"),
    # #19.9: only invisible characters, or text that displays differently than it reads
    ("\u200b", "empty"),
    ("\ufeff", "empty"),
    (" \u200b\u200c\u200d\u2060\ufeff\u00ad ", "empty"),
    ("\u3164\u2800\ufe0f", "empty"),
    ({"question": "\u200b\u200b"}, "invisible"),
    ("What is \u202e1 plus 1?", "bidirectional"),
    ("\u202aWhat is 1 plus 1?\u202c", "bidirectional"),
    ("What is \u20661 plus 1\u2069?", "U\\+2066"),
]


def _chain(llm: Any = None) -> RStarChain:
    return RStarChain(
        generator=llm or apples_llm(),
        # 4 rollouts: enough for the apples script to reach GOLD in `paper`
        config=RStarConfig(num_rollouts=4, max_question_chars=LIMIT),
    )


@pytest.mark.parametrize(("bad", "words"), BAD)
def test_bad_question_fails_clearly_before_any_model_call(bad: Any, words: str) -> None:
    llm = apples_llm()
    chain = _chain(llm)
    with pytest.raises(ValueError, match=words.replace("?", r"\?").replace("[", r"\[")):
        chain.invoke(bad)
    with pytest.raises(ValueError, match="question"):
        asyncio.run(chain.ainvoke(bad))
    with pytest.raises(ValueError):
        list(chain.stream(bad))
    assert llm.calls == []


def test_validate_question_cleans_acceptable_text() -> None:
    assert validate_question("  What is 1\tplus 1?\n") == "What is 1\tplus 1?"
    assert validate_question({"question": "Cafe\u0301?", "extra": 1}) == "Caf\u00e9?"
    assert validate_question("line one\r\nline two") == "line one\r\nline two"
    # invisible characters inside visible text are kept: emoji joiners, RTL marks
    assert validate_question("\U0001f468\u200d\U0001f469 x?") == "\U0001f468\u200d\U0001f469 x?"
    assert validate_question("\u05e9\u05dc\u05d5\u05dd\u200f?") == "\u05e9\u05dc\u05d5\u05dd\u200f?"
    assert validate_question("x" * 10, max_chars=10) == "x" * 10
    # long only because of surrounding whitespace: fine once stripped
    assert validate_question(" " * 100 + "ok" + " " * 100, max_chars=10) == "ok"
    with pytest.raises(ValueError, match="limit is 10"):
        validate_question("x" * 11, max_chars=10)


def test_the_limit_comes_from_the_config() -> None:
    question = "What is 1 plus 1? " + "Think. " * 20
    with pytest.raises(ValueError, match="limit is 50"):
        RStarChain(
            generator=apples_llm(), config=RStarConfig(num_rollouts=1, max_question_chars=50)
        ).invoke(question)
    RStarChain(
        generator=apples_llm(), config=RStarConfig(num_rollouts=1, max_question_chars=500)
    ).invoke(question)


def test_batch_returns_the_error_for_the_bad_question_and_results_for_the_good() -> None:
    llm = apples_llm()
    chain = _chain(llm)
    inputs: list[Any] = [QUESTION, "", {"question": QUESTION}, None, "a\x00b", QUESTION]
    out = chain.batch(inputs, return_exceptions=True)
    assert [type(o).__name__ for o in out] == [
        "RStarResult", "ValueError", "RStarResult", "ValueError", "ValueError", "RStarResult",
    ]  # fmt: skip
    assert all(o.answer == GOLD for o in out if isinstance(o, RStarResult))
    # the bad inputs never reached the model: every prompt is about the apples question (A4
    # shows its context and a sub-question, a rephrased path the rephrasing)
    prompts = [p for batch, _ in llm.calls for p in batch]
    assert prompts and all("apples" in p.rsplit("Question:", 1)[-1] for p in prompts)
    assert not any("\x00" in p for p in prompts)
    with pytest.raises(ValueError, match="empty"):
        chain.batch(inputs)


def test_abatch_returns_the_error_for_the_bad_question_and_results_for_the_good() -> None:
    chain = _chain()
    out = asyncio.run(chain.abatch([QUESTION, 12, "  "], return_exceptions=True))
    assert isinstance(out[0], RStarResult) and out[0].answer == GOLD
    assert isinstance(out[1], ValueError) and "got int" in str(out[1])
    assert isinstance(out[2], ValueError) and "empty" in str(out[2])


def test_batch_as_completed_reports_bad_inputs_by_index() -> None:
    chain = _chain()
    out = dict(chain.batch_as_completed([QUESTION, ""], return_exceptions=True))
    assert isinstance(out[0], RStarResult) and isinstance(out[1], ValueError)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 21}, "max_retries"),
        ({"max_retries": "many"}, "max_retries"),
        ({"retry_backoff": -0.1}, "retry_backoff"),
        ({"retry_backoff": 61}, "retry_backoff"),
        ({"call_timeout": 0}, "call_timeout"),
        ({"call_timeout": -5}, "call_timeout"),
        ({"max_nodes": 0}, "max_nodes"),
        ({"max_total_tokens": 0}, "max_total_tokens"),
        ({"max_total_tokens": 1.5}, "max_total_tokens"),
        ({"max_wall_seconds": 0}, "max_wall_seconds"),
        ({"max_wall_seconds": -1.0}, "max_wall_seconds"),
        ({"max_question_chars": 0}, "max_question_chars"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"rollout_batch": 0}, "rollout_batch"),
    ],
)
def test_invalid_reliability_config_fails_at_construction(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RStarConfig(**kwargs)
    assert field in str(info.value)
    with pytest.raises(ValidationError) as info:
        RStarChain(generator=apples_llm(), config=kwargs)
    assert field in str(info.value)


def test_with_overrides_validates_too() -> None:
    chain = _chain()
    with pytest.raises(ValidationError, match="max_retries"):
        chain.with_overrides(max_retries=-3)
    assert chain.with_overrides(call_timeout=2.5).config.call_timeout == 2.5


def test_config_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="RStarConfig or a dict"):
        RStarChain(generator=apples_llm(), config=[("num_rollouts", 2)])  # type: ignore[arg-type]
