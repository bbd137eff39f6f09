"""A ``transformers`` ``generate`` backend as a LangChain ``BaseLLM``.

Slower than :class:`~langchain_rstar.llms.VLLMEngine` but needs only ``torch`` and
``transformers``; it works wherever they do (CPU, CUDA, MPS). It returns all ``n``
samples per prompt, honours stop strings (generation of a sequence stops as soon as it
contains one; the text is cut before it), batches prompts with left padding, and reports
token usage in ``llm_output``. A lock serialises callers: the model is never run from
two threads at once.

``torch``/``transformers`` are imported lazily, when the model is first loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_rstar.llms._common import (
    make_llm_output,
    merge_stop,
    sampling_options,
    split_at_stop,
)
from langchain_rstar.llms.base import RStarBackend
from langchain_rstar.llms.embedded import resolve_model

__all__ = ["TransformersLLM", "EXTRA_HF_KWARGS", "make_stop_criteria"]

logger = logging.getLogger(__name__)

EXTRA_HF_KWARGS: frozenset[str] = frozenset(
    {"repetition_penalty", "no_repeat_ngram_size", "min_new_tokens"}
)
"""Further ``generate`` arguments accepted as per-call kwargs (passed through)."""


def make_stop_criteria(
    tokenizer: Any, stop: Sequence[str], prompt_len: int, window: int | None = None
) -> Any:
    """Build a ``StoppingCriteria`` that finishes each sequence once it contains a stop.

    It returns a per-sequence boolean tensor, so ``generate`` marks finished rows (and
    pads them) and stops altogether when every row is done. Only the last ``window``
    generated tokens are decoded at each step.

    Args:
        tokenizer: The tokenizer used to decode.
        stop: Stop strings.
        prompt_len: Length of the (padded) prompt part of ``input_ids``.
        window: Tokens decoded per step (default: enough for the longest stop string).

    Returns:
        A ``transformers.StoppingCriteria``.
    """
    import torch
    from transformers import StoppingCriteria

    stops = [s for s in stop if s]
    win = window or (max((len(s) for s in stops), default=1) + 8)

    class _StopOnStrings(StoppingCriteria):
        def __init__(self) -> None:
            self.done: torch.Tensor | None = None

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            bsz = input_ids.shape[0]
            if self.done is None or self.done.shape[0] != bsz:
                self.done = torch.zeros(bsz, dtype=torch.bool, device=input_ids.device)
            gen = input_ids[:, prompt_len:]
            start = max(0, gen.shape[1] - win)
            tails = tokenizer.batch_decode(gen[:, start:], skip_special_tokens=True)
            for i, tail in enumerate(tails):
                if not self.done[i] and any(s in tail for s in stops):
                    self.done[i] = True
            return self.done.clone()

    return _StopOnStrings()


class TransformersLLM(RStarBackend, BaseLLM):
    """Local generation with ``transformers`` (``AutoModelForCausalLM.generate``).

    Example:
        .. code-block:: python

            from langchain_rstar.llms import TransformersLLM

            llm = TransformersLLM(max_tokens=64)  # the embedded Gemma 3 270M
            res = llm.generate(["Q: 2+3=?\\nA:"], n=3, temperature=0.8, stop=["\\n"])

    Attributes:
        model: Model folder or hub id; None means the embedded Gemma 3 270M.
        hf_model: An already-loaded model (then ``model`` is only a label).
        hf_tokenizer: The tokenizer for ``hf_model`` (required with it).
        device: ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ...
        torch_dtype: ``"auto"`` (bfloat16 on CUDA, float32 elsewhere) or a dtype name.
        model_kwargs: Extra ``from_pretrained`` arguments.
        batch_size: Prompts per ``generate`` call (each expands to ``n`` sequences).
        n: Default number of samples per prompt.
        temperature: Default temperature (0 = greedy).
        top_k: Default top-k (0 = disabled).
        top_p: Default nucleus threshold (1.0 = disabled).
        min_p: Default min-p (0 = disabled).
        max_tokens: Default maximum new tokens.
        seed: Default seed (None: unseeded).
        stop: Default stop strings.
        generate_kwargs: Further default ``generate`` arguments.
        shortlist_top_p: With both top-k and top-p set, compute top-p inside the top-k
            shortlist (:class:`~langchain_rstar.llms._shortlist.HFShortlistTopKTopP`: the
            same kept tokens as ``transformers``' own warpers, without sorting the whole
            vocabulary for every token). False uses ``transformers``' warpers.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: str | None = None
    hf_model: Any = Field(default=None, exclude=True)
    hf_tokenizer: Any = Field(default=None, exclude=True)
    device: str = "auto"
    torch_dtype: str = "auto"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = 8

    n: int = 1
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    generate_kwargs: dict[str, Any] = Field(default_factory=dict)
    shortlist_top_p: bool = True

    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)
    _resolved_model: str | None = PrivateAttr(default=None)
    _device: str | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "rstar-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "device": self.device,
            "torch_dtype": self.torch_dtype,
            "n": self.n,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "max_tokens": self.max_tokens,
        }

    def rstar_top_p_costly(self) -> bool:
        """Whether top-p costs this model a full-vocabulary sort per token (read by the
        search's ``sampling_preset="auto"``): False with ``shortlist_top_p`` (top-p with
        top-k then costs what top-k costs)."""
        return not self.shortlist_top_p

    @property
    def model_name(self) -> str:
        """The model folder/id (or a label for an injected model)."""
        if self._resolved_model:
            return self._resolved_model
        if self.model:
            return self.model
        if self.hf_model is not None:
            return str(getattr(self.hf_model.config, "_name_or_path", "") or "custom")
        return "gemma-3-270m"

    # ------------------------------------------------------------------ loading

    def _pick_device(self) -> str:
        import torch

        if self.device != "auto":
            return self.device
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"

    def load(self) -> TransformersLLM:
        """Load the model and tokenizer now (normally done on the first call).

        Returns:
            self.
        """
        with self._lock:
            if self.hf_model is not None and self.hf_tokenizer is not None:
                if self._device is None:
                    self._device = str(getattr(self.hf_model, "device", "cpu"))
                return self
            if self.hf_model is not None:
                raise ValueError("hf_model was given without hf_tokenizer")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path = resolve_model(self.model)
            device = self._pick_device()
            if self.torch_dtype == "auto":
                dtype = torch.bfloat16 if device == "cuda" else torch.float32
            else:
                dtype = getattr(torch, self.torch_dtype)
            tok = AutoTokenizer.from_pretrained(path)
            mdl = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **self.model_kwargs)
            mdl.to(device)  # type: ignore[arg-type]
            mdl.eval()
            self.hf_tokenizer, self.hf_model = tok, mdl
            self._resolved_model, self._device = path, device
        return self

    # ------------------------------------------------------------------ generation

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
        opts.update(self.generate_kwargs)
        return opts

    def _generate_chunk(
        self, prompts: list[str], opts: dict[str, Any], stops: list[str]
    ) -> tuple[list[list[Generation]], int, int]:
        import torch
        from transformers import StoppingCriteriaList

        tok, mdl = self.hf_tokenizer, self.hf_model
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        old_side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(prompts, return_tensors="pt", padding=True)
        finally:
            tok.padding_side = old_side
        enc = {k: v.to(self._device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]
        prompt_tokens = int(enc["attention_mask"].sum().item())
        n = opts["n"]
        greedy = opts["temperature"] == 0.0
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": opts["max_tokens"],
            "do_sample": not greedy,
            "num_return_sequences": 1 if greedy else n,
            "pad_token_id": tok.pad_token_id,
        }
        if not greedy:
            gen_kwargs.update(
                temperature=opts["temperature"],
                top_k=opts["top_k"],  # 0 disables (overrides generation_config's 50)
                top_p=opts["top_p"],
                min_p=opts["min_p"] or None,
            )
            if self.shortlist_top_p and opts["top_k"] and 0.0 < opts["top_p"] < 1.0:
                from transformers import LogitsProcessorList

                from langchain_rstar.llms._shortlist import HFShortlistTopKTopP

                shortlist = HFShortlistTopKTopP(opts["top_k"], opts["top_p"], opts["temperature"])
                gen_kwargs.update(
                    top_k=0, top_p=1.0, logits_processor=LogitsProcessorList([shortlist])
                )
        else:  # silence "sampling flags set but do_sample=False" warnings
            gen_kwargs.update(temperature=None, top_k=None, top_p=None)
        for key in EXTRA_HF_KWARGS:
            if opts.get(key) is not None:
                gen_kwargs[key] = opts[key]
        if stops:
            gen_kwargs["stopping_criteria"] = StoppingCriteriaList(
                [make_stop_criteria(tok, stops, prompt_len)]
            )
        if opts.get("seed") is not None:
            torch.manual_seed(opts["seed"])
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(opts["seed"])
        with torch.inference_mode():
            out = mdl.generate(**enc, **gen_kwargs)
        new = out[:, prompt_len:].tolist()
        per_prompt = 1 if greedy else n
        pad_id = tok.pad_token_id
        eos = mdl.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else ([eos] if eos is not None else []))
        generations: list[list[Generation]] = []
        completion_tokens = 0
        for p in range(len(prompts)):
            gens: list[Generation] = []
            for j in range(per_prompt):
                ids = new[p * per_prompt + j]
                while ids and ids[-1] == pad_id:
                    ids = ids[:-1]
                finish = "length"
                if ids and ids[-1] in eos_ids:
                    finish = "stop"
                text = tok.decode(ids, skip_special_tokens=True)
                text, hit = split_at_stop(text, stops)
                info: dict[str, Any] = {
                    "finish_reason": "stop" if hit else finish,
                    "stop_reason": hit,
                    "completion_tokens": len(ids),
                }
                gens.append(Generation(text=text, generation_info=info))
            if greedy and n > 1:  # greedy samples are identical
                gens = [gens[0]] + [
                    Generation(
                        text=gens[0].text, generation_info=dict(gens[0].generation_info or {})
                    )
                    for _ in range(n - 1)
                ]
            completion_tokens += sum(
                (g.generation_info or {}).get("completion_tokens", 0) for g in gens
            )
            generations.append(gens)
        return generations, prompt_tokens, completion_tokens

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        opts = sampling_options(self._default_options(), kwargs, extra_allowed=EXTRA_HF_KWARGS)
        stops = merge_stop(self.stop, stop)
        generations: list[list[Generation]] = []
        prompt_tokens = completion_tokens = 0
        with self._lock:
            self.load()
            bs = max(1, int(self.batch_size))
            for i in range(0, len(prompts), bs):
                gens, p_tok, c_tok = self._generate_chunk(prompts[i : i + bs], opts, stops)
                generations.extend(gens)
                prompt_tokens += p_tok
                completion_tokens += c_tok
        return LLMResult(
            generations=generations,
            llm_output=make_llm_output(
                model_name=self.model_name,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            ),
        )
