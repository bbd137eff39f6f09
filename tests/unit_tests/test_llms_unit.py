"""Offline unit tests of the local LLM backends (no model, no vLLM engine)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from langchain_rstar.config import top_p_is_costly as config_top_p_is_costly
from langchain_rstar.llms import TransformersLLM, VLLMEngine, default_llm
from langchain_rstar.llms import embedded as models
from langchain_rstar.llms._common import (
    SAMPLING_KWARGS,
    CoalescingWorker,
    make_llm_output,
    merge_stop,
    sampling_options,
    split_at_stop,
)
from langchain_rstar.llms.base import BackendTraits, RStarBackend, backend_traits, top_p_is_costly
from langchain_rstar.llms.vllm_engine import build_sampling_params

# --------------------------------------------------------------------------- stop strings


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("abc\n\ndef", ["\n\n"], ("abc", "\n\n")),
        ("abc", ["x"], ("abc", None)),
        ("abc", [], ("abc", None)),
        ("abc", None, ("abc", None)),
        ("a STOP b END c", ["END", "STOP"], ("a ", "STOP")),
        ("a\n\nb", ["\n", "\n\n"], ("a", "\n\n")),  # same start: longer stop reported
        ("stop at start", ["stop"], ("", "stop")),
        ("x", [""], ("x", None)),
    ],
)
def test_split_at_stop(text: str, stop: list[str] | None, expected: tuple) -> None:
    assert split_at_stop(text, stop) == expected


def test_merge_stop() -> None:
    assert merge_stop(None, "a", ["b", "a", ""], None, ["c"]) == ["a", "b", "c"]
    assert merge_stop() == []


# --------------------------------------------------------------------------- sampling


DEFAULTS = {
    "n": 1,
    "temperature": 0.8,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": 0.0,
    "max_tokens": 64,
    "seed": None,
}


def test_sampling_options_overlay_and_normalisation() -> None:
    opts = sampling_options(DEFAULTS, {"n": 4, "top_k": -1, "temperature": None, "seed": "3"})
    assert opts["n"] == 4
    assert opts["top_k"] == 0
    assert opts["temperature"] == 0.8  # None means "default"
    assert opts["seed"] == 3
    assert set(SAMPLING_KWARGS) <= set(opts)


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 0},
        {"temperature": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"min_p": 2},
        {"max_tokens": 0},
    ],
)
def test_sampling_options_rejects_invalid(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sampling_options(DEFAULTS, bad)


def test_sampling_options_rejects_unknown_kwargs() -> None:
    with pytest.raises(TypeError, match="bogus"):
        sampling_options(DEFAULTS, {"bogus": 1})
    assert sampling_options(DEFAULTS, {"presence_penalty": 0.5}, extra_allowed={"presence_penalty"})


class RecordingParams:
    """Stands in for vllm.SamplingParams: records its keyword arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_build_sampling_params_mapping() -> None:
    opts = sampling_options(
        DEFAULTS, {"n": 8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "seed": 7, "max_tokens": 9}
    )
    sp = build_sampling_params(opts, ["\n\n"], RecordingParams)
    assert sp.kwargs == {
        "n": 8,
        "temperature": 0.8,
        "max_tokens": 9,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "seed": 7,
        "stop": ["\n\n"],
    }


def test_build_sampling_params_omits_disabled_filters() -> None:
    opts = sampling_options(DEFAULTS, {"temperature": 0})
    sp = build_sampling_params(opts, [], RecordingParams)
    assert sp.kwargs == {"n": 1, "temperature": 0.0, "max_tokens": 64}
    opts = sampling_options(
        DEFAULTS, {"repetition_penalty": 1.1}, extra_allowed={"repetition_penalty"}
    )
    assert build_sampling_params(opts, [], RecordingParams).kwargs["repetition_penalty"] == 1.1


def test_make_llm_output() -> None:
    out = make_llm_output(model_name="m", prompt_tokens=5, completion_tokens=7)
    assert out == {
        "token_usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        "model_name": "m",
    }
    out = make_llm_output(
        model_name="m", prompt_tokens=5, completion_tokens=7, cached_prompt_tokens=3
    )
    assert out["token_usage"]["cached_prompt_tokens"] == 3


