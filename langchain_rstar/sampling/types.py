"""The request and reply of one sampling call: what the search asks the sampler for.

Plain dataclasses with no behaviour, so that the action generators (``search/actions.py``),
the baselines and the sampler share one vocabulary without importing the sampler itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SampleCall", "SampleOutcome"]


@dataclass
class SampleCall:
    """A request for ``n`` samples of each prompt, all with the same parameters.

    Attributes:
        prompts: the prompts.
        n: samples per prompt.
        stop: stop strings.
        role: ``generator`` or ``discriminator`` (which model answers).
        params: sampling parameters (temperature, top_k, top_p, min_p, max_tokens).
        seed: sampling seed for this call (None: unseeded).
        run_name: name of the LLM run in traces.
        metadata: metadata attached to the LLM run.
        cache: whether the samples may come from, and go to, the search's
            :class:`VoteCache` (off by default: callers that want independent draws of one
            prompt, such as self-consistency baselines, keep it off).
        deadline: epoch seconds after which the call is not worth waiting for (the search's
            ``max_wall_seconds``): the sampler abandons it then, records a ``wall_limit``
            error (not a backend failure) and sends nothing once it has passed. None: none.
    """

    prompts: list[str]
    n: int
    stop: list[str]
    role: str = "generator"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    run_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cache: bool = False
    deadline: float | None = None


@dataclass
class SampleOutcome:
    """Samples of a :class:`SampleCall`: ``texts[i]`` is None when prompt i failed."""

    texts: list[list[str] | None]
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    intervals: list[list[float]] = field(default_factory=list)
