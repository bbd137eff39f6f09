"""The graph's last node: the public :class:`~langchain_rstar.result.RStarResult`, built
inside the graph from its final state.

LangGraph's own agents build their structured response in a final node (``create_react_agent``'s
``generate_structured_response``); doing the same here means every caller of the graph (the
chain, ``graphs/rstar.py`` on LangGraph Server, Studio, direct ``graph.invoke``) gets the
same result from one mapping instead of each re-implementing it. The result goes into the
state as JSON-ready data (``result``), so checkpointers store it without pickling a class;
:meth:`RStarResult.model_validate` turns it back into the model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langchain_rstar.result import Candidate, RStarResult, Step, Usage, Verification
from langchain_rstar.sampling.sampler import backend_dead_errors
from langchain_rstar.search.candidates import checker_for, winning_candidate
from langchain_rstar.search.state import ROOT_ID, RStarState, config_from_state

__all__ = ["finish", "result_from_state"]


def finish(state: RStarState) -> dict[str, Any]:
    """Graph node: put the result (as JSON-ready data) in the state's ``result`` channel.

    ``wall_seconds`` counts from the moment the search started (``started``, set by
    ``init``); a search resumed from a checkpoint counts from its first start.
    """
    cfg = config_from_state(state.get("config"))
    elapsed = max(time.time() - float(state.get("started") or time.time()), 0.0)
    result = result_from_state(state, elapsed, cfg.task, cfg.answer_extraction)
    return {"result": result.model_dump(mode="json")}


def result_from_state(
    values: Mapping[str, Any],
    wall_seconds: float,
    task: str = "arithmetic",
    answer_extraction: str = "marker",
) -> RStarResult:
    """The public result of a search's final state."""
    nodes: dict[str, Any] = dict(values.get("nodes") or {})
    candidates = [Candidate.model_validate(c) for c in values.get("candidates") or []]
    answer = values.get("answer")
    best = winning_candidate(candidates, answer, checker_for(task, answer_extraction))
    trajectory: list[Step] = best.trajectory if best is not None else []
    usage_raw = values.get("usage") or {}
    busy = _union_seconds(values.get("intervals") or [])
    usage = Usage(
        llm_calls=int(usage_raw.get("llm_calls", 0)),
        batches=int(usage_raw.get("batches", 0)),
        prompts=int(usage_raw.get("prompts", 0)),
        samples=int(usage_raw.get("samples", 0)),
        prompt_tokens=int(usage_raw.get("prompt_tokens", 0)),
        cached_prompt_tokens=int(usage_raw.get("cached_prompt_tokens", 0)),
        completion_tokens=int(usage_raw.get("completion_tokens", 0)),
        tokens_estimated=bool(usage_raw.get("tokens_estimated", 0)),
        wall_seconds=wall_seconds,
        model_seconds=busy,
        framework_seconds=max(wall_seconds - busy, 0.0),
        rollouts=int(usage_raw.get("rollouts", 0)),
        nodes=len(nodes),
        failed_calls=int(usage_raw.get("failed_calls", 0)),
        repetitions_trimmed=int(usage_raw.get("repetitions_trimmed", 0)),
    )
    verification = Verification.model_validate(values.get("verification") or {})
    question = values.get("question") or nodes.get(ROOT_ID, {}).get("text", "")
    errors = list(values.get("errors") or [])
    stop_reason = values.get("stop_reason") or "budget"
    if backend_dead_errors(errors):
        stop_reason = "backend_dead"
    return RStarResult(
        question=question,
        answer=answer,
        confidence=float(values.get("confidence") or 0.0),
        trajectory=trajectory,
        candidates=candidates,
        tree=nodes,
        usage=usage,
        verification=verification,
        errors=errors,
        stop_reason=stop_reason,
        limits_hit=list(values.get("limits_hit") or []),
    )


def _union_seconds(intervals: list[list[float]]) -> float:
    """Total length of the union of ``[start, end]`` intervals."""
    total = 0.0
    cur_start: float | None = None
    cur_end = 0.0
    for start, end in sorted((float(a), float(b)) for a, b in intervals):
        if cur_start is None or start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total
