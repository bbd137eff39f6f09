"""Load: many concurrent searches keep to their own question; long runs do not leak.

The scripted model answers "What is A plus B?" with A + B and writes the question's numbers
into every step, so any step that reached the wrong search shows up as foreign numbers.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
import tracemalloc
from typing import Any

import pytest

from langchain_rstar import RStarChain, RStarConfig, RStarResult
from langchain_rstar.testing import ScriptedLLM, prompt_tail
from langchain_rstar.testing.faults import FaultyLLM

_PAIR = re.compile(r"What is (\d+) plus (\d+)\?")
_NUMBER = re.compile(r"\d{4,}")


def _numbers(a: int, b: int) -> set[str]:
    return {str(a), str(b), str(a + b)}


class PlusModel:
    """Answers sums; records any prompt whose path mixes in another question's numbers."""

    def __init__(self) -> None:
        self.crosstalk: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, prompt: str, n: int) -> list[str]:
        tail = prompt_tail(prompt)
        pairs = {(int(a), int(b)) for a, b in _PAIR.findall(tail)}
        if len(pairs) != 1:
            with self.lock:
                self.crosstalk.append(tail)
            return [" I am confused."] * n
        ((a, b),) = pairs
        if not set(_NUMBER.findall(tail)) <= _numbers(a, b):
            with self.lock:
                self.crosstalk.append(tail)
        if tail.endswith("Rephrased question:"):
            text = (
                f" Condition 1: the first number is {a}. Condition 2: the second number is {b}."
                f" Asked: What is {a} plus {b}?"
            )
        elif re.search(r"Sub-question \d+:$", tail):
            text = f" Now we can answer the question: What is {a} plus {b}?"
        else:
            text = f" {a} + {b} = {a + b}. The answer is {a + b}."
        return [text] * n


def _questions(count: int, offset: int = 0) -> list[tuple[str, int, int]]:
    out = []
    for i in range(offset, offset + count):
        a, b = 1000 + 37 * i, 5000 + 101 * i
        out.append((f"What is {a} plus {b}?", a, b))
    return out


def _check_own_question(result: RStarResult, question: str, a: int, b: int) -> None:
    assert result.question == question
    assert result.answer == str(a + b), (question, result.answer)
    assert result.errors == []
    own = _numbers(a, b)
    assert result.tree["0"]["text"] == question
    for node in list(result.tree.values())[1:]:
        found = set(_NUMBER.findall(node.get("text", "") + " " + (node.get("subquestion") or "")))
        assert found and found <= own, (question, node)
    for step in result.trajectory:
        assert step.node_id in result.tree
        assert set(_NUMBER.findall(step.text)) <= own
    for cand in result.candidates:
        assert cand.answer == str(a + b)


def _chain(model: PlusModel, discriminator: Any = None, **config: Any) -> RStarChain:
    llm = ScriptedLLM(responder=model, latency=0.002, record_calls=False)
    settings = {"num_rollouts": 4, "num_votes": 2, "rollout_batch": 2, **config}
    return RStarChain(generator=llm, discriminator=discriminator, config=RStarConfig(**settings))


def test_batch_of_32_questions_with_concurrency_8_has_no_crosstalk() -> None:
    model = PlusModel()
    chain = _chain(model)
    items = _questions(32)
    results = chain.batch([q for q, _, _ in items], {"max_concurrency": 8})
    assert len(results) == 32
    for result, (question, a, b) in zip(results, items, strict=True):
        _check_own_question(result, question, a, b)
    assert model.crosstalk == []


def test_abatch_of_32_questions_with_concurrency_8_has_no_crosstalk() -> None:
    model = PlusModel()
    chain = _chain(model, discriminator=True)
    items = _questions(32, offset=100)
    results = asyncio.run(
        chain.abatch([{"question": q} for q, _, _ in items], {"max_concurrency": 8})
    )
    for result, (question, a, b) in zip(results, items, strict=True):
        _check_own_question(result, question, a, b)
    assert model.crosstalk == []


def test_concurrent_searches_with_verification_and_faults_keep_to_their_question() -> None:
    model = PlusModel()
    llm = FaultyLLM(
        llm=ScriptedLLM(responder=model, latency=0.002, record_calls=False), fail_every=5
    )
    chain = RStarChain(
        generator=llm,
        discriminator=True,
        config=RStarConfig(num_rollouts=4, num_votes=2, rollout_batch=2, retry_backoff=0.0),
    )
    items = _questions(16, offset=300)
    results = chain.batch([q for q, _, _ in items], {"max_concurrency": 8})
    for result, (question, a, b) in zip(results, items, strict=True):
        assert result.answer == str(a + b) and result.question == question
        for err in result.errors:
            # call numbers interleave across threads, so a retry may fail again: each
            # error is still recorded against a node of this search
            assert "InjectedFault" in err["error"] and err["node_id"] in result.tree
        for cand in result.candidates:
            for mask in cand.masks:
                assert set(_NUMBER.findall(mask.prefix)) <= _numbers(a, b)
    assert model.crosstalk == []
    assert llm.faults["raise"] > 0


def test_soak_200_searches_memory_does_not_grow() -> None:
    """200 small searches (with faults and call timeouts exercised): what searches 51-200
    leave allocated stays small, and no threads pile up."""
    model = PlusModel()
    llm = FaultyLLM(llm=ScriptedLLM(responder=model, record_calls=False), fail_every=7)
    chain = RStarChain(
        generator=llm,
        config=RStarConfig(
            num_rollouts=1,
            max_depth=2,
            num_votes=1,
            num_a1_steps=1,
            num_subquestions=1,
            disable_a5=True,
            max_retries=1,
            retry_backoff=0.0,
            call_timeout=10.0,
        ),
    )
    # 50 distinct questions, asked 4 times: per-question caches (answer parsing) fill up
    # in the first 50 searches, so later growth can only be a leak.
    items = _questions(50, offset=1000) * 4

    def run(batch: list[tuple[str, int, int]]) -> None:
        for question, a, b in batch:
            result = chain.invoke(question, {"max_concurrency": 1})
            assert result.answer == str(a + b)

    start = time.perf_counter()
    cpu = time.process_time()
    run(items[:50])
    gc.collect()
    threads = threading.active_count()
    # Trace from search 50 on: what is still allocated at search 200 is what the last
    # 150 searches left behind.
    tracemalloc.start()
    try:
        gc.collect()
        at_50 = tracemalloc.get_traced_memory()[0]
        run(items[50:])
        gc.collect()
        at_200 = tracemalloc.get_traced_memory()[0]
        # Slack: interpreter free lists keep some freed blocks traced (tens of KB at
        # most); keeping each search's tree or result alive would cost far more.
        if at_200 - at_50 > 128_000:
            top = tracemalloc.take_snapshot().statistics("lineno")[:10]
            pytest.fail(
                f"{at_200 - at_50} bytes still allocated after 150 more searches:\n"
                + "\n".join(map(str, top))
            )
    finally:
        tracemalloc.stop()
    assert threading.active_count() <= threads + 2
    assert chain._gen_sampler._streaks == {}
    assert model.crosstalk == []
    assert llm.faults["raise"] > 0
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"soak: {wall:.1f} s wall, {cpu:.1f} s CPU, {at_200 - at_50} bytes kept")
