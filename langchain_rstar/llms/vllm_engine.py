"""In-process vLLM engine as a LangChain ``BaseLLM`` with cross-thread request coalescing.

Unlike ``langchain_community.llms.VLLM`` this class

* returns **all** ``n`` samples of every prompt (``generations[i]`` has ``n`` entries);
* accepts per-call sampling kwargs (``n``, ``temperature``, ``top_k``, ``top_p``,
  ``min_p``, ``max_tokens``, ``seed``; see ``accepts_sampling_kwargs``);
* reports token usage (prompt tokens counted once per prompt, completion tokens over all
  samples, prefix-cache hits) in ``llm_output``;
* is safe to call from many threads and asyncio tasks at once: one worker thread owns the
  engine, and everything queued while a batch runs (or within ``batch_wait_ms``) is sent
  to vLLM as **one** ``LLM.generate(prompts, sampling_params=[...])`` call, which is what
  makes parallel LangGraph branches fast; by default (``continuous_batching``) requests
  are instead added to the running engine between decoding steps.

``vllm`` is imported lazily (when the engine starts), so this module imports without it.
vLLM starts worker processes with ``spawn``: scripts using the engine need an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_rstar.llms._common import (
    CoalescingWorker,
    WorkerStats,
    make_llm_output,
    merge_stop,
    sampling_options,
    split_at_stop,
)
from langchain_rstar.llms._vllm_worker import ContinuousBatchingWorker, supports_continuous
from langchain_rstar.llms.base import RStarBackend
from langchain_rstar.llms.embedded import resolve_model

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "EXTRA_SAMPLING_KWARGS",
    "VLLMEngine",
    "build_sampling_params",
    "shortlist_options",
]

logger = logging.getLogger(__name__)

EXTRA_SAMPLING_KWARGS: frozenset[str] = frozenset(
    {
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "logprobs",
        "stop_token_ids",
        "ignore_eos",
        "min_tokens",
        "logit_bias",
        "skip_special_tokens",
        "include_stop_str_in_output",
    }
)
"""Further ``SamplingParams`` fields accepted as per-call kwargs (passed through)."""


def shortlist_options(opts: dict[str, Any]) -> dict[str, Any]:
    """Route ``top_k`` + ``top_p`` through the shortlist logits processor.

    Options with both filters set (``top_k > 0``, ``top_p < 1``) and random sampling get
    vLLM's own ``top_k``/``top_p`` switched off and the pair moved to
    ``extra_args["rstar_shortlist"]``; anything else is returned unchanged.
    """
    top_k = int(opts.get("top_k") or 0)
    top_p = float(opts.get("top_p", 1.0) if opts.get("top_p") is not None else 1.0)
    if top_k <= 0 or top_p >= 1.0 or float(opts.get("temperature") or 0.0) == 0.0:
        return opts
    extra = dict(opts.get("extra_args") or {})
    extra["rstar_shortlist"] = {"top_k": top_k, "top_p": top_p}
    return {**opts, "top_k": 0, "top_p": 1.0, "extra_args": extra}


def build_sampling_params(
    opts: dict[str, Any], stop: list[str] | None, sampling_params_cls: Any = None
) -> Any:
    """Map normalised options (see ``sampling_options``) to a ``vllm.SamplingParams``.

    Disabled filters (``top_k == 0``, ``top_p == 1``, ``min_p == 0``) are left out so
    vLLM's own defaults apply (its "disabled" value for ``top_k`` changed across
    versions). ``temperature == 0`` is greedy decoding.

    Args:
        opts: Normalised sampling options.
        stop: Stop strings (excluded from the returned text).
        sampling_params_cls: The class to build (default ``vllm.SamplingParams``;
            injectable for tests).

    Returns:
        A ``SamplingParams`` instance (or whatever ``sampling_params_cls`` builds).
    """
    if sampling_params_cls is None:
        from vllm import SamplingParams

        sampling_params_cls = SamplingParams
    kw: dict[str, Any] = {
        "n": opts["n"],
        "temperature": opts["temperature"],
        "max_tokens": opts.get("max_tokens"),
    }
    if opts.get("top_k"):
        kw["top_k"] = opts["top_k"]
    if opts.get("top_p", 1.0) < 1.0:
        kw["top_p"] = opts["top_p"]
    if opts.get("min_p", 0.0) > 0.0:
        kw["min_p"] = opts["min_p"]
    if opts.get("seed") is not None:
        kw["seed"] = opts["seed"]
    if stop:
        kw["stop"] = list(stop)
    for key in EXTRA_SAMPLING_KWARGS:
        if opts.get(key) is not None:
            kw[key] = opts[key]
    if opts.get("extra_args"):
        kw["extra_args"] = dict(opts["extra_args"])
    return sampling_params_cls(**kw)


def _vllm_offers_continuous() -> bool:
    """Whether the installed ``vllm.LLM`` has what :class:`ContinuousBatchingWorker` calls.

    Checked on the class, before any engine exists (``llm_engine.step`` is checked on the
    instance when the engine starts).
    """
    try:
        from vllm import LLM
    except Exception:  # noqa: BLE001 - no (usable) vLLM: coalesced batches
        return False
    return callable(getattr(LLM, "_add_completion_requests", None))


def _usable_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # pragma: no cover - unusual vLLM builds
        return False


def _cpu_auto_dtype() -> str:
    """Compute dtype for ``dtype="auto"`` on CPU.

    bfloat16 only pays off with native bf16 matmuls (AVX512-BF16 or AMX); on AVX2 CPUs
    vLLM falls back to slow emulated kernels (measured: float32 ~4.5x faster on an AMD
    EPYC Zen 3), so use float32 there.
    """
    try:
        import torch

        native = bool(torch.cpu._is_avx512_bf16_supported()) or bool(
            getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        )
    except Exception:  # pragma: no cover - private torch helpers may move
        native = False
    return "bfloat16" if native else "float32"


class VLLMEngine(RStarBackend, BaseLLM):
    """vLLM's offline engine (``vllm.LLM``) behind LangChain's ``BaseLLM`` interface.

    Example:
        .. code-block:: python

            from langchain_rstar.llms import VLLMEngine
            from langchain_rstar.llms.embedded import default_model_dir

            if __name__ == "__main__":
                with VLLMEngine(model=str(default_model_dir()), max_tokens=64) as llm:
                    res = llm.generate(["Q: 2+3=?\\nA:"], n=4, temperature=0.8, top_k=40)
                    print([g.text for g in res.generations[0]])

    Attributes:
        model: Model folder or hub id; None means the embedded Gemma 3 270M
            (converted on first use, see :func:`langchain_rstar.llms.embedded.default_model_dir`).
        tokenizer: Tokenizer folder/id when different from ``model``.
        dtype: Compute dtype passed to vLLM (``"auto"``, ``"float32"``, ``"bfloat16"``).
            On CPU ``"auto"`` means float32 unless the CPU has native bf16 matmuls.
        max_model_len: Context length to reserve (None: the model's own).
        gpu_memory_utilization: Fraction of (GPU, or on CPU host) memory vLLM may
            reserve; None leaves vLLM's default.
        kv_cache_space_gb: On CPU, the KV-cache size in GiB; exported as
            ``VLLM_CPU_KVCACHE_SPACE`` (rounded up to an integer) unless that variable
            is already set. Ignored on GPU.
        enable_prefix_caching: Reuse the KV cache of shared prompt prefixes.
        engine_kwargs: Extra keyword arguments for ``vllm.LLM``.
        n: Default number of samples per prompt.
        temperature: Default temperature (0 = greedy).
        top_k: Default top-k (0 or -1 = disabled). Cheap on CPU.
        top_p: Default nucleus threshold (1.0 = disabled). Costly on CPU (sorts the vocab).
        min_p: Default min-p (0 = disabled).
        max_tokens: Default maximum new tokens per sample.
        seed: Default per-request sampling seed (None: random).
        stop: Default stop strings (merged with the per-call ``stop``).
        sampling_kwargs: Further default ``SamplingParams`` fields.
        batch_wait_ms: After the first queued request, keep collecting others this long
            before running a batch (the batch also waits for a running one to finish).
        max_batch_prompts: Cap on prompts per engine call (None: unbounded); coalesced
            batches only (with continuous batching vLLM's scheduler admits requests:
            cap them with ``engine_kwargs={"max_num_seqs": ...}``).
        use_all_cpus: On CPU machines with at most 4 usable cores, let the model use all
            of them (exports ``VLLM_CPU_NUM_OF_RESERVED_CPU=0`` unless already set;
            vLLM otherwise keeps one core for its scheduler).
        shortlist_top_p: Apply top-p inside the top-k shortlist (a logits processor,
            :mod:`langchain_rstar.llms._shortlist`) instead of vLLM's sort of the whole
            vocabulary: the same kept tokens at top-k cost, for requests that set both
            ``top_k`` and ``top_p`` (top-p without top-k still uses vLLM's sort). None
            (default): on CPU only, where the sort costs 3-5x in decoding speed.
        continuous_batching: Drive the engine step by step
            (:class:`ContinuousBatchingWorker`): requests arriving while a batch decodes
            join it at the next step instead of waiting for the whole batch. False: every
            batch is one ``LLM.generate`` call (requests arriving meanwhile form the
            next batch). None (default): continuous when the installed vLLM offers what
            it drives (:func:`supports_continuous`); the field holds the resolved value
            once the engine starts. Measured on the embedded model (2-core CPU, one
            search, 16 rollouts in one wave): 0.77 of the engine's peak tokens/s against
            0.71 with coalesced batches, in the same run.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"
    max_model_len: int | None = 8192
    gpu_memory_utilization: float | None = None
    kv_cache_space_gb: float | None = 4.0
    enable_prefix_caching: bool = True
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)

    n: int = 1
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    sampling_kwargs: dict[str, Any] = Field(default_factory=dict)

    batch_wait_ms: float = 5.0
    max_batch_prompts: int | None = None
    continuous_batching: bool | None = None
    use_all_cpus: bool = True
    shortlist_top_p: bool | None = None

    _engine: Any = PrivateAttr(default=None)
    _worker: CoalescingWorker[Any, Any] | None = PrivateAttr(default=None)
    _start_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _resolved_model: str | None = PrivateAttr(default=None)
    _closed: bool = PrivateAttr(default=False)
    _warned_seed: bool = PrivateAttr(default=False)
    _shortlist: bool = PrivateAttr(default=False)

    # ------------------------------------------------------------------ LangChain plumbing

    @property
    def _llm_type(self) -> str:
        return "rstar-vllm-engine"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
            "n": self.n,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "max_tokens": self.max_tokens,
        }

    @property
    def model_name(self) -> str:
        """The model folder/id in use (the embedded model's folder once started)."""
        return self._resolved_model or self.model or "gemma-3-270m"

    def _default_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "n": self.n,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        opts.update(self.sampling_kwargs)
        return opts

    # ------------------------------------------------------------------ engine lifecycle

    def _engine_args(self, model: str) -> dict[str, Any]:
        dtype = self.dtype
        if dtype == "auto" and _on_cpu():
            dtype = _cpu_auto_dtype()
        args: dict[str, Any] = {
            "model": model,
            "dtype": dtype,
            "enable_prefix_caching": self.enable_prefix_caching,
        }
        if self.tokenizer:
            args["tokenizer"] = self.tokenizer
        if self.max_model_len:
            args["max_model_len"] = self.max_model_len
        if self.gpu_memory_utilization is not None:
            args["gpu_memory_utilization"] = self.gpu_memory_utilization
        args.update(self.engine_kwargs)
        if self._use_shortlist():
            from langchain_rstar.llms._shortlist import FQCN

            procs = list(args.get("logits_processors") or [])
            if FQCN not in procs:
                args["logits_processors"] = [*procs, FQCN]
        return args

    def _use_shortlist(self) -> bool:
        return _on_cpu() if self.shortlist_top_p is None else bool(self.shortlist_top_p)

    def rstar_top_p_costly(self) -> bool:
        """Whether top-p costs this engine a full-vocabulary sort (read by the search).

        False when the shortlist processor is on (top-p with top-k then costs what top-k
        costs); otherwise True on CPU.
        """
        if self._use_shortlist():
            return False
        return _on_cpu()

    def _create_engine(self) -> None:
        """Build ``vllm.LLM`` (runs in the worker thread)."""
        model = resolve_model(self.model)
        self._resolved_model = model
        if self.kv_cache_space_gb and not os.environ.get("VLLM_CPU_KVCACHE_SPACE") and _on_cpu():
            gib = max(1, int(-(-float(self.kv_cache_space_gb) // 1)))
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(gib)
        if (
            self.use_all_cpus
            and _on_cpu()
            and "VLLM_CPU_NUM_OF_RESERVED_CPU" not in os.environ
            and _usable_cpus() <= 4
        ):
            # vLLM keeps one core for its scheduler process; on a 2-core machine that halves
            # the model's threads. Measured here (2 cores): 1.5-1.7x more tokens/s with 0.
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
        if _on_cpu() and "VLLM_USE_AOT_COMPILE" not in os.environ:
            # vLLM 0.32 on CPU cannot reload its own AOT-compiled artifacts ("'function'
            # object has no attribute 'finalize_loading'") and recompiles at every start;
            # without AOT, torch inductor's cache makes later starts ~2.5x faster.
            os.environ["VLLM_USE_AOT_COMPILE"] = "0"
        from vllm import LLM

        logger.info("Starting vLLM engine on %s", model)
        args = self._engine_args(model)
        self._engine = LLM(**args)
        self._shortlist = any(
            str(proc).endswith("_shortlist:ShortlistTopP")
            for proc in args.get("logits_processors") or []
        )

    def _init_engine(self) -> None:
        """Build the engine once (worker thread); check what continuous batching drives.

        A worker started after :meth:`set_continuous_batching` reuses the running engine.
        """
        if self._engine is None:
            self._create_engine()
        if self.continuous_batching and not supports_continuous(self._engine):
            raise RuntimeError(
                "this vLLM version lacks LLM._add_completion_requests / llm_engine.step: "
                "use VLLMEngine(continuous_batching=False)"
            )

    def _run_batch(self, prompts: list[str], params: list[Any]) -> list[Any]:
        """Run one engine call (worker thread only)."""
        return list(self._engine.generate(prompts, sampling_params=params, use_tqdm=False))

    def _ensure_worker(self) -> CoalescingWorker[Any, Any]:
        worker = self._worker
        if worker is not None:
            return worker
        with self._start_lock:
            if self._closed:
                raise RuntimeError("this VLLMEngine was closed")
            if self._worker is None:
                common: dict[str, Any] = {
                    "max_wait_s": self.batch_wait_ms / 1000.0,
                    "idle_wait_s": min(self.batch_wait_ms / 1000.0, 0.002),
                    "max_batch_prompts": self.max_batch_prompts,
                    "name": "rstar-vllm-worker",
                }
                if self.continuous_batching is None:
                    self.continuous_batching = _vllm_offers_continuous()
                if self.continuous_batching:
                    self._worker = ContinuousBatchingWorker(
                        lambda: self._engine, init=self._init_engine, **common
                    )
                else:
                    self._worker = CoalescingWorker(
                        self._run_batch, init=self._init_engine, **common
                    )
            return self._worker

    def start(self, timeout: float | None = None) -> VLLMEngine:
        """Start the engine now (normally it starts on the first call) and wait for it.

        Args:
            timeout: Seconds to wait (None: no limit).

        Returns:
            self.

        Raises:
            TimeoutError: If the engine is not ready in time.
            RuntimeError: If the engine failed to start.
        """
        worker = self._ensure_worker()
        if not worker.wait_ready(timeout):
            raise TimeoutError("the vLLM engine did not start in time")
        if worker.init_error is not None:
            raise RuntimeError("the vLLM engine failed to start") from worker.init_error
        return self

    def set_continuous_batching(self, enabled: bool) -> None:
        """Switch between coalesced ``generate`` batches and continuous batching.

        The current worker finishes the requests already queued and stops; the next call
        starts a worker of the chosen kind on the same vLLM engine (no restart, no new
        compile). Lets a benchmark compare both modes on one engine in one run. Call it
        between runs: a request submitted while the switch happens may fail.

        Args:
            enabled: True for continuous batching, False for coalesced batches.

        Raises:
            RuntimeError: If this engine was closed.
        """
        with self._start_lock:
            if self._closed:
                raise RuntimeError("this VLLMEngine was closed")
            worker, self._worker = self._worker, None
            self.continuous_batching = enabled
        if worker is not None:
            worker.close(timeout=None)

    @property
    def engine(self) -> Any:
        """The underlying ``vllm.LLM`` (started if needed). Do not call it concurrently."""
        self.start()
        return self._engine

    @property
    def stats(self) -> dict[str, float | int]:
        """Coalescing counters: ``batches`` (engine calls; admission rounds with
        ``continuous_batching``), ``requests`` (``generate`` calls served), ``prompts``,
        ``max_batch_requests``, ``max_batch_prompts``, ``errors``, ``busy_s``, ``steps``
        (engine steps driven by the continuous-batching worker)."""
        worker = self._worker
        if worker is None:
            return WorkerStats().as_dict()
        return worker.stats

    def reset_stats(self) -> None:
        """Zero the coalescing counters."""
        if self._worker is not None:
            self._worker.reset_stats()

    def close(self, wait: bool = True) -> None:
        """Stop the worker thread and shut the engine (and its processes) down.

        Args:
            wait: Finish the queued requests first (default). ``False`` shuts the engine
                down at once (e.g. on SIGTERM): requests in flight fail.
        """
        with self._start_lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close(timeout=None if wait else 0.0)
        engine, self._engine = self._engine, None
        if engine is not None:
            core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:  # pragma: no cover - best effort
                    logger.debug("vLLM engine shutdown failed", exc_info=True)
            del engine

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ generation

    def _submit(
        self, prompts: list[str], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[Future[list[Any]], list[str], int]:
        opts = sampling_options(
            self._default_options(), kwargs, extra_allowed=EXTRA_SAMPLING_KWARGS
        )
        stops = merge_stop(self.stop, stop)
        n = opts["n"]
        if opts["temperature"] == 0.0 and n > 1:
            # vLLM refuses n > 1 for greedy decoding: decode once, copy the result.
            opts = dict(opts, n=1)
        sp = self._make_sampling_params(opts, stops)
        worker = self._ensure_worker()
        return worker.submit(prompts, [sp] * len(prompts)), stops, n

    def _make_sampling_params(self, opts: dict[str, Any], stops: list[str]) -> Any:
        """Build the per-prompt ``SamplingParams`` (overridable, e.g. in tests).

        On CPU the per-request ``seed`` is dropped: vLLM 0.32's CPU worker kills the engine
        ("CPU Generator does not use offset") when a seeded request is split by chunked
        prefill, which happens as soon as a coalesced batch holds more prompt tokens than
        ``max_num_batched_tokens``. Sampling there is seeded by the engine's own seed.
        """
        if opts.get("seed") is not None and _on_cpu():
            if not self._warned_seed:
                logger.info("per-request seeds are ignored on vLLM CPU (engine seed is used)")
                self._warned_seed = True
            opts = {k: v for k, v in opts.items() if k != "seed"}
        if self._shortlist:
            opts = shortlist_options(opts)
        return build_sampling_params(opts, stops)

    def _to_result(self, outputs: list[Any], stops: list[str], n: int = 1) -> LLMResult:
        generations: list[list[Generation]] = []
        prompt_tokens = completion_tokens = 0
        cached: int | None = None
        for req in outputs:
            prompt_tokens += len(req.prompt_token_ids or ())
            nc = getattr(req, "num_cached_tokens", None)
            if nc is not None:
                cached = (cached or 0) + int(nc)
            gens = []
            for o in sorted(req.outputs, key=lambda c: c.index):
                text, hit = split_at_stop(o.text, stops)
                completion_tokens += len(o.token_ids)
                info: dict[str, Any] = {
                    "finish_reason": "stop" if hit else o.finish_reason,
                    "stop_reason": hit if hit else o.stop_reason,
                    "completion_tokens": len(o.token_ids),
                }
                if o.cumulative_logprob is not None:
                    info["cumulative_logprob"] = o.cumulative_logprob
                gens.append(Generation(text=text, generation_info=info))
            while gens and len(gens) < n:  # greedy n > 1: identical copies
                gens.append(Generation(text=gens[0].text, generation_info=gens[0].generation_info))
            generations.append(gens)
        return LLMResult(
            generations=generations,
            llm_output=make_llm_output(
                model_name=self.model_name,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_prompt_tokens=cached,
            ),
        )

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        future, stops, n = self._submit(prompts, stop, kwargs)
        return self._to_result(future.result(), stops, n)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        future, stops, n = self._submit(prompts, stop, kwargs)
        outputs = await asyncio.wrap_future(future)
        return self._to_result(outputs, stops, n)
