"""Top-p inside the top-k shortlist: vLLM's sampling filters at top-k cost.

vLLM's sampler applies ``top_k`` alone with ``torch.topk``, but once a request sets
``top_p`` it sorts the whole vocabulary for every sampled token. On Gemma's 262,144-token
vocabulary on a CPU that makes decoding several times slower. With ``top_k`` set, top-p only
ever keeps tokens of the top-k shortlist, so it can be computed on the ``k`` largest logits
alone: :func:`shortlist_top_k_top_p` keeps exactly the tokens vLLM's
``apply_top_k_top_p_pytorch`` keeps (top-k first, then top-p on the renormalised top-k
distribution), in O(V) per row.

:class:`ShortlistTopP` is the vLLM v1 logits processor that applies it to the requests that
ask for it through ``SamplingParams.extra_args[EXTRA_KEY] = {"top_k": k, "top_p": p}`` (with
vLLM's own ``top_k``/``top_p`` left off, so nothing sorts the vocabulary).
:class:`~langchain_rstar.llms.VLLMEngine` registers it and rewrites requests for you
(``shortlist_top_p``, on by default on CPU).

This module imports ``torch`` and ``vllm``: import it only where vLLM is installed.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor

from langchain_rstar.llms._topk_topp import shortlist_top_k_top_p

__all__ = ["EXTRA_KEY", "FQCN", "ShortlistTopP", "shortlist_top_k_top_p"]

EXTRA_KEY = "rstar_shortlist"
"""``SamplingParams.extra_args`` key of a request's ``{"top_k": k, "top_p": p}``."""

FQCN = "langchain_rstar.llms._shortlist:ShortlistTopP"
"""The processor as vLLM's ``logits_processors`` entry (loaded in the engine process)."""


class ShortlistTopP(LogitsProcessor):
    """vLLM v1 logits processor: top-k, then top-p inside the top-k shortlist.

    Argmax-invariant (the top token is always kept), so vLLM applies it after
    temperature and only to randomly sampled rows, where its own top-k/top-p would run.
    Register it with ``LLM(..., logits_processors=[FQCN])``.
    """

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, tuple[int, float]] = {}
        self.device = device

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Reject malformed specs when the request is added."""
        spec = (getattr(sampling_params, "extra_args", None) or {}).get(EXTRA_KEY)
        if spec is None:
            return
        try:
            k, p = int(spec["top_k"]), float(spec["top_p"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad {EXTRA_KEY} spec {spec!r}") from exc
        if k < 1 or not 0.0 < p <= 1.0:
            raise ValueError(f"bad {EXTRA_KEY} spec {spec!r}: need top_k >= 1, 0 < top_p <= 1")

    def is_argmax_invariant(self) -> bool:
        """The top token always survives, so greedy rows skip this processor."""
        return True

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        """Track which batch rows carry a spec as requests join, leave and move."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.rows.pop(index, None)
        for index, params, _prompt, _out in batch_update.added:
            spec = (getattr(params, "extra_args", None) or {}).get(EXTRA_KEY)
            if spec is None:
                self.rows.pop(index, None)
            else:
                self.rows[index] = (int(spec["top_k"]), float(spec["top_p"]))
        for a, b, direction in batch_update.moved:
            ra, rb = self.rows.pop(a, None), self.rows.pop(b, None)
            if ra is not None:
                self.rows[b] = ra
            if rb is not None and direction.name == "SWAP":
                self.rows[a] = rb

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask the rows that asked for the shortlist filter."""
        if not self.rows:
            return logits
        index = torch.tensor(sorted(self.rows), dtype=torch.long)
        index = index[index < logits.shape[0]]
        if index.numel() == 0:
            return logits
        ks = torch.tensor([self.rows[int(i)][0] for i in index], dtype=torch.long)
        ps = torch.tensor([self.rows[int(i)][1] for i in index], dtype=torch.float32)
        if index.numel() == logits.shape[0]:
            return shortlist_top_k_top_p(logits, ks, ps)
        index = index.to(logits.device)
        logits[index] = shortlist_top_k_top_p(logits[index], ks, ps)
        return logits
