"""Mutual verification: the discriminator subgraph and the final answer selection.

For every candidate trajectory the subgraph cuts the trajectory at ``num_masks`` points
between ``mask_low`` and ``mask_high`` of its length, gives each prefix to the discriminator
model after the question, and lets it complete the rest. A candidate whose completions reach
its answer often enough (``consistency`` mode) is *mutually consistent* (it survives). If
the top answer is already surer than ``skip_threshold`` verification is skipped (with the
reference's final rules, its confidence is the reference's: answer-confidence-weighted copies
over all copies; with ``fast``'s, the generator majority's).

Two settings of every rule, chosen by :class:`~langchain_rstar.config.RStarConfig` fields
(``paper`` defaults, ``fast`` values in :data:`~langchain_rstar.config.FAST_PROFILE`):

* masking (``mask_unit``, ``mask_cuts``): ``paper`` cuts the candidate's solution text at
  20/30/40/50% of its *words*, each position rounded up, always four prefixes (duplicates
  kept), as the reference's ``mask_solution_trace`` does; ``fast`` cuts at whole steps,
  rounded, distinct cuts only.
* the question shown (``verify_question``): the user's question (``paper``: the reference
  gives its discriminator the problem, never a rephrasing) or the path's last rephrasing.
* copies (``verify_dedupe``): ``paper`` verifies each distinct solution text once and counts
  its copies (a candidate's ``frequency``, 1 when absent), like the reference's grouping of
  identical traces; ``fast`` verifies every candidate.
* the final pick (``final_score``). The reference code (``do_discriminate.py``, gold-answer
  branches ignored: no gold, ever) scores an answer by its share among the survivors plus
  its survival rate (survivors with the answer / candidates with the answer); the share
  weights each copy by its answer confidence (its default ``rc_criteria='reward'``,
  ``"confidence_plus_survival"``) or by 1 (``"frequency_plus_survival"``); with no survivor
  the answer with the largest weight over all candidates wins. The paper's *text* instead
  sums reward x confidence over the survivors (``"reward_x_confidence"``, ``fast``) and keeps
  the generator majority when nothing survives.

The fan-out is LangGraph's ``Send`` (one task per candidate and mask, one superstep); the
scoring is a few sums over the survivors that no library offers, so it is written here.

Graph shape::

    plan --Send per (candidate, mask)--> discriminate -> judge
       \\-> judge (nothing to check)

The subgraph is a node of the controller graph and can also be compiled and run alone on
saved candidates (:func:`verify_candidates`).
"""

from __future__ import annotations

import hashlib
import math
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
from langchain_rstar.config import RStarConfig, top_p_is_costly
from langchain_rstar.errors import BackendDeadError
from langchain_rstar.sampling.sampler import Sampler
from langchain_rstar.sampling.types import SampleCall
from langchain_rstar.search._untraced import InlineRoute, NodeFunc, control_node
from langchain_rstar.search.actions import until_answer
from langchain_rstar.search.candidates import final_answer, weighted_majority
from langchain_rstar.search.state import add_usage, config_from_state

