"""Mutual verification: the discriminator subgraph and the final answer selection.

For every candidate trajectory the subgraph cuts the trajectory at ``num_masks`` points
between ``mask_low`` and ``mask_high`` of its length (by step or by word), gives each
prefix to the discriminator model with the question, and lets it complete the rest. A
candidate whose completions reach its answer often enough (``consistency`` mode) is
*mutually consistent*; its score is its search reward times its answer confidence, summed
per answer; the highest answer wins. If no candidate is consistent the generator's weighted
majority stands and the result says so; if the generator majority is already above
``skip_threshold`` verification is skipped.

Graph shape::

    plan --Send per (candidate, mask)--> discriminate -> judge
       \\-> judge (nothing to check)

The subgraph is a node of the controller graph and can also be compiled and run alone on
saved candidates (:func:`verify_candidates`).
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from langchain_rstar import prompts as P
from langchain_rstar.answers import AnswerChecker, get_checker, majority_vote
from langchain_rstar.config import RStarConfig
from langchain_rstar.errors import BackendDeadError
from langchain_rstar.sampling.sampler import Sampler
from langchain_rstar.sampling.types import SampleCall
from langchain_rstar.search._untraced import InlineRoute, NodeFunc, control_node
from langchain_rstar.search.actions import until_answer
from langchain_rstar.search.candidates import final_answer
from langchain_rstar.search.state import add_usage, config_from_state

__all__ = [
    "VerifyState",
    "build_verify_graph",
    "verify_candidates",
    "cut_points",
    "masked_prefix",
    "is_consistent",
]


class VerifyInput(TypedDict, total=False):
    """What the verification subgraph reads."""

    question: str
    config: dict[str, Any]
    candidates: list[dict[str, Any]]
    verification: dict[str, Any]
    answer: str | None
    confidence: float


class VerifyOutput(TypedDict, total=False):
    """What the verification subgraph returns to its parent."""

    candidates: list[dict[str, Any]]
    verification: dict[str, Any]
    answer: str | None
    confidence: float
    usage: dict[str, float]
    intervals: list[list[float]]
    errors: list[dict[str, Any]]


class VerifyState(TypedDict, total=False):
    """State of the verification subgraph."""

    question: str
    config: dict[str, Any]
    candidates: list[dict[str, Any]]
    verification: dict[str, Any]
    answer: str | None
    confidence: float
    jobs: list[dict[str, Any]]
    checks: Annotated[list[dict[str, Any]], operator.add]
    usage: Annotated[dict[str, float], add_usage]
    intervals: Annotated[list[list[float]], operator.add]
    errors: Annotated[list[dict[str, Any]], operator.add]


def cut_points(total: int, num_masks: int, low: float, high: float) -> list[int]:
    """Distinct prefix lengths (in units) at which a trajectory of ``total`` units is cut.

    Points are spread evenly over ``[low, high]`` of the length, rounded, and kept below
    ``total`` so the discriminator never sees the candidate's final step.
    """
    if total <= 0:
        return [0]
    if num_masks == 1:
        fractions = [(low + high) / 2]
    else:
        fractions = [low + (high - low) * i / (num_masks - 1) for i in range(num_masks)]
    cuts = sorted({min(max(int(round(total * f)), 0), total - 1) for f in fractions})
    return cuts


_WORD = re.compile(r"\S+\s*")


def _units(candidate: Mapping[str, Any], unit: str) -> list[str]:
    lines = P.path_lines(candidate.get("trajectory") or [])
    if unit == "step":
        return [line + "\n" for line in lines]
    return _WORD.findall("".join(line + "\n" for line in lines))


def masked_prefix(
    candidate: Mapping[str, Any], question: str, config: RStarConfig
) -> list[dict[str, Any]]:
    """The masked prefixes of one candidate: ``[{cut, total, prefix}]``."""
    units = _units(candidate, config.mask_unit)
    total = len(units)
    out = []
    for cut in cut_points(total, config.num_masks, config.mask_low, config.mask_high):
        prefix = "".join(units[:cut])
        if config.mask_unit == "step":
            # Cue the next step so the discriminator continues the trajectory's format.
            prefix += f"Step {cut + 1}:"
        out.append({"cut": cut, "total": total, "prefix": prefix})
    return out


def is_consistent(
    answer: str, completion_answers: Sequence[str | None], mode: str, checker: AnswerChecker
) -> tuple[bool, float]:
    """Whether completions agree with ``answer`` under ``mode``; also the agreement share."""
    total = len(completion_answers)
    agree = sum(1 for a in completion_answers if a is not None and checker.equivalent(a, answer))
    share = agree / total if total else 0.0
    if total == 0:
        return False, 0.0
    if mode == "loose":
        return agree > 0, share
    if mode == "strict":
        return agree == total, share
    if mode == "maj":
        vote = majority_vote(list(completion_answers), checker)
        return vote.answer is not None and checker.equivalent(vote.answer, answer), share
    return share >= 0.5, share


def _question_of(candidate: Mapping[str, Any], question: str) -> str:
    return P.path_question(question, candidate.get("trajectory") or [])


def _plan(state: VerifyState) -> dict[str, Any]:
    cfg = _cfg(state)
    candidates = list(state.get("candidates") or [])
    previous = dict(state.get("verification") or {})
    gen_answer = previous.get("generator_answer", state.get("answer"))
    gen_conf = float(previous.get("generator_confidence", state.get("confidence") or 0.0))
    verification = {
        "mode": cfg.consistency,
        "ran": False,
        "skipped": False,
        "fell_back": False,
        "reason": "",
        "generator_answer": gen_answer,
        "generator_confidence": gen_conf,
    }
    if not cfg.verify:
        verification.update(skipped=True, reason="verification disabled (verify=False)")
        return {"jobs": [], "verification": verification}
    if not candidates:
        verification.update(fell_back=True, reason="no candidates to verify")
        return {"jobs": [], "verification": verification}
    if gen_conf > cfg.skip_threshold:
        verification.update(
            skipped=True,
            reason=f"generator majority {gen_conf:.3f} above skip_threshold {cfg.skip_threshold}",
        )
        return {"jobs": [], "verification": verification}
    limit = cfg.max_candidates or len(candidates)
    jobs: list[dict[str, Any]] = []
    for ci, cand in enumerate(candidates[:limit]):
        for mi, mask in enumerate(masked_prefix(cand, state["question"], cfg)):
            jobs.append(
                {
                    "candidate": ci,
                    "mask": mi,
                    "node_id": cand["node_id"],
                    "question": _question_of(cand, state["question"]),
                    "config": state.get("config") or {},
                    **mask,
                }
            )
    verification["ran"] = True
    return {"jobs": jobs, "verification": verification}


def _route(state: VerifyState) -> list[Send] | str:
    jobs = state.get("jobs") or []
    return [Send("discriminate", job) for job in jobs] or "judge"


def _cfg(state: Mapping[str, Any]) -> RStarConfig:
    return config_from_state(state.get("config"))


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _call_for(job: Mapping[str, Any], cfg: RStarConfig) -> SampleCall:
    params = cfg.sampling_kwargs()
    params["temperature"] = cfg.verify_temperature
    seed = None if cfg.seed is None else _stable_seed(cfg.seed, job["node_id"], job["cut"])
    return SampleCall(
        prompts=[
            P.completion_prompt(
                cfg.task, job["question"], job["prefix"], exemplar_set=cfg.exemplar_set
            )
        ],
        n=cfg.num_completions,
        stop=P.STOP_BLOCK,
        role="discriminator",
        params=params,
        seed=seed,
        run_name="discriminator",
        metadata={
            "rstar_candidate": job["candidate"],
            "rstar_node_id": job["node_id"],
            "rstar_mask": job["mask"],
            "rstar_cut": job["cut"],
        },
    )


def _check_update(job: Mapping[str, Any], outcome: Any, checker: AnswerChecker) -> dict[str, Any]:
    texts = outcome.texts[0] if outcome.texts else None
    completions = [until_answer(t) for t in texts or []]
    answers = [checker.extract(c) for c in completions]
    check = {
        "candidate": job["candidate"],
        "mask": job["mask"],
        "cut": job["cut"],
        "total": job["total"],
        "prefix": job["prefix"],
        "completions": completions,
        "answers": answers,
        "error": outcome.errors[-1]["error"] if texts is None and outcome.errors else None,
    }
    errors = [{**e, "node_id": job["node_id"], "action": "verify"} for e in outcome.errors]
    return {
        "checks": [check],
        "usage": outcome.usage,
        "intervals": outcome.intervals,
        "errors": errors,
    }


def _discriminate_node(sampler: Sampler) -> NodeFunc:
    def _fatal(job: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
        return {
            "checks": [],
            "errors": [
                {
                    "kind": "backend_dead",
                    "role": "discriminator",
                    "error": f"{type(exc).__name__}: {exc}",
                    "node_id": job["node_id"],
                    "action": "verify",
                }
            ],
        }

    def _sync(job: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        cfg = _cfg(job)
        try:
            outcome = sampler.sample(_call_for(job, cfg), config)
        except BackendDeadError as exc:
            return _fatal(job, exc)
        return _check_update(job, outcome, get_checker(cfg.task, extraction=cfg.answer_extraction))

    async def _async(job: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        cfg = _cfg(job)
        try:
            outcome = await sampler.asample(_call_for(job, cfg), config)
        except BackendDeadError as exc:
            return _fatal(job, exc)
        return _check_update(job, outcome, get_checker(cfg.task, extraction=cfg.answer_extraction))

    return NodeFunc(_sync, _async, name="discriminate")


def _judge(state: VerifyState) -> dict[str, Any]:
    cfg = _cfg(state)
    checker = get_checker(cfg.task, extraction=cfg.answer_extraction)
    candidates = [dict(c) for c in state.get("candidates") or []]
    verification = dict(state.get("verification") or {})
    if not verification.get("ran"):
        return {"candidates": candidates, "verification": verification}
    by_candidate: dict[int, list[dict[str, Any]]] = {}
    for check in sorted(state.get("checks") or [], key=lambda c: (c["candidate"], c["mask"])):
        by_candidate.setdefault(check["candidate"], []).append(check)
    for ci, cand in enumerate(candidates):
        checks = by_candidate.get(ci)
        if checks is None:
            continue
        all_answers: list[str | None] = []
        masks = []
        for check in checks:
            agree = sum(
                1
                for a in check["answers"]
                if a is not None and checker.equivalent(a, cand["answer"])
            )
            masks.append(
                {
                    "cut": check["cut"],
                    "total": check["total"],
                    "prefix": check["prefix"],
                    "completions": check["completions"],
                    "answers": check["answers"],
                    "agree": agree,
                    "error": check.get("error"),
                }
            )
            all_answers.extend(check["answers"])
        consistent, share = is_consistent(cand["answer"], all_answers, cfg.consistency, checker)
        cand.update(
            masks=masks,
            agreement=share,
            consistent=consistent,
            score=cand["reward"] * cand["confidence"] if consistent else 0.0,
        )
    survivors = [c for c in candidates if c.get("consistent")]
    answer, confidence = final_answer(survivors, checker, weight_key="score")
    if answer is not None and confidence > 0:
        verification["reason"] = (
            f"{len(survivors)} of {len(by_candidate)} verified candidates mutually consistent"
        )
    else:
        answer = verification.get("generator_answer")
        confidence = float(verification.get("generator_confidence") or 0.0)
        verification["fell_back"] = True
        verification["reason"] = "no candidate was mutually consistent; generator majority kept"
    return {
        "candidates": candidates,
        "verification": verification,
        "answer": answer,
        "confidence": confidence,
    }


def build_verify_graph(discriminator: Sampler, *, checkpointer: Any = None) -> Any:
    """Compile the verification subgraph for a discriminator sampler."""
    builder = StateGraph(VerifyState, input_schema=VerifyInput, output_schema=VerifyOutput)
    builder.add_node("plan", control_node(_plan, "plan"))
    builder.add_node("discriminate", _discriminate_node(discriminator))
    builder.add_node("judge", control_node(_judge, "judge"))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", InlineRoute(_route), ["discriminate", "judge"])
    builder.add_edge("discriminate", "judge")
    builder.add_edge("judge", END)
    return builder.compile(checkpointer=checkpointer, name="verify")


def verify_candidates(
    question: str,
    candidates: Sequence[Mapping[str, Any]],
    discriminator: BaseLanguageModel,
    config: RStarConfig | None = None,
    *,
    generator_answer: str | None = None,
    generator_confidence: float = 0.0,
    runnable_config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """Re-verify saved candidates (e.g. ``RStarResult.candidates``) with a discriminator.

    Args:
        question: the question the candidates answer.
        candidates: candidate dicts (``Candidate.model_dump()`` or the graph's records).
        discriminator: any LangChain LLM or chat model.
        config: the search config (masking and consistency settings).
        generator_answer: the generator's majority answer (kept if nothing is consistent).
        generator_confidence: its confidence (compared with ``skip_threshold``).
        runnable_config: LangChain config (callbacks, tags) for the run.

    Returns:
        ``{"candidates", "verification", "answer", "confidence", "usage", "errors"}``.
    """
    cfg = config or RStarConfig()
    if generator_answer is None and candidates:
        generator_answer, generator_confidence = final_answer(
            candidates, get_checker(cfg.task, extraction=cfg.answer_extraction)
        )
    sampler = Sampler(
        discriminator,
        max_retries=cfg.max_retries,
        retry_backoff=cfg.retry_backoff,
        call_timeout=cfg.call_timeout,
    )
    graph = build_verify_graph(sampler)
    out = graph.invoke(
        {
            "question": question,
            "config": cfg.model_dump(),
            "candidates": [dict(c) for c in candidates],
            "verification": {
                "generator_answer": generator_answer,
                "generator_confidence": generator_confidence,
            },
            "answer": generator_answer,
            "confidence": generator_confidence,
        },
        runnable_config,
    )
    return dict(out)
