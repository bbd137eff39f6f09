"""Top-k, then top-p inside the top-k shortlist, in O(V) per row (no vocabulary sort).

Both vLLM's CPU sampler and ``transformers``' ``TopPLogitsWarper`` sort the whole
vocabulary for every sampled token once top-p is set; on Gemma's 262,144-token vocabulary on
a CPU that makes decoding several times slower. With top-k set, top-p only ever keeps
tokens of the top-k shortlist, so it can be computed on the ``k`` largest logits alone.

* :func:`shortlist_top_k_top_p` keeps exactly the tokens vLLM's
  ``apply_top_k_top_p_pytorch`` keeps (used by the vLLM processor in
  :mod:`langchain_rstar.llms._shortlist`).
* :class:`HFShortlistTopKTopP` is the same filter as a ``transformers`` logits processor
  for :class:`~langchain_rstar.llms.TransformersLLM`: it keeps the tokens that
  ``transformers``' temperature, top-k and top-p warpers keep.

This module needs only ``torch``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["HFShortlistTopKTopP", "shortlist_top_k_top_p"]


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