__all__ = [
    "VerifyState",
    "build_verify_graph",
    "verify_candidates",
    "cut_points",
    "masked_prefix",
    "is_consistent",
    "pick_answer",
    "model_label",
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


def cut_points(
    total: int, num_masks: int, low: float, high: float, mode: str = "distinct"
) -> list[int]:
    """Prefix lengths (in units) at which a trajectory of ``total`` units is cut.

    ``mode="ceil"`` (paper): ``num_masks`` fractions ``low + i * (high - low) / (num_masks -
    1)`` (just ``low`` for one mask), each ``ceil(total * fraction)``; always ``num_masks``
    cuts, duplicates kept (3 units at 0.2..0.5 -> ``[1, 1, 2, 2]``). The product is rounded
    to 9 decimals first so that float error (``10 * 0.30000000000000004``) cannot push a
    whole number up.

    ``mode="distinct"`` (fast): fractions spread evenly over ``[low, high]`` (the middle
    for one mask), rounded, kept below ``total`` so the discriminator never sees the final
    step, duplicates merged.
    """
    if mode == "ceil":
        if num_masks == 1:
            fractions = [low]
        else:
            fractions = [low + i * (high - low) / (num_masks - 1) for i in range(num_masks)]
        size = max(total, 0)
        return [min(math.ceil(round(size * f, 9)), size) for f in fractions]
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
    """The masked prefixes of one candidate: ``[{cut, total, prefix}]``.

    ``question`` is not part of the prefix (the discriminator's prompt puts the question
    before it); it is accepted so that callers can pass what the prompt will hold.
    """
    units = _units(candidate, config.mask_unit)
    total = len(units)
    out = []
    cuts = cut_points(total, config.num_masks, config.mask_low, config.mask_high, config.mask_cuts)
    for cut in cuts:
        prefix = "".join(units[:cut])
        if config.mask_unit == "step":
            # Cue the next step so the discriminator continues the trajectory's format.
            prefix += f"Step {cut + 1}:"
        elif config.mask_cuts == "ceil":
            # Words joined as the reference joins them: no trailing blank after the last one.
            prefix = prefix.rstrip(" \t")
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


def _question_of(candidate: Mapping[str, Any], question: str, cfg: RStarConfig) -> str:
    if cfg.verify_question == "original":
        return question
    return P.path_question(question, candidate.get("trajectory") or [])


def _count(candidate: Mapping[str, Any]) -> int:
    """How many copies of this trajectory the candidate pool holds (1 when not said)."""
    try:
        return max(int(candidate.get("frequency") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _eligible(candidate: Mapping[str, Any], cfg: RStarConfig) -> bool:
    answer = candidate.get("answer")
    if answer is None:
        return False
    limit = cfg.verify_max_answer_chars
    return limit is None or len(str(answer)) <= limit


def _groups(candidates: Sequence[Mapping[str, Any]], cfg: RStarConfig) -> list[list[int]]:
    """The candidates to verify, as groups of indices (the first of a group is checked).

    With ``verify_dedupe`` candidates with the same solution text form one group; without,
    every candidate is a group of its own. At most ``max_candidates`` groups (best first).
    """
    groups: list[list[int]] = []
    seen: dict[str, int] = {}
    for ci, cand in enumerate(candidates):
        if not _eligible(cand, cfg):
            continue
        if cfg.verify_dedupe:
            key = "\n".join(P.path_lines(cand.get("trajectory") or []))
            index = seen.get(key)
            if index is not None:
                groups[index].append(ci)
                continue
            seen[key] = len(groups)
        groups.append([ci])
    if cfg.max_candidates is not None:
        groups = groups[: cfg.max_candidates]
    return groups


def _copies_and_weight(candidate: Mapping[str, Any], by_confidence: bool) -> tuple[int, float]:
    """A candidate's copies and their weight in the reference's rules: each copy weighs its
    answer confidence (``confidence_plus_survival``) or 1 (``frequency_plus_survival``)."""
    count = _count(candidate)
    return count, count * (float(candidate.get("confidence") or 0.0) if by_confidence else 1.0)


def _skip_confidence(
    candidates: Sequence[Mapping[str, Any]], cfg: RStarConfig, generator_confidence: float
) -> tuple[float, str]:
    """The confidence compared with ``skip_threshold``, and what it is.

    With the reference's final rules it is the reference's: the top answer's weight over all
    candidate copies (each copy weighted by its answer confidence for
    ``confidence_plus_survival``, its default ``rc_criteria='reward'``; by 1 for
    ``frequency_plus_survival``), so a lone candidate whose own votes split is still verified.
    With ``reward_x_confidence`` (``fast``) it is the generator majority's confidence.
    """
    rule = cfg.final_score
    if rule not in ("confidence_plus_survival", "frequency_plus_survival"):
        return generator_confidence, "generator majority"
    checker = get_checker(cfg.task, extraction=cfg.answer_extraction)
    pool = [c for c in candidates if c.get("answer") is not None]
    reps, index_of = _answer_groups(pool, checker)
    weights = [0.0] * len(reps)
    copies = 0
    for cand, gi in zip(pool, index_of, strict=True):
        count, weight = _copies_and_weight(cand, rule == "confidence_plus_survival")
        copies += count
        weights[gi] += weight
    if not copies:
        return 0.0, "candidate confidence"
    what = "reward-weighted" if rule == "confidence_plus_survival" else "frequency"
    return max(weights) / copies, f"top answer's {what} confidence"


def _make_plan(verifier: str, verifier_model: str | None) -> Any:
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
            "verifier": verifier if cfg.verify else None,
            "verifier_model": verifier_model if cfg.verify else None,
            "rule": cfg.final_score,
            "scores": {},
        }
        if not cfg.verify:
            verification.update(skipped=True, reason="verification disabled (verify=False)")
            return {"jobs": [], "verification": verification}
        groups = _groups(candidates, cfg)
        if not groups:
            reason = "no candidates to verify" if not candidates else "no candidate to verify"
            verification.update(fell_back=True, reason=reason)
            return {"jobs": [], "verification": verification}
        skip_conf, skip_what = _skip_confidence(candidates, cfg, gen_conf)
        if skip_conf > cfg.skip_threshold:
            verification.update(
                skipped=True,
                reason=f"{skip_what} {skip_conf:.3f} above skip_threshold {cfg.skip_threshold}",
            )
            return {"jobs": [], "verification": verification}
        jobs: list[dict[str, Any]] = []
        for group in groups:
            ci = group[0]
            cand = candidates[ci]
            for mi, mask in enumerate(masked_prefix(cand, state["question"], cfg)):
                jobs.append(
                    {
                        "candidate": ci,
                        "mask": mi,
                        "node_id": cand["node_id"],
                        "question": _question_of(cand, state["question"], cfg),
                        "config": state.get("config") or {},
                        **mask,
                    }
                )
        verification["ran"] = True
        return {"jobs": jobs, "verification": verification}

    return _plan


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
    if cfg.verify_max_tokens is not None:
        params["max_tokens"] = cfg.verify_max_tokens
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

    costly: list[bool] = []  # whether top-p is costly on this sampler's model (found once)

    def _resolved(job: Mapping[str, Any]) -> RStarConfig:
        # sampling_preset "auto" is resolved for the discriminator's own model, as the
        # action nodes resolve it for the generator's (search/drive.py).
        cfg = _cfg(job)
        if cfg.sampling_preset != "auto":
            return cfg
        if not costly:
            costly.append(top_p_is_costly(sampler.llm))
        return cfg.model_copy(update={"sampling_preset": "fast" if costly[0] else "paper"})

    def _sync(job: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        cfg = _resolved(job)
        try:
            outcome = sampler.sample(_call_for(job, cfg), config)
        except BackendDeadError as exc:
            return _fatal(job, exc)
        return _check_update(job, outcome, get_checker(cfg.task, extraction=cfg.answer_extraction))

    async def _async(job: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        cfg = _resolved(job)
        try:
            outcome = await sampler.asample(_call_for(job, cfg), config)
        except BackendDeadError as exc:
            return _fatal(job, exc)
        return _check_update(job, outcome, get_checker(cfg.task, extraction=cfg.answer_extraction))

    return NodeFunc(_sync, _async, name="discriminate")


def _mask_records(
    checks: Sequence[Mapping[str, Any]], answer: str, checker: AnswerChecker
) -> tuple[list[dict[str, Any]], list[str | None]]:
    masks = []
    all_answers: list[str | None] = []
    for check in checks:
        agree = sum(1 for a in check["answers"] if a is not None and checker.equivalent(a, answer))
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
    return masks, all_answers


def _answer_groups(
    candidates: Sequence[Mapping[str, Any]], checker: AnswerChecker
) -> tuple[list[str], list[int]]:
    """Representative answers (in order of first appearance) and each candidate's group."""
    reps: list[str] = []
    joined: dict[str, int] = {}
    index_of: list[int] = []
    for cand in candidates:
        answer = str(cand["answer"])
        try:
            key = checker.normalize(answer)
        except Exception:  # noqa: BLE001 - unreadable: equivalent to nothing
            key = None
        index = joined.get(key) if key is not None else None
        if index is None:
            for i, rep in enumerate(reps):
                if key is not None and checker.equivalent(rep, answer):
                    index = i
                    break
            else:
                index = len(reps)
                reps.append(answer)
            if key is not None:
                joined[key] = index
        index_of.append(index)
    return reps, index_of


def pick_answer(
    candidates: Sequence[Mapping[str, Any]], rule: str, checker: AnswerChecker
) -> dict[str, Any]:
    """The final pick over verified candidates (``consistent`` set) under ``rule``.

    Args:
        candidates: the verified candidates, each with ``answer``, ``consistent``,
            ``confidence``, ``reward`` and optionally ``frequency`` (copies in the
            generator's pool, default 1).
        rule: a :attr:`RStarConfig.final_score` value.
        checker: groups equivalent answers.

    Returns:
        ``{"answer", "confidence", "scores", "fell_back"}``: ``scores`` maps each surviving
        answer to its score; ``fell_back`` is True when no candidate survived (then
        ``answer`` is None for ``reward_x_confidence``, whose caller keeps the generator
        majority, and the largest-weight answer over all candidates for the others).
        ``confidence`` is the winner's share of the survivors' weight (of all candidates'
        weight after a fall-back).
    """
    pool = [c for c in candidates if c.get("answer") is not None]
    if rule == "reward_x_confidence":
        survivors = [
            {**c, "score": float(c["reward"]) * float(c["confidence"])}
            for c in pool
            if c.get("consistent")
        ]
        ranking = weighted_majority(survivors, checker, weight_key="score")
        scores = {a: w for a, w in ranking}
        answer, confidence = final_answer(survivors, checker, weight_key="score")
        if answer is None or confidence <= 0:
            return {"answer": None, "confidence": 0.0, "scores": scores, "fell_back": True}
        return {"answer": answer, "confidence": confidence, "scores": scores, "fell_back": False}
    if rule not in ("confidence_plus_survival", "frequency_plus_survival"):
        raise ValueError(f"unknown final_score rule {rule!r}")
    by_confidence = rule == "confidence_plus_survival"
    reps, index_of = _answer_groups(pool, checker)
    size = len(reps)
    n_all, n_surv = [0] * size, [0] * size
    w_all, w_surv = [0.0] * size, [0.0] * size
    for cand, gi in zip(pool, index_of, strict=True):
        count, weight = _copies_and_weight(cand, by_confidence)
        n_all[gi] += count
        w_all[gi] += weight
        if cand.get("consistent"):
            n_surv[gi] += count
            w_surv[gi] += weight
    total_surv = sum(n_surv)
    if total_surv == 0:
        if not reps:
            return {"answer": None, "confidence": 0.0, "scores": {}, "fell_back": True}
        # max() keeps the first of equals: ties go to the answer seen first.
        best = max(range(size), key=lambda g: (w_all[g], n_all[g]))
        total_w = sum(w_all)
        share = w_all[best] / total_w if total_w else n_all[best] / sum(n_all)
        return {"answer": reps[best], "confidence": share, "scores": {}, "fell_back": True}
    scores = {
        reps[g]: w_surv[g] / total_surv + n_surv[g] / n_all[g] for g in range(size) if n_surv[g]
    }
    best = max((g for g in range(size) if n_surv[g]), key=lambda g: scores[reps[g]])
    total_w = sum(w_surv)
    share = w_surv[best] / total_w if total_w else n_surv[best] / total_surv
    return {"answer": reps[best], "confidence": share, "scores": scores, "fell_back": False}


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
    verified: list[dict[str, Any]] = []
    for group in _groups(candidates, cfg):
        checks = by_candidate.get(group[0])
        if checks is None:
            continue
        for ci in group:
            cand = candidates[ci]
            masks, all_answers = _mask_records(checks, cand["answer"], checker)
            consistent, share = is_consistent(cand["answer"], all_answers, cfg.consistency, checker)
            cand.update(masks=masks, agreement=share, consistent=consistent, score=0.0)
            verified.append(cand)
    pick = pick_answer(verified, cfg.final_score, checker)
    scores = pick["scores"]
    verification["scores"] = scores
    for cand in verified:
        if not cand["consistent"]:
            continue
        if cfg.final_score == "reward_x_confidence":
            cand["score"] = cand["reward"] * cand["confidence"]
        else:
            for answer, score in scores.items():
                if checker.equivalent(answer, cand["answer"]):
                    cand["score"] = score
                    break
    survivors = sum(_count(c) if cfg.verify_dedupe else 1 for c in verified if c["consistent"])
    checked = sum(_count(c) if cfg.verify_dedupe else 1 for c in verified)
    if not pick["fell_back"]:
        answer, confidence = pick["answer"], pick["confidence"]
        verification["reason"] = f"{survivors} of {checked} verified candidates mutually consistent"
    elif pick["answer"] is not None:
        answer, confidence = pick["answer"], pick["confidence"]
        verification["fell_back"] = True
        weight = "confidence-weighted" if cfg.final_score.startswith("confidence") else "most"
        verification["reason"] = (
            f"no candidate was mutually consistent; the {weight} frequent answer of the "
            f"{checked} verified candidates kept"
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


def build_verify_graph(
    discriminator: Sampler,
    *,
    checkpointer: Any = None,
    verifier: str = "discriminator",
    verifier_model: str | None = None,
) -> Any:
    """Compile the verification subgraph for a discriminator sampler.

    ``verifier`` (``"generator"`` or ``"discriminator"``) and ``verifier_model`` (a model
    name) are reported in the result's ``verification``.
    """
    builder = StateGraph(
        VerifyState,
        context_schema=RStarConfig,
        input_schema=VerifyInput,
        output_schema=VerifyOutput,
    )
    builder.add_node("plan", control_node(_make_plan(verifier, verifier_model), "plan"))
    builder.add_node("discriminate", _discriminate_node(discriminator))
    builder.add_node("judge", control_node(_judge, "judge"))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", InlineRoute(_route), ["discriminate", "judge"])
    builder.add_edge("discriminate", "judge")
    builder.add_edge("judge", END)
    return builder.compile(checkpointer=checkpointer, name="verify")


def model_label(llm: Any) -> str:
    """A short name of a LangChain model for reports: its model name, else its class."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


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
    graph = build_verify_graph(sampler, verifier_model=model_label(discriminator))
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
