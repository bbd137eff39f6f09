"""Top-k, then top-p inside the top-k shortlist: one technique, both local backends.

vLLM's CPU sampler and ``transformers``' ``TopPLogitsWarper`` both sort the whole vocabulary
for every sampled token once top-p is set; on Gemma's 262,144-token vocabulary on a CPU
that makes decoding several times slower. With top-k set, top-p only ever keeps tokens of
the top-k shortlist, so it can be computed on the ``k`` largest logits alone:
:func:`shortlist_top_k_top_p` keeps exactly the tokens vLLM's ``apply_top_k_top_p_pytorch``
keeps (top-k first, then top-p on the renormalised top-k distribution), in O(V) per row.
Two thin adapters apply it:

* :class:`HFShortlistTopKTopP`, a ``transformers`` logits processor for
  :class:`~langchain_rstar.llms.TransformersLLM` (``shortlist_top_p``, on by default): it
  keeps the tokens that ``transformers``' temperature, top-k and top-p warpers keep.
* ``ShortlistTopP``, a vLLM v1 logits processor for :class:`~langchain_rstar.llms.VLLMEngine`
  (``shortlist_top_p``, on by default on CPU), applied to the requests that ask for it
  through ``SamplingParams.extra_args[EXTRA_KEY] = {"top_k": k, "top_p": p}`` (with vLLM's
  own ``top_k``/``top_p`` left off, so nothing sorts the vocabulary). vLLM loads it by
  name (:data:`FQCN`); the class is built on first access (module ``__getattr__``) so that
  the ``transformers`` backend can use this module without importing vLLM.

Written by hand: neither library offers a top-p that avoids the full sort. This module
imports ``torch``: backends import it only when the shortlist is on.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

# ``ShortlistTopP`` is built on first access (see ``__getattr__``), so it is not listed here.
__all__ = ["EXTRA_KEY", "FQCN", "HFShortlistTopKTopP", "shortlist_top_k_top_p"]

EXTRA_KEY = "rstar_shortlist"
"""``SamplingParams.extra_args`` key of a request's ``{"top_k": k, "top_p": p}``."""

FQCN = "langchain_rstar.llms._shortlist:ShortlistTopP"
"""The vLLM processor as vLLM's ``logits_processors`` entry (loaded in the engine process)."""


def shortlist_top_k_top_p(logits: torch.Tensor, k: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mask ``logits`` in place to top-k, then top-p of the renormalised top-k set.

    Args:
        logits: ``[batch, vocab]`` float logits (temperature already applied).
        k: ``[batch]`` top-k per row (clamped to ``[1, vocab]``).
        p: ``[batch]`` top-p per row (``>= 1``: top-k only).

    Returns:
        ``logits``, with the dropped tokens set to ``-inf``.
    """
    vocab = logits.shape[1]
    k = k.to(device=logits.device, dtype=torch.long).clamp(min=1, max=vocab)
    p = p.to(logits.device)
    max_k = int(k.max())
    values = logits.topk(max_k, dim=1).values  # descending
    ranks = torch.arange(max_k, device=logits.device).unsqueeze(0)
    in_k = ranks < k.unsqueeze(1)
    values = values.masked_fill(~in_k, -float("inf"))
    probs = values.float().softmax(dim=-1)
    # vLLM drops a token when the mass of it and everything below it is at most 1 - p,
    # i.e. keeps it while the mass strictly above it is below p.
    tail = probs.flip(-1).cumsum(-1).flip(-1)
    keep = tail > (1 - p.to(probs.dtype)).unsqueeze(1)
    keep[:, 0] = True
    keep |= (p >= 1).unsqueeze(1) & in_k
    keep &= in_k
    last = keep.sum(dim=1, keepdim=True) - 1
    threshold = values.gather(1, last)  # the smallest kept logit of each row
    return logits.masked_fill_(logits < threshold, -float("inf"))


class HFShortlistTopKTopP:
    """``transformers`` logits processor: top-k, then top-p of the top-k set at temperature.

    ``generate`` runs a user's ``logits_processor`` list *before* its own sampling warpers
    (temperature, top-k, top-p, min-p), so this processor computes the top-p mass at
    ``temperature`` itself and only masks dropped tokens to ``-inf``; the temperature
    warper then scales what is left. The kept set equals what ``transformers``'
    ``TemperatureLogitsWarper`` -> ``TopKLogitsWarper`` -> ``TopPLogitsWarper`` keep (its
    own top-k and top-p must be switched off: ``top_k=0``, ``top_p=1.0``), and a min-p
    warper after it sees the same logits as after those.

    Args:
        top_k: Shortlist size (``>= 1``).
        top_p: Nucleus threshold in ``(0, 1]``.
        temperature: The sampling temperature (``> 0``).
    """

    def __init__(self, top_k: int, top_p: float, temperature: float) -> None:
        if top_k < 1 or not 0.0 < top_p <= 1.0 or not temperature > 0.0:
            raise ValueError(
                f"need top_k >= 1, 0 < top_p <= 1, temperature > 0; got "
                f"{top_k}, {top_p}, {temperature}"
            )
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.temperature = float(temperature)

    def __call__(self, input_ids: Any, scores: torch.Tensor) -> torch.Tensor:
        rows = scores.shape[0]
        k = torch.full((rows,), self.top_k, dtype=torch.long)
        p = torch.full((rows,), self.top_p, dtype=torch.float32)
        kept = shortlist_top_k_top_p(scores.float() / self.temperature, k, p)
        return scores.masked_fill(kept == -float("inf"), -float("inf"))


@functools.cache
def _vllm_processor() -> type:
    """Build the vLLM v1 logits processor class (imports vLLM, once)."""
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor

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

    ShortlistTopP.__module__ = __name__
    ShortlistTopP.__qualname__ = "ShortlistTopP"
    return ShortlistTopP


def __getattr__(name: str) -> Any:
    if name == "ShortlistTopP":
        return _vllm_processor()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
