"""Speed features: vote cache, early stop, waves (rollout_batch) and their equivalences."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from typing import Any

import pytest

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.answers import get_checker
from langchain_rstar.sampling.sampler import SCOPE_KEY, Sampler
from langchain_rstar.sampling.types import SampleCall
from langchain_rstar.search import mcts
from langchain_rstar.search.actions import child_sort_key, legal_actions, run_action
from langchain_rstar.search.budget import generator_ranking, max_new_weight_per_rollout
from langchain_rstar.search.candidates import build_candidates, weighted_majority
from langchain_rstar.search.drive import drive
from langchain_rstar.testing import ScriptedLLM
from scripts import QUESTION, apples_llm

# --------------------------------------------------------------------------------------
# A scripted model with varied samples (several distinct children per expansion).
# --------------------------------------------------------------------------------------
_STEP = re.compile(r"Step (\d+):$")
_SUBQ = re.compile(r"Sub-question (\d+):$")
_ANS = re.compile(r"Answer (\d+):( Let's work it out step by step\.)?$")


def _h(prompt: str, j: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{j}|{prompt}".encode(), digest_size=8).digest(), "big")


def varied(prompt: str, n: int) -> list[str]:
    tail = prompt[-80:]
    out = []
    for j in range(n):
        h = _h(prompt, j)
        ans = ("10", "10", "10", "12", "7")[h % 5]
        if tail.endswith("Rephrased question:"):
            out.append(" Condition 1: 3 bags of 4. Condition 2: 2 eaten. Question: how many?")
        elif m := _STEP.search(tail):
            k = int(m.group(1))
            if h % 3 == 0:
                out.append(f" So {ans} are left. The answer is {ans}.")
            else:
                out.append(f" Partial {h % 4}.\nStep {k + 1}: Then {ans}. The answer is {ans}.")
        elif m := _SUBQ.search(tail):
            if int(m.group(1)) >= 3 or h % 3 == 0:
                out.append(" Now we can answer the question: How many apples are left?")
            else:
                out.append(f" What is part {h % 3}?")
        elif _ANS.search(tail):
            out.append(f" Part {h % 2} is {ans}. The answer is {ans}.")
        else:
            out.append(f" The answer is {ans}.")
    return out


def varied_llm(**kwargs: Any) -> ScriptedLLM:
    return ScriptedLLM(responder=varied, **kwargs)


SMALL = {"num_a1_steps": 3, "num_subquestions": 3, "num_votes": 4}

# --------------------------------------------------------------------------------------
# Vote cache
# --------------------------------------------------------------------------------------


def _scoped(scope: str = "s1") -> dict[str, Any]:
    return {"configurable": {SCOPE_KEY: scope}}


def _call(prompt: str = "Question: q\nStep 1:", n: int = 4, **kw: Any) -> SampleCall:
    return SampleCall(
        prompts=[prompt], n=n, stop=["\n"], params={"temperature": 0.8}, cache=True, **kw
    )


def test_vote_cache_serves_identical_requests_within_a_search() -> None:
    llm = varied_llm()
    sampler = Sampler(llm)
    first = sampler.sample(_call(), _scoped())
    again = sampler.sample(_call(), _scoped())
    assert len(llm.calls) == 1
    assert again.texts == first.texts
    assert again.usage == {"vote_cache_hits": 1.0}
    assert first.usage["llm_calls"] == 1 and "vote_cache_hits" not in first.usage
    # fewer samples come from the same entry; more samples need a new call
    fewer = sampler.sample(_call(n=2), _scoped())
    assert fewer.texts == [first.texts[0][:2]] and len(llm.calls) == 1
    sampler.sample(_call(n=6), _scoped())
    assert len(llm.calls) == 2
    assert sampler.sample(_call(n=6), _scoped()).usage == {"vote_cache_hits": 1.0}
    assert sampler.vote_cache is not None and sampler.vote_cache.hits == 3


def test_vote_cache_keys_and_scopes() -> None:
    llm = varied_llm()
    sampler = Sampler(llm)
    sampler.sample(_call(), _scoped())
    # another search, other sampling parameters, other stop strings, another prompt
    sampler.sample(_call(), _scoped("s2"))
    other = _call()
    other.params = {"temperature": 0.5}
    sampler.sample(other, _scoped())
    stop = _call()
    stop.stop = ["\n\n"]
    sampler.sample(stop, _scoped())
    sampler.sample(_call("Question: q\nStep 2:"), _scoped())
    assert len(llm.calls) == 5
    # no scope, or a call that does not allow caching: always sampled
    sampler.sample(_call(), None)
    no_cache = _call()
    no_cache.cache = False
    sampler.sample(no_cache, _scoped())
    assert len(llm.calls) == 7
    # a finished search forgets its entries
    sampler.end_scope("s1")
    sampler.sample(_call(), _scoped())
    assert len(llm.calls) == 8
    # the cache can be switched off per sampler
    off = Sampler(llm, vote_cache=False)
    off.sample(_call(), _scoped())
    off.sample(_call(), _scoped())
    assert len(llm.calls) == 10


def test_vote_cache_mixed_hits_and_misses_in_one_call() -> None:
    llm = varied_llm()
    sampler = Sampler(llm)
    sampler.sample(_call("Question: q\nAnswer 1:"), _scoped())
    call = SampleCall(
        prompts=["Question: q\nAnswer 1:", "Question: q\nAnswer 2:", "Question: q\nAnswer 1:"],
        n=4,
        stop=["\n"],
        params={"temperature": 0.8},
        cache=True,
    )
    out = sampler.sample(call, _scoped())
    # only the new prompt went to the model, in one call
    assert len(llm.calls) == 2 and llm.calls[-1][0] == ["Question: q\nAnswer 2:"]
    assert out.texts[0] == out.texts[2] and out.texts[1] is not None
    assert out.usage["vote_cache_hits"] == 2.0 and out.usage["llm_calls"] == 1.0


def test_vote_cache_failed_call_is_not_cached() -> None:
    class Flaky(ScriptedLLM):
        fail: int = 1

        def _generate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
            if self.fail:
                self.fail -= 1
                raise RuntimeError("boom")
            return super()._generate(prompts, stop, run_manager, **kw)

    llm = Flaky(responder=varied)
    sampler = Sampler(llm, max_retries=0)
    bad = sampler.sample(_call(), _scoped())
    assert bad.texts == [None]
    good = sampler.sample(_call(), _scoped())
    assert good.texts[0] and "vote_cache_hits" not in good.usage


def test_vote_cache_releases_its_claim_when_the_model_call_raises() -> None:
    """An exception out of the model call (a cancellation, Ctrl-C) goes through the cache's
    steps: the claim is released, so the next identical request samples instead of waiting
    forever, in both drivers."""
    from langchain_rstar.sampling.types import SampleOutcome
    from langchain_rstar.sampling.vote_cache import VoteCache

    class Raising:
        def __init__(self) -> None:
            self.raise_next = True

        def _reply(self, call: SampleCall) -> SampleOutcome:
            if self.raise_next:
                self.raise_next = False
                raise KeyboardInterrupt
            return SampleOutcome(texts=[["t"] * call.n for _ in call.prompts], usage={})

        def sample(self, call: SampleCall, config: Any = None) -> SampleOutcome:
            return self._reply(call)

        async def asample(self, call: SampleCall, config: Any = None) -> SampleOutcome:
            return self._reply(call)

    for mode in ("sync", "async"):
        cache, model = VoteCache(), Raising()

        def ask(
            cache: VoteCache = cache, model: Raising = model, mode: str = mode
        ) -> SampleOutcome:
            if mode == "sync":
                return cache.sample(model, _call(), None, "s")
            return asyncio.run(cache.asample(model, _call(), None, "s"))

        with pytest.raises(KeyboardInterrupt):
            ask()
        again = ask()  # not stuck on the first request's claim
        assert again.texts == [["t"] * 4]
        assert ask().usage.get("vote_cache_hits") == 1.0


def test_vote_cache_coalesces_identical_requests_in_flight() -> None:
    llm = varied_llm(latency=0.2)
    sampler = Sampler(llm)
    results: list[Any] = []

    def worker() -> None:
        results.append(sampler.sample(_call(), _scoped()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(llm.calls) == 1
    assert all(r.texts == results[0].texts for r in results)
    assert sum(r.usage.get("vote_cache_hits", 0.0) for r in results) == 3.0

    async def many() -> list[Any]:
        return await asyncio.gather(*(sampler.asample(_call(), _scoped("a")) for _ in range(4)))

    outs = asyncio.run(many())
    assert len(llm.calls) == 2
    assert all(o.texts == outs[0].texts for o in outs)


def test_vote_cache_does_not_change_a_search() -> None:
    on = RStarChain(generator=varied_llm(), config=RStarConfig(num_rollouts=12, **SMALL))
    off = on.with_overrides(vote_cache=False)
    a, b = on.invoke(QUESTION), off.invoke(QUESTION)
    assert a.tree == b.tree and a.answer == b.answer
    assert a.usage.samples == b.usage.samples


# --------------------------------------------------------------------------------------
# Early stop
# --------------------------------------------------------------------------------------
EARLY_CASES = [
    (llm, dict(num_rollouts=r, max_depth=d, num_a1_steps=k, num_subquestions=k, num_votes=4))
    for llm in ("varied", "apples")
    for d, k in ((1, 2), (2, 3), (3, 2), (5, 1))
    for r in (16,)
]


@pytest.mark.parametrize(("model", "cfg"), EARLY_CASES)
def test_early_stop_never_changes_the_generator_answer(model: str, cfg: dict[str, Any]) -> None:
    make = varied_llm if model == "varied" else apples_llm
    full = RStarChain(generator=make(), config=RStarConfig(**cfg)).invoke(QUESTION)
    early = RStarChain(generator=make(), config=RStarConfig(**cfg, early_stop=True)).invoke(
        QUESTION
    )
    checker = get_checker("arithmetic")
    assert checker.equivalent(early.answer, full.answer)
    if early.stop_reason == "early_stop":
        assert early.usage.rollouts < full.usage.rollouts
        assert early.usage.completion_tokens <= full.usage.completion_tokens
    else:
        assert early.tree == full.tree


def test_early_stop_triggers_and_saves_rollouts() -> None:
    cfg = RStarConfig(num_rollouts=16, max_depth=2, early_stop=True, **SMALL)
    res = RStarChain(generator=varied_llm(), config=cfg).invoke(QUESTION)
    assert res.stop_reason == "early_stop"
    assert res.usage.rollouts < 16 and res.answer == "10"


def test_early_stop_is_off_by_default() -> None:
    assert RStarConfig().early_stop is False
    res = RStarChain(generator=varied_llm(), config=RStarConfig(num_rollouts=8, max_depth=1))
    assert res.invoke(QUESTION).stop_reason == "budget"


def test_generator_ranking_matches_weighted_majority() -> None:
    checker = get_checker("arithmetic")
    for cfg in (RStarConfig(num_rollouts=16, **SMALL), RStarConfig(num_rollouts=8)):
        for make in (varied_llm, apples_llm):
            tree = RStarChain(generator=make(), config=cfg).invoke(QUESTION).tree
            full = [w for _, w in weighted_majority(build_candidates(tree, checker), checker)]
            assert generator_ranking(tree, checker) == pytest.approx(sorted(full, reverse=True))


def test_early_stop_bound_covers_every_rollout() -> None:
    """No rollout ever adds more weight to one answer than the bound allowed before it."""
    checker = get_checker("arithmetic")
    for make in (varied_llm, apples_llm):
        cfg = RStarConfig.fast(num_rollouts=24, **SMALL)  # paper: test_paper_rules.py
        chain = RStarChain(generator=make(), config=cfg)
        state = {"question": QUESTION, "config": cfg.model_dump()}
        before: dict[str, float] = {}
        bound = max_new_weight_per_rollout(cfg)
        assert bound == cfg.max_depth * (3 + 1 + 3)
        for chunk in chain.graph.stream(state, {"recursion_limit": 10_000}, stream_mode="values"):
            if chunk.get("wave"):  # a wave in flight: wait for its backprop
                continue
            nodes = chunk.get("nodes") or {}
            sums: dict[str, float] = {}
            for cand in build_candidates(nodes, checker):
                key = checker.normalize(cand["answer"])
                sums[key] = sums.get(key, 0.0) + cand["confidence"]
            for key, value in sums.items():  # between waves: one rollout finished
                assert value - before.get(key, 0.0) <= bound + 1e-9
            before = sums
            bound = max_new_weight_per_rollout(cfg, nodes)


def test_early_stop_bound_shrinks_with_the_frontier() -> None:
    cfg = RStarConfig.fast(**SMALL)  # the paper pool adds 1 (test_paper_rules.py)
    per = {"root": 3 + 1 + 3, "thought": 3 + 1}
    assert max_new_weight_per_rollout(cfg, {}) == 0.0
    thought = {"0/A1.0": {"type": "thought", "depth": 1, "expanded": False, "terminal": False}}
    assert max_new_weight_per_rollout(cfg, thought) == 4 * per["thought"]
    sub = {"0/A3.0": {"type": "subquestion", "depth": 2, "expanded": False, "terminal": False}}
    assert max_new_weight_per_rollout(cfg, {**thought, **sub}) == 3 * per["root"]
    off = RStarConfig.fast(**SMALL, disable_a1=True)
    assert max_new_weight_per_rollout(off, thought) == 4 * 1


# --------------------------------------------------------------------------------------
# rollout_batch=1 is the sequential algorithm
# --------------------------------------------------------------------------------------
def reference_search(llm: Any, question: str, cfg: RStarConfig) -> dict[str, dict[str, Any]]:
    """Plain sequential MCTS (select, expand, simulate, backpropagate) over the actions."""
    sampler = Sampler(llm)
    checker = get_checker(cfg.task)
    nodes: dict[str, dict[str, Any]] = {
        "0": {
            "id": "0",
            "parent": None,
            "type": "root",
            "action": "",
            "text": question,
            "answer": None,
            "confidence": 0.0,
            "samples": 0,
            "depth": 0,
            "visits": 0.0,
            "value": 0.0,
            "reward": 0.0,
            "terminal": False,
            "expanded": False,
            "children": [],
            "rollout": 0,
        }
    }

    def ancestry(node_id: str) -> list[dict[str, Any]]:
        out = []
        cur: str | None = node_id
        while cur is not None:
            out.append(nodes[cur])
            cur = nodes[cur]["parent"]
        return out[::-1]

    def expand(node_id: str, index: int) -> None:
        kids: list[str] = []
        for action in legal_actions(nodes[node_id], cfg):
            task = {
                "node_id": node_id,
                "action": action,
                "question": question,
                "path": ancestry(node_id),
                "rollout": index,
                "config": cfg.model_dump(),
            }
            out = drive(run_action(action, task, cfg, checker), sampler, None)["output"]
            for child in out["children"]:
                nodes[child["id"]] = child
                kids.append(child["id"])
        kids.sort(key=child_sort_key)
        nodes[node_id] = {**nodes[node_id], "expanded": True, "children": kids}
        if not kids:
            nodes[node_id].update(terminal=True, reward=0.0, dead=True)

    for index in range(cfg.num_rollouts):
        rng = mcts.rng_for(cfg.seed, "select", index)
        path = mcts.select_path(nodes, "0", cfg.exploration_weight, rng, {})
        node_id = path[-1]
        reward = 0.0
        while True:
            record = nodes[node_id]
            if record.get("terminal"):
                reward = float(record.get("reward", 0.0))
                break
            if not record.get("expanded"):
                if not legal_actions(record, cfg):
                    break
                expand(node_id, index)
                continue
            rng = mcts.rng_for(cfg.seed, "simulate", index, len(path))
            child = mcts.random_child(nodes, node_id, rng)
            if child is None:
                break
            path.append(child)
            node_id = child
        for nid, fields in mcts.backpropagate(nodes, path, reward).items():
            nodes[nid] = {**nodes[nid], **fields}
    return nodes


@pytest.mark.parametrize(
    ("make", "cfg"),
    [
        (varied_llm, RStarConfig(num_rollouts=16, **SMALL)),
        (varied_llm, RStarConfig(num_rollouts=10, seed=7, max_depth=3, **SMALL)),
        (apples_llm, RStarConfig(num_rollouts=12)),
    ],
)
def test_rollout_batch_one_is_the_sequential_algorithm(make: Any, cfg: RStarConfig) -> None:
    expected = reference_search(make(), QUESTION, cfg)
    got = RStarChain(generator=make(), config=cfg).invoke(QUESTION)
    assert got.tree == expected
    got_async = asyncio.run(RStarChain(generator=make(), config=cfg).ainvoke(QUESTION))
    assert got_async.tree == expected


def test_waves_run_every_rollout_and_differ_from_sequential_only_in_order() -> None:
    cfg = RStarConfig(num_rollouts=16, **SMALL)
    seq = RStarChain(generator=varied_llm(), config=cfg).invoke(QUESTION)
    for batch in (2, 4, 16):
        wave = RStarChain(
            generator=varied_llm(), config=cfg.model_copy(update={"rollout_batch": batch})
        ).invoke(QUESTION)
        assert wave.usage.rollouts == 16 and wave.tree["0"]["visits"] == 16
        assert wave.answer == seq.answer


# --------------------------------------------------------------------------------------
# Waves send their expansions to the backend together
# --------------------------------------------------------------------------------------
class ConcurrencyLLM(ScriptedLLM):
    """Scripted model with latency that records how many calls overlap."""

    active: int = 0
    peak: int = 0

    def _enter(self) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def _generate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        self._enter()
        try:
            return super()._generate(prompts, stop, run_manager, **kw)
        finally:
            self._leave()

    async def _agenerate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        self._enter()
        try:
            return await super()._agenerate(prompts, stop, run_manager, **kw)
        finally:
            self._leave()


@pytest.mark.parametrize("use_async", [False, True])
def test_a_wave_sends_its_expansions_concurrently(use_async: bool) -> None:
    def peak(batch: int) -> tuple[int, float]:
        llm = ConcurrencyLLM(responder=varied, latency=0.03)
        chain = RStarChain(
            generator=llm,
            discriminator=False,  # the search's waves only
            config=RStarConfig(num_rollouts=8, rollout_batch=batch, **SMALL),
        )
        start = time.perf_counter()
        if use_async:
            asyncio.run(chain.ainvoke(QUESTION))
        else:
            chain.invoke(QUESTION)
        return llm.peak, time.perf_counter() - start

    one, _ = peak(1)
    eight, _ = peak(8)
    # one leaf runs at most four actions at once; a wave of eight leaves runs more
    assert 1 < one <= 4
    assert eight > 4


# --------------------------------------------------------------------------------------
# Sampling presets
# --------------------------------------------------------------------------------------
def test_sampling_presets_and_backend_resolution() -> None:
    from langchain_rstar.llms.base import top_p_is_costly

    paper = RStarConfig(sampling_preset="paper").sampling_kwargs()
    assert paper["top_k"] == 40 and paper["top_p"] == 0.95 and paper["temperature"] == 0.8
    fast = RStarConfig(sampling_preset="fast").sampling_kwargs()
    assert "top_p" not in fast and fast["top_k"] == 40 and fast["temperature"] == 0.8
    # an unresolved "auto" is the paper's filters
    assert RStarConfig().sampling_preset == "auto"
    assert RStarConfig().sampling_kwargs() == paper
    # scripted/remote models: top-p is cheap; a model can say otherwise
    llm = varied_llm()
    assert not top_p_is_costly(llm)
    assert RStarConfig().for_backend(llm).sampling_preset == "paper"

    class CostlyTopP(ScriptedLLM):
        rstar_top_p_costly: bool = True

    costly = CostlyTopP(responder=varied)
    assert top_p_is_costly(costly)
    assert RStarConfig().for_backend(costly).sampling_preset == "fast"
    assert RStarConfig(sampling_preset="paper").for_backend(costly).sampling_preset == "paper"
    # the search resolves "auto" per generator
    RStarChain(generator=costly, config=RStarConfig(num_rollouts=2, **SMALL)).invoke(QUESTION)
    assert costly.calls and all("top_p" not in kw for _, kw in costly.calls)
    RStarChain(generator=llm, config=RStarConfig(num_rollouts=2, **SMALL)).invoke(QUESTION)
    assert llm.calls and all(kw["top_p"] == 0.95 for _, kw in llm.calls)


# --------------------------------------------------------------------------------------
# Usage accounting
# --------------------------------------------------------------------------------------
class CachingScriptedLLM(ScriptedLLM):
    """Scripted model that reports prefix-cache hits like vLLM (half of each prompt)."""

    def _result(self, prompts: list[str], stop: Any, kwargs: dict[str, Any]) -> Any:
        result = super()._result(prompts, stop, kwargs)
        usage = result.llm_output["token_usage"]
        usage["cached_prompt_tokens"] = usage["prompt_tokens"] // 2
        return result


@pytest.mark.parametrize("batch", [1, 4])
def test_usage_counts_what_the_model_was_asked(batch: int) -> None:
    llm = CachingScriptedLLM(responder=varied, latency=0.01)
    cfg = RStarConfig(num_rollouts=8, rollout_batch=batch, **SMALL)
    result = RStarChain(generator=llm, config=cfg).invoke(QUESTION)
    u = result.usage
    assert u.llm_calls == len(llm.calls) and u.batches == len(llm.calls)
    assert u.prompts == sum(len(p) for p, _ in llm.calls)
    assert u.samples == sum(len(p) * kw["n"] for p, kw in llm.calls)
    words = sum(len(p.split()) for prompts, _ in llm.calls for p in prompts)
    assert u.prompt_tokens == words
    assert u.cached_prompt_tokens == sum(
        sum(len(p.split()) for p in prompts) // 2 for prompts, _ in llm.calls
    )
    assert u.completion_tokens > 0 and not u.tokens_estimated
    assert u.rollouts == 8 and u.nodes == len(result.tree)
    # wall time splits into time inside model calls (their union) and framework time
    assert u.model_seconds > 0.01 and u.framework_seconds >= 0
    assert u.model_seconds + u.framework_seconds == pytest.approx(u.wall_seconds)
    assert u.model_seconds <= u.wall_seconds


def test_one_line_actions_get_the_line_token_cap() -> None:
    llm = varied_llm()
    # fast caps (paper sets one per action: test_paper_rules.py)
    RStarChain(
        generator=llm, discriminator=False, config=RStarConfig.fast(num_rollouts=4, **SMALL)
    ).invoke(QUESTION)
    caps: dict[str, set[int]] = {"A2": set(), "line": set()}
    for prompts, kw in llm.calls:
        direct = bool(re.search(r"Step \d+:$", prompts[0])) and kw["n"] == SMALL["num_votes"]
        caps["A2" if direct else "line"].add(kw["max_tokens"])
    assert caps == {"A2": {256}, "line": {128}}
    assert RStarConfig(max_line_tokens=None).line_sampling_kwargs()["max_tokens"] == 256
    assert RStarConfig(max_tokens=64).line_sampling_kwargs()["max_tokens"] == 64