# --------------------------------------------------------------------------- manifest


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "fake"}))
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "tok.json").write_text("{}")
    return folder


def test_manifest_roundtrip_and_corruption(tmp_path: Path) -> None:
    folder = _fake_model(tmp_path / "m")
    models.write_manifest(folder, {"k": "v"})
    manifest = json.loads((folder / models.MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors", "sub/tok.json"}
    assert manifest["meta"] == {"k": "v"}
    assert models.verify_manifest(folder)
    assert models.verify_manifest(folder)  # cached path

    # Same size, different bytes (and a new mtime): detected.
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[0] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert not models.verify_manifest(folder)

    models.write_manifest(folder)
    assert models.verify_manifest(folder)
    (folder / "sub" / "tok.json").unlink()
    assert not models.verify_manifest(folder)


def test_manifest_missing_or_broken(tmp_path: Path) -> None:
    folder = _fake_model(tmp_path / "m")
    assert not models.verify_manifest(folder)  # no manifest
    (folder / models.MANIFEST_NAME).write_text("not json")
    assert not models.verify_manifest(folder)
    (folder / models.MANIFEST_NAME).write_text(json.dumps({"format": 1, "files": {}}))
    assert not models.verify_manifest(folder)  # empty manifest is not valid
    assert not models.verify_manifest(tmp_path / "absent")


def test_build_atomically_builds_once_and_repairs(tmp_path: Path) -> None:
    final = tmp_path / "models" / "fake"
    final.parent.mkdir(parents=True)
    calls: list[int] = []
    lock = threading.Lock()

    def build(tmp: Path) -> Path:
        with lock:
            calls.append(1)
        time.sleep(0.2)
        out = _fake_model(tmp / "model")
        models.write_manifest(out)
        return out

    threads = [
        threading.Thread(target=models._build_atomically, args=(final, build)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert models.verify_manifest(final)
    assert models._build_atomically(final, build) == final
    assert len(calls) == 1

    (final / "config.json").write_text("corrupted!")
    assert models._build_atomically(final, build) == final
    assert len(calls) == 2
    assert models.verify_manifest(final)
    leftovers = [p.name for p in final.parent.iterdir() if p.name.startswith((".tmp", ".trash"))]
    assert leftovers == []


def test_build_atomically_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "models" / "fake"
    final.parent.mkdir(parents=True)

    def build(tmp: Path) -> Path:
        _fake_model(tmp / "model")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        models._build_atomically(final, build)
    assert not final.exists()
    assert [p for p in final.parent.iterdir() if p.is_dir()] == []


def test_cache_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSTAR_CACHE_DIR", str(tmp_path / "a"))
    assert models.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("RSTAR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "langchain-rstar"
    assert models.cache_dir().is_dir()


def test_resolve_model(tmp_path: Path) -> None:
    folder = _fake_model(tmp_path / "m")
    assert models.resolve_model(folder) == str(folder.resolve())
    assert models.resolve_model("google/gemma-3-270m") == "google/gemma-3-270m"
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError):
        models.resolve_model(tmp_path / "weights.bin")


def test_default_llm_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError):
        default_llm(backend="nope")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- coalescing


def test_worker_coalesces_concurrent_callers() -> None:
    batches: list[list[str]] = []
    started = threading.Event()

    def run_batch(prompts: list[str], payloads: list[int]) -> list[str]:
        batches.append(list(prompts))
        started.set()
        time.sleep(0.15)
        return [f"{p}:{q}" for p, q in zip(prompts, payloads, strict=True)]

    worker: CoalescingWorker[int, str] = CoalescingWorker(run_batch, max_wait_s=0.02)
    try:
        results: dict[int, list[str]] = {}

        def call(i: int) -> None:
            results[i] = worker.submit([f"p{i}a", f"p{i}b"], [i, i]).result(timeout=10)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(8):
            assert results[i] == [f"p{i}a:{i}", f"p{i}b:{i}"]
        stats = worker.stats
        assert stats["requests"] == 8
        assert stats["prompts"] == 16
        assert stats["batches"] == len(batches) < 8
        assert stats["max_batch_requests"] >= 2
    finally:
        worker.close()
    assert not worker.alive
    with pytest.raises(RuntimeError):
        worker.submit(["x"], [0])


def test_worker_respects_max_batch_prompts() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def run_batch(prompts: list[str], payloads: list[None]) -> list[str]:
        gate.wait(5)
        sizes.append(len(prompts))
        return list(prompts)

    worker: CoalescingWorker[None, str] = CoalescingWorker(
        run_batch, max_wait_s=0.0, max_batch_prompts=3
    )
    try:
        futs = [worker.submit([f"a{i}", f"b{i}"], [None, None]) for i in range(4)]
        gate.set()
        assert [f.result(5) for f in futs] == [[f"a{i}", f"b{i}"] for i in range(4)]
        assert max(sizes) <= 3
    finally:
        worker.close()


def test_worker_propagates_errors_and_init_failure() -> None:
    def boom(prompts: list[str], payloads: list[None]) -> list[str]:
        raise ValueError("engine exploded")

    worker: CoalescingWorker[None, str] = CoalescingWorker(boom)
    try:
        with pytest.raises(ValueError, match="exploded"):
            worker.submit(["x"], [None]).result(5)
        assert worker.stats["errors"] == 1
        assert worker.submit([], []).result(1) == []
    finally:
        worker.close()

    def bad_init() -> None:
        raise OSError("no model")

    worker2: CoalescingWorker[None, str] = CoalescingWorker(lambda p, q: list(p), init=bad_init)
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            worker2.submit(["x"], [None]).result(5)
    finally:
        worker2.close()


# --------------------------------------------------------------------------- VLLMEngine (fake)


class FakeLLM:
    """Mimics vllm.LLM.generate: records calls, returns RequestOutput-like objects."""

    def __init__(self, delay: float = 0.05) -> None:
        self.calls: list[tuple[list[str], list[dict[str, Any]]]] = []
        self.threads: set[str] = set()
        self.delay = delay

    def generate(self, prompts: list[str], sampling_params: list[Any], use_tqdm: bool = False):
        self.threads.add(threading.current_thread().name)
        self.calls.append((list(prompts), list(sampling_params)))
        time.sleep(self.delay)
        outs = []
        for prompt, sp in zip(prompts, sampling_params, strict=True):
            completions = [
                SimpleNamespace(
                    index=j,
                    text=f"{prompt}|{j} STOP tail",
                    token_ids=[7] * (j + 1),
                    finish_reason="length",
                    stop_reason=None,
                    cumulative_logprob=None,
                )
                for j in range(sp["n"])
            ]
            outs.append(
                SimpleNamespace(
                    prompt_token_ids=[1] * len(prompt.split()),
                    outputs=list(reversed(completions)),  # order must not matter
                    num_cached_tokens=1,
                )
            )
        return outs


class FakeVLLMEngine(VLLMEngine):
    """VLLMEngine with the vLLM engine and SamplingParams replaced by fakes."""

    continuous_batching: bool | None = False  # FakeLLM has no step(); see FakeDualEngine

    def _create_engine(self) -> None:
        self._resolved_model = "fake-model"
        self._engine = FakeLLM()

    def _make_sampling_params(self, opts: dict[str, Any], stops: list[str]) -> Any:
        return dict(opts, stop=stops)


def test_vllm_engine_class_contract() -> None:
    assert VLLMEngine.accepts_sampling_kwargs is True
    assert TransformersLLM.accepts_sampling_kwargs is True
    for cls in (VLLMEngine, TransformersLLM):
        assert issubclass(cls, RStarBackend)
    hf = TransformersLLM(model="/nowhere", shortlist_top_p=False)
    assert backend_traits(hf) == BackendTraits(
        mode="native", top_p_costly=True, chat=False, wrapped=None
    )
    assert config_top_p_is_costly is top_p_is_costly  # the old path is the contract's
    llm = VLLMEngine(model="/nowhere", temperature=0.5)
    assert llm._engine is None and llm._worker is None  # lazy: nothing started
    assert llm.stats["batches"] == 0
    llm.close()


def test_vllm_engine_returns_all_samples_and_usage() -> None:
    with FakeVLLMEngine(model="x", stop=["STOP"]) as llm:
        res = llm.generate(["one two", "three"], n=3, top_k=40, seed=1)
        assert [len(g) for g in res.generations] == [3, 3]
        assert [g.text for g in res.generations[0]] == ["one two|0 ", "one two|1 ", "one two|2 "]
        assert res.generations[0][0].generation_info["finish_reason"] == "stop"
        usage = res.llm_output["token_usage"]
        assert usage["prompt_tokens"] == 3  # each prompt once, not once per sample
        assert usage["completion_tokens"] == 2 * (1 + 2 + 3)
        assert usage["cached_prompt_tokens"] == 2
        assert res.llm_output["model_name"] == "fake-model"
        sp = llm._engine.calls[0][1][0]
        assert (sp["n"], sp["top_k"], sp["seed"], sp["stop"]) == (3, 40, 1, ["STOP"])
        with pytest.raises(TypeError):
            llm.generate(["x"], not_a_sampling_arg=1)
        greedy = llm.generate(["g"], n=3, temperature=0)
        assert [g.text for g in greedy.generations[0]] == ["g|0 "] * 3
        assert llm._engine.calls[-1][1][0]["n"] == 1  # vLLM forbids greedy n > 1
    with pytest.raises(RuntimeError):
        llm.generate(["again"])


def test_vllm_engine_coalesces_threads_and_tasks() -> None:
    with FakeVLLMEngine(model="x", batch_wait_ms=20) as llm:
        llm.start()
        results: dict[int, str] = {}
        barrier = threading.Barrier(8)

        def call(i: int) -> None:
            barrier.wait()
            results[i] = llm.invoke(f"prompt {i}", temperature=0.1 * i)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {i: f"prompt {i}|0 STOP tail" for i in range(8)}
        stats = llm.stats
        assert stats["requests"] == 8 and stats["prompts"] == 8
        assert stats["batches"] < 8
        assert llm._engine.threads == {"rstar-vllm-worker"}
        # Per-prompt SamplingParams survive coalescing.
        temps = sorted(sp["temperature"] for _, sps in llm._engine.calls for sp in sps)
        assert temps == pytest.approx([0.1 * i for i in range(8)])

        llm.reset_stats()

        async def many() -> list[Any]:
            return await asyncio.gather(*(llm.agenerate([f"a{i}"], n=2) for i in range(6)))

        outs = asyncio.run(many())
        assert [len(o.generations[0]) for o in outs] == [2] * 6
        assert llm.stats["requests"] == 6
        assert llm.stats["batches"] < 6


def test_vllm_engine_start_failure_is_reported() -> None:
    class Broken(FakeVLLMEngine):
        def _create_engine(self) -> None:
            raise OSError("cannot load")

    llm = Broken(model="x")
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            llm.start(timeout=5)
        with pytest.raises(RuntimeError, match="failed to start"):
            llm.invoke("hi")
    finally:
        llm.close()


def test_vllm_engine_args_and_kvcache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = VLLMEngine(model="m", dtype="float32", max_model_len=1024, engine_kwargs={"seed": 3})
    args = llm._engine_args("m")
    assert args["model"] == "m" and args["dtype"] == "float32"
    assert args["max_model_len"] == 1024 and args["seed"] == 3
    assert args["enable_prefix_caching"] is True
    assert "gpu_memory_utilization" not in args


# --------------------------------------------------------------------------- transformers


def test_transformers_stop_criteria() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from langchain_rstar.llms.transformers_llm import make_stop_criteria

    class CharTok:
        def batch_decode(self, rows: Any, skip_special_tokens: bool = True) -> list[str]:
            return ["".join(chr(int(t)) for t in row) for row in rows.tolist()]

    crit = make_stop_criteria(CharTok(), ["\n\n"], prompt_len=2)
    ids = torch.tensor([[65, 65, 97, 10], [65, 65, 98, 98]])
    assert crit(ids, None).tolist() == [False, False]
    ids = torch.cat([ids, torch.tensor([[10], [10]])], dim=1)
    assert crit(ids, None).tolist() == [True, False]
    ids = torch.cat([ids, torch.tensor([[0], [98]])], dim=1)
    assert crit(ids, None).tolist() == [True, False]  # done rows stay done


# --------------------------------------------------------------------------- continuous batching


class FakeStepLLM:
    """Mimics the parts of vllm.LLM that ContinuousBatchingWorker drives."""

    def __init__(self, step_s: float = 0.01) -> None:
        self.counter = 0
        self.live: dict[str, list[Any]] = {}  # external id -> [prompt, params, steps_left]
        self.step_s = step_s
        self.max_live = 0
        self.threads: set[str] = set()
        self.llm_engine = SimpleNamespace(step=self._step)

    def _add_completion_requests(self, prompts, params, use_tqdm=False):  # noqa: ANN001
        ids = []
        for p, sp in zip(prompts, params, strict=True):
            ext = str(self.counter)
            self.counter += 1
            self.live[ext] = [p, sp, sp["max_tokens"]]
            ids.append(f"{ext}-abcd1234")
        return ids

    def _step(self) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        self.max_live = max(self.max_live, len(self.live))
        time.sleep(self.step_s)
        outs = []
        for ext in list(self.live):
            entry = self.live[ext]
            entry[2] -= 1
            if entry[2] <= 0:
                p, sp, _ = self.live.pop(ext)
                outs.append(
                    SimpleNamespace(
                        request_id=ext,
                        finished=True,
                        prompt_token_ids=[1, 2],
                        num_cached_tokens=0,
                        outputs=[
                            SimpleNamespace(
                                index=j,
                                text=f"{p}#{j}",
                                token_ids=[5] * sp["max_tokens"],
                                finish_reason="length",
                                stop_reason=None,
                                cumulative_logprob=None,
                            )
                            for j in range(sp["n"])
                        ],
                    )
                )
            else:
                outs.append(SimpleNamespace(request_id=ext, finished=False))
        return outs


class FakeContinuousEngine(FakeVLLMEngine):
    def _create_engine(self) -> None:
        self._resolved_model = "fake-step-model"
        self._engine = FakeStepLLM()


def test_closing_without_waiting_fails_requests_in_flight_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ctrl-C / SIGTERM close the engine at once (``close(wait=False)``): a request still in
    the running batch fails with a clear error, and the worker logs no traceback (it used to
    step a closed engine and log AttributeError: 'NoneType' has no 'llm_engine')."""
    llm = FakeContinuousEngine(model="x", continuous_batching=True, batch_wait_ms=1)
    llm.start(timeout=5)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            llm.generate(["long"], max_tokens=10_000)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=call)
    with caplog.at_level(logging.ERROR, logger="langchain_rstar"):
        thread.start()
        deadline = time.monotonic() + 5
        while not llm._engine.live and time.monotonic() < deadline:
            time.sleep(0.01)
        llm.close(wait=False)
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert errors and "shut down" in str(errors[0])
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_continuous_batching_joins_running_batch() -> None:
    with FakeContinuousEngine(model="x", continuous_batching=True, batch_wait_ms=1) as llm:
        llm.start(timeout=5)
        done: dict[str, float] = {}
        t0 = time.perf_counter()

        def call(name: str, tokens: int, delay: float) -> None:
            time.sleep(delay)
            res = llm.generate([name], n=2, max_tokens=tokens)
            assert [g.text for g in res.generations[0]] == [f"{name}#0", f"{name}#1"]
            assert res.llm_output["token_usage"]["completion_tokens"] == 2 * tokens
            done[name] = time.perf_counter() - t0

        long = threading.Thread(target=call, args=("long", 60, 0.0))
        short = threading.Thread(target=call, args=("short", 3, 0.1))
        long.start()
        short.start()
        long.join()
        short.join()
        # The short request joined the running batch and finished long before it.
        assert done["short"] < done["long"] * 0.6, done
        assert llm._engine.max_live == 2
        assert llm._engine.threads == {"rstar-vllm-worker"}
        stats = llm.stats
        assert stats["requests"] == 2 and stats["batches"] == 2 and stats["steps"] >= 60

        # Concurrent arrivals are still admitted together.
        llm.reset_stats()
        barrier = threading.Barrier(8)

        def gen(i: int) -> None:
            barrier.wait()
            llm.generate([f"p{i}"], max_tokens=5)

        threads = [threading.Thread(target=gen, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert llm.stats["requests"] == 8 and llm.stats["batches"] < 8

        async def many() -> list[Any]:
            return await asyncio.gather(*(llm.agenerate([f"a{i}"], max_tokens=2) for i in range(4)))

        assert [len(o.generations[0]) for o in asyncio.run(many())] == [1] * 4


class FakeDualLLM(FakeStepLLM):
    """Both interfaces: ``generate`` (coalesced batches) and ``step`` (continuous)."""

    def __init__(self) -> None:
        super().__init__(step_s=0.001)
        self.calls: list[tuple[list[str], list[dict[str, Any]]]] = []
        self.delay = 0.001

    generate = FakeLLM.generate


class FakeDualEngine(FakeVLLMEngine):
    created: ClassVar[int] = 0

    def _create_engine(self) -> None:
        type(self).created += 1
        self._resolved_model = "fake-dual-model"
        self._engine = FakeDualLLM()


def test_switching_batching_mode_keeps_the_engine() -> None:
    with FakeDualEngine(model="x") as llm:
        llm.start(timeout=5)
        engine = llm._engine
        assert len(llm.generate(["a"], n=2, max_tokens=3).generations[0]) == 2
        assert len(engine.calls) == 1 and llm.stats["steps"] == 0  # one generate call
        llm.set_continuous_batching(True)
        assert llm.continuous_batching
        res = llm.generate(["b"], n=2, max_tokens=3)
        assert [g.text for g in res.generations[0]] == ["b#0", "b#1"]  # stepped, not generate
        assert llm._engine is engine and len(engine.calls) == 1 and llm.stats["steps"] >= 3
        llm.set_continuous_batching(False)
        llm.generate(["c"], max_tokens=2)
        assert llm._engine is engine and len(engine.calls) == 2
        assert FakeDualEngine.created == 1  # never rebuilt
    with pytest.raises(RuntimeError, match="closed"):
        llm.set_continuous_batching(True)


def test_gemma3_chat_template_renders_turns_and_continues_a_prefix() -> None:
    """The converted Gemma 3 folder carries this template (the GGUF has none, and vLLM's chat
    endpoint refuses a tokenizer without one): system folded into the first user turn, the
    assistant prefix left open and untouched for ``continue_final_message``."""
    import jinja2

    from langchain_rstar.llms.embedded import GEMMA3_CHAT_TEMPLATE

    template = jinja2.Environment().from_string(GEMMA3_CHAT_TEMPLATE)
    msgs = [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": "Question: 2+2?"},
        {"role": "assistant", "content": "Step 1: "},
    ]
    full = template.render(messages=msgs, bos_token="<bos>", add_generation_prompt=False)
    assert full == (
        "<bos><start_of_turn>user\nSolve it.\n\nQuestion: 2+2?<end_of_turn>\n"
        "<start_of_turn>model\nStep 1: <end_of_turn>\n"
    )
    ask = template.render(messages=msgs[1:2], bos_token="<bos>", add_generation_prompt=True)
    assert ask == "<bos><start_of_turn>user\nQuestion: 2+2?<end_of_turn>\n<start_of_turn>model\n"
    parts = [{"type": "text", "text": "Hi"}, {"type": "image", "url": "x"}]
    listed = template.render(messages=[{"role": "user", "content": parts}], bos_token="")
    assert listed == "<start_of_turn>user\nHi<end_of_turn>\n"
