"""The five rStar actions: prompt building, sampling requests, parsing, voting.

Each action is written once, as a generator that *yields* :class:`SampleCall` requests and
receives :class:`SampleOutcome` answers (no I/O here). The graph drives the same generator
synchronously or asynchronously. An action returns the child node records it creates.

* A1 ``one_step_thought``: propose the next single reasoning step.
* A2 ``direct_answer``: write the remaining steps to the end; the answer is the majority of
  ``num_votes`` samples (terminal).
* A3 ``subquestion``: propose the next sub-question and answer it by majority vote.
* A4 ``reanswer``: answer the last sub-question again, step by step, by majority vote.
* A5 ``rephrase``: restate the question as a list of conditions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict

from langchain_rstar import prompts as P
from langchain_rstar.answers import AnswerChecker, majority_vote
from langchain_rstar.config import RStarConfig
from langchain_rstar.result import NodeRecord
from langchain_rstar.sampling.types import SampleCall, SampleOutcome

__all__ = [
    "ACTIONS",
    "ACTION_SPECS",
    "ActionSpec",
    "ROOT_ACTIONS",
    "ACTION_NODE_NAMES",
    "LEGAL_ACTIONS",
    "ExpandTask",
    "ActionOutput",
    "legal_actions",
    "run_action",
    "child_id",
    "child_sort_key",
    "is_solution",
    "until_answer",
]

ActionGen = Generator[SampleCall, SampleOutcome, "ActionOutput"]


class ExpandTask(TypedDict):
    """What an action node receives (the ``Send`` payload): plain data only."""

    node_id: str
    action: str
    question: str
    path: list[NodeRecord]
    rollout: int
    config: dict[str, Any]


class ActionOutput(TypedDict):
    """What an action produces."""

    children: list[NodeRecord]
    errors: list[dict[str, Any]]


def legal_actions(record: Mapping[str, Any], config: RStarConfig) -> list[str]:
    """Actions to run when expanding ``record`` (empty for terminal nodes)."""
    if record.get("terminal"):
        return []
    return [
        a for a in LEGAL_ACTIONS.get(str(record.get("type")), ()) if ACTION_SPECS[a].enabled(config)
    ]


def child_id(parent_id: str, action: str, index: int) -> str:
    """Stable id of the ``index``-th child an action creates under ``parent_id``."""
    return f"{parent_id}/{action}.{index}"


def child_sort_key(node_id: str) -> tuple[str, int]:
    """Sort key putting children in action order, then creation order."""
    last = node_id.rsplit("/", 1)[-1]
    action, _, idx = last.partition(".")
    return action, int(idx) if idx.isdigit() else 0


def _seed(config: RStarConfig, *parts: object) -> int | None:
    if config.seed is None:
        return None
    digest = hashlib.sha256(":".join(map(str, (config.seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _clean(text: str) -> str:
    return " ".join(text.split())


_ANSWER_END = re.compile(r"answer is\b[^\n]*?(?:\.(?=\s|$)|\n|$)", re.IGNORECASE)


def until_answer(text: str) -> str:
    """Cut a completion after its first answer statement ("... The answer is X.").

    Small models often keep writing after they state the answer (more steps, another
    answer); what follows the first statement is not part of the step.
    """
    match = _ANSWER_END.search(text)
    if match is None:
        return text
    return text[: match.end()].rstrip("\n")


def _texts(outcome: SampleOutcome, index: int = 0) -> list[str] | None:
    texts = outcome.texts[index] if index < len(outcome.texts) else None
    return None if texts is None else [until_answer(t) for t in texts]


def _dedupe(texts: Sequence[str]) -> list[tuple[str, int]]:
    """Unique non-empty texts with how many samples gave each (first occurrence order)."""
    seen: dict[str, tuple[str, int]] = {}
    for raw in texts:
        text = raw.strip()
        key = _clean(text).lower()
        if not key:
            continue
        if key in seen:
            first, count = seen[key]
            seen[key] = (first, count + 1)
        else:
            seen[key] = (text, 1)
    return list(seen.values())


def _new_child(
    task: ExpandTask, action: str, index: int, node_type: str, config: RStarConfig, **fields: Any
) -> NodeRecord:
    parent = task["path"][-1]
    depth = int(parent.get("depth", 0)) + 1
    record: NodeRecord = {
        "id": child_id(task["node_id"], action, index),
        "parent": task["node_id"],
        "type": node_type,
        "action": action,
        "text": "",
        "answer": None,
        "confidence": 0.0,
        "samples": 0,
        "depth": depth,
        "visits": 0.0,
        "value": 0.0,
        "reward": 0.0,
        "terminal": False,
        "expanded": False,
        "children": [],
        "rollout": task["rollout"],
    }
    record.update(fields)  # type: ignore[typeddict-item]
    if depth >= config.max_depth and not record.get("terminal"):
        # Depth limit: the node ends its trajectory without a solution (reward 0).
        record["terminal"] = True
        record["reward"] = 0.0
    return record


def is_solution(record: Mapping[str, Any]) -> bool:
    """Whether a node states a final answer to the question (a candidate's last step).

    Direct answers (A2), one-step thoughts that state the answer, and sub-questions that
    answer the original question are solutions; an intermediate sub-answer is not, even
    when the depth limit ends its trajectory.
    """
    if not record.get("terminal") or record.get("answer") is None or record.get("dead"):
        return False
    kind = record.get("type")
    if kind in ("subquestion", "reanswer"):
        return bool(record.get("final"))
    return kind in ("answer", "thought")


def _meta(task: ExpandTask, action: str, phase: str = "") -> dict[str, Any]:
    parent = task["path"][-1]
    meta = {
        "rstar_node_id": task["node_id"],
        "rstar_parent_id": parent.get("parent"),
        "rstar_depth": parent.get("depth", 0),
        "rstar_action": action,
        "rstar_rollout": task["rollout"],
    }
    if phase:
        meta["rstar_phase"] = phase
    return meta


def _extract_all(samples: Sequence[str], checker: AnswerChecker) -> list[str | None]:
    """The answer each sample states; each distinct text is parsed once (votes repeat)."""
    seen: dict[str, str | None] = {}
    out: list[str | None] = []
    for text in samples:
        if text not in seen:
            seen[text] = checker.extract(text)
        out.append(seen[text])
    return out


def _vote_child_fields(
    samples: Sequence[str], checker: AnswerChecker
) -> tuple[str, str | None, float]:
    answers = _extract_all(samples, checker)
    vote = majority_vote(answers, checker)
    if vote.winners:
        text = samples[vote.winners[0]].strip()
    else:
        text = next((s.strip() for s in samples if s.strip()), "")
    return text, vote.answer, vote.confidence


def _states_answer(text: str, checker: AnswerChecker) -> bool:
    """Whether a one-step thought states an answer (then it is a solution step).

    With the reference extraction every number is an answer (the last one), so, as in the
    reference code, a step states one only when it says "answer is".
    """
    return checker.extraction != "reference" or "answer is" in text.lower()


def a1_one_step_thought(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A1: propose ``num_a1_steps`` next steps; a step that states the answer is terminal."""
    outcome = yield SampleCall(
        prompts=[
            P.one_step_prompt(
                config.task, task["question"], task["path"], exemplar_set=config.exemplar_set
            )
        ],
        n=config.num_a1_steps,
        stop=P.STOP_LINE,
        params=config.line_sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A1"),
        run_name="A1_one_step_thought",
        metadata=_meta(task, "A1"),
    )
    samples = _texts(outcome) or []
    # how many samples state each distinct answer (equivalence is checked per distinct one)
    stated: dict[str, int] = {}
    for text, a in zip(samples, _extract_all(samples, checker), strict=True):
        if a is not None and _states_answer(text, checker):
            stated[a] = stated.get(a, 0) + 1
    children: list[NodeRecord] = []
    for i, (text, _count) in enumerate(_dedupe(samples)):
        answer = checker.extract(text)
        fields: dict[str, Any] = {"text": text, "samples": _count}
        if (
            answer is not None
            and checker.normalize(answer) is not None
            and _states_answer(text, checker)
        ):
            agree = sum(c for a, c in stated.items() if checker.equivalent(a, answer))
            confidence = agree / max(len(samples), 1)
            fields.update(answer=answer, confidence=confidence, reward=confidence, terminal=True)
        children.append(_new_child(task, "A1", i, "thought", config, **fields))
    return {"children": children, "errors": outcome.errors}


def a2_direct_answer(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A2: write the remaining steps ``num_votes`` times; the majority answer wins."""
    outcome = yield SampleCall(
        prompts=[
            P.remaining_prompt(
                config.task, task["question"], task["path"], exemplar_set=config.exemplar_set
            )
        ],
        n=config.num_votes,
        stop=P.STOP_BLOCK,
        params=config.sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A2"),
        run_name="A2_direct_answer",
        metadata=_meta(task, "A2"),
    )
    samples = _texts(outcome)
    if not samples:
        return {"children": [], "errors": outcome.errors}
    text, answer, confidence = _vote_child_fields(samples, checker)
    child = _new_child(
        task,
        "A2",
        0,
        "answer",
        config,
        text=text,
        answer=answer,
        confidence=confidence,
        reward=confidence if answer is not None else 0.0,
        samples=len(samples),
        terminal=True,
    )
    return {"children": [child], "errors": outcome.errors}


def a3_subquestion(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A3: propose ``num_subquestions`` sub-questions and answer each by majority vote."""
    asked = yield SampleCall(
        prompts=[
            P.subquestion_prompt(
                config.task, task["question"], task["path"], exemplar_set=config.exemplar_set
            )
        ],
        n=config.num_subquestions,
        stop=P.STOP_LINE,
        params=config.line_sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A3", "ask"),
        run_name="A3_subquestion",
        metadata=_meta(task, "A3", "ask"),
    )
    errors = list(asked.errors)
    subquestions = [text for text, _ in _dedupe(asked.texts[0] or [])]
    if not subquestions:
        return {"children": [], "errors": errors}
    answered = yield SampleCall(
        prompts=[
            P.subanswer_prompt(
                config.task, task["question"], task["path"], sq, exemplar_set=config.exemplar_set
            )
            for sq in subquestions
        ],
        n=config.num_votes,
        stop=P.STOP_LINE,
        params=config.line_sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A3", "answer"),
        run_name="A3_subquestion_answers",
        metadata=_meta(task, "A3", "answer"),
    )
    errors.extend(answered.errors)
    children: list[NodeRecord] = []
    for i, sq in enumerate(subquestions):
        samples = _texts(answered, i)
        if not samples:
            continue
        text, answer, confidence = _vote_child_fields(samples, checker)
        final = P.is_final_subquestion(sq)
        children.append(
            _new_child(
                task,
                "A3",
                i,
                "subquestion",
                config,
                subquestion=sq,
                text=text,
                answer=answer,
                confidence=confidence,
                samples=len(samples),
                final=final,
                terminal=final,
                reward=confidence if final and answer is not None else 0.0,
            )
        )
    return {"children": children, "errors": errors}


def a4_reanswer(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A4: answer the last sub-question again, step by step, by majority vote."""
    parent = task["path"][-1]
    sq = str(parent.get("subquestion", ""))
    outcome = yield SampleCall(
        prompts=[
            P.reanswer_prompt(
                config.task,
                task["question"],
                task["path"][:-1],
                sq,
                exemplar_set=config.exemplar_set,
            )
        ],
        n=config.num_votes,
        stop=P.STOP_LINE,
        params=config.line_sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A4"),
        run_name="A4_reanswer",
        metadata=_meta(task, "A4"),
    )
    samples = _texts(outcome)
    if not samples:
        return {"children": [], "errors": outcome.errors}
    text, answer, confidence = _vote_child_fields(samples, checker)
    final = bool(parent.get("final"))
    child = _new_child(
        task,
        "A4",
        0,
        "reanswer",
        config,
        subquestion=sq,
        text=f"{P.REANSWER_HINT} {text}".strip(),
        answer=answer,
        confidence=confidence,
        samples=len(samples),
        final=final,
        terminal=final,
        reward=confidence if final and answer is not None else 0.0,
    )
    return {"children": [child], "errors": outcome.errors}


def a5_rephrase(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A5: restate the question as a list of its conditions."""
    question = P.path_question(task["question"], task["path"])
    outcome = yield SampleCall(
        prompts=[P.rephrase_prompt(config.task, question, exemplar_set=config.exemplar_set)],
        n=1,
        stop=P.STOP_REPHRASE,
        params=config.line_sampling_kwargs(),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A5"),
        run_name="A5_rephrase",
        metadata=_meta(task, "A5"),
    )
    texts = [t for t, _ in _dedupe(outcome.texts[0] or [])]
    children = [
        _new_child(task, "A5", i, "rephrase", config, text=t, samples=1)
        for i, t in enumerate(texts)
    ]
    return {"children": children, "errors": outcome.errors}


# --------------------------------------------------------------------------------------
# The action table: every fact about an action, in one place
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionSpec:
    """Everything the search needs to know about one action.

    Attributes:
        name: ``A1`` .. ``A5``.
        node_name: graph node (and trace run) name.
        child_type: type of the tree nodes the action creates.
        successors: actions legal on a node of ``child_type`` (before the config's
            ``disable_*`` switches). One-step thoughts only lead to more thoughts or the
            answer, so once A1 is on a path A3/A4 are not offered.
        max_weight: most generator-majority weight one run of the action can add to a
            single answer (the early-stop bound, :mod:`langchain_rstar.search.budget`).
            A1: ``d`` distinct thoughts that state answer X, out of ``a`` samples agreeing
            on X, each weigh ``a / n`` (``n = num_a1_steps``, ``d <= a <= n``): at most
            ``n`` in all. A2: one answer node, confidence at most 1. A3: at most
            ``num_subquestions`` final sub-questions, each weighing at most 1. A4 copies its
            parent's ``final`` flag, and a final sub-question is terminal (never expanded),
            so A4 never creates a candidate; A5 creates none either.
        disabled_by: the :class:`RStarConfig` switch that turns the action off, if any.
        impl: the request generator (sans-IO, see the module docs).
    """

    name: str
    node_name: str
    child_type: str
    successors: tuple[str, ...]
    max_weight: Callable[[RStarConfig], float]
    disabled_by: str | None
    impl: Callable[[ExpandTask, RStarConfig, AnswerChecker], ActionGen]

    def enabled(self, config: RStarConfig) -> bool:
        """Whether ``config`` allows this action."""
        return not (self.disabled_by and getattr(config, self.disabled_by))


ACTION_SPECS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "A1",
            "A1_one_step_thought",
            "thought",
            ("A1", "A2"),
            lambda cfg: float(cfg.num_a1_steps),
            "disable_a1",
            a1_one_step_thought,
        ),
        ActionSpec("A2", "A2_direct_answer", "answer", (), lambda cfg: 1.0, None, a2_direct_answer),
        ActionSpec(
            "A3",
            "A3_subquestion",
            "subquestion",
            ("A1", "A2", "A3", "A4"),
            lambda cfg: float(cfg.num_subquestions),
            None,
            a3_subquestion,
        ),
        ActionSpec(
            "A4", "A4_reanswer", "reanswer", ("A1", "A2", "A3"), lambda cfg: 0.0, None, a4_reanswer
        ),
        ActionSpec(
            "A5",
            "A5_rephrase",
            "rephrase",
            ("A1", "A2", "A3"),
            lambda cfg: 0.0,
            "disable_a5",
            a5_rephrase,
        ),
    )
}

#: Actions legal on the root (the question itself).
ROOT_ACTIONS: tuple[str, ...] = ("A1", "A2", "A3", "A5")

#: Views of the table.
ACTIONS: tuple[str, ...] = tuple(ACTION_SPECS)
ACTION_NODE_NAMES: dict[str, str] = {a: spec.node_name for a, spec in ACTION_SPECS.items()}
LEGAL_ACTIONS: dict[str, tuple[str, ...]] = {
    "root": ROOT_ACTIONS,
    **{spec.child_type: spec.successors for spec in ACTION_SPECS.values()},
}


def run_action(
    action: str, task: ExpandTask, config: RStarConfig, checker: AnswerChecker
) -> ActionGen:
    """The request generator of ``action`` for ``task``."""
    try:
        spec = ACTION_SPECS[action]
    except KeyError as exc:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}") from exc
    return spec.impl(task, config, checker)
