"""The five rStar actions: prompt building, sampling requests, parsing, voting.

Each action is written once, as a generator that *yields* :class:`SampleCall` requests and
receives :class:`SampleOutcome` answers (no I/O here). The graph drives the same generator
synchronously or asynchronously. An action returns the child node records it creates.

* A1 ``one_step_thought``: propose the next single reasoning step.
* A2 ``direct_answer``: write the remaining steps to the end; the answer is the majority of
  the samples (terminal).
* A3 ``subquestion``: propose the next sub-question and answer it by majority vote.
* A4 ``reanswer``: answer the last sub-question again, step by step, by majority vote.
* A5 ``rephrase``: restate the question as a list of conditions.

How each action behaves is set by the config's generator fields, whose defaults are the
authors' reference code (the ``paper`` profile) and whose ``fast`` values are the cheaper
variant this package started with (``RStarConfig.fast()``):

* A1 (``a1_answer_terminal``, ``dedupe_a1``, ``a1_context``): in the reference a step that states
  the answer is *not* terminal (reward 0, expanded further) yet still a candidate solution, and
  repeated samples stay separate children; ``fast`` ends the trajectory there (reward = agreeing
  share) and merges duplicates. Below sub-questions the reference's A1 prompt shows the sub-
  answers as steps, or only the thoughts since the last sub-question
  (:mod:`~langchain_rstar.prompts.a1_one_step`); ``fast`` shows the whole path.
* A2 (``a2_mode``): the reference writes a whole new solution from a chain-of-thought
  few-shot prompt, the steps so far given as a hint (``regenerate``); ``fast`` continues the
  path after ``Step k:`` (``continue``).
* A3 (``a3_final_test``, ``dedupe_a3``): the reference's final sub-question contains "Now
  we can answer" or the question's last sentence; ``fast`` only checks the prefix. A final
  sub-question's answer gets ``a3_final_votes`` samples. The reference keeps a sub-question
  proposed twice as two children (each with its own answer votes); ``fast`` merges them.
* A4 (``a4_mode``): the reference re-solves "question context + last sub-question" from
  scratch with the chain-of-thought prompt (``resolve``); ``fast`` re-answers in one line
  after the earlier sub-questions (``line``).
* Votes and token caps per action: :meth:`RStarConfig.votes_for` and
  :meth:`RStarConfig.action_sampling_kwargs`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import NotRequired, TypedDict

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
    "is_final_subquestion",
    "is_solution",
    "solution_hint",
    "split_question",
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
    #: epoch seconds at which the search's ``max_wall_seconds`` runs out (absent: no limit);
    #: model calls still running then are abandoned (issue #19.10)
    deadline: NotRequired[float]


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


def _dedupe_or_keep(texts: Sequence[str], dedupe: bool) -> list[tuple[str, int]]:
    """:func:`_dedupe`, or every non-empty sample as its own entry (count 1)."""
    if dedupe:
        return _dedupe(texts)
    return [(text.strip(), 1) for text in texts if _clean(text)]


def split_question(question: str) -> tuple[str, str]:
    """``(context, last sentence)`` of a question, split at its last period.

    As the reference code does it (``split_user_question``): a trailing period is dropped
    first, and a question without a period is all last sentence.
    """
    text = question.strip().rstrip(".")
    cut = text.rfind(".")
    return text[: cut + 1].strip(), text[cut + 1 :].strip()


def is_final_subquestion(subquestion: str, question: str, config: RStarConfig) -> bool:
    """Whether a sub-question asks the question itself (its answer is a solution).

    ``a3_final_test="prefix"``: it starts with "Now we can answer the question".
    ``"prefix_or_last_sentence"`` (the reference's ``reach_terminal_subquestion``): it
    contains "Now we can answer", or the question's last sentence (case-insensitive).
    """
    if config.a3_final_test == "prefix":
        return P.is_final_subquestion(subquestion)
    low = subquestion.strip().lower()
    if "now we can answer" in low:
        return True
    last = split_question(question)[1].lower()
    return bool(last) and last in low


def _paraphrased(path: Sequence[Mapping[str, Any]]) -> bool:
    return any(r.get("type") == "rephrase" and r.get("text") for r in path)


def solution_hint(path: Sequence[Mapping[str, Any]]) -> str | None:
    """The steps so far as the hint of a regenerated A2 answer (None at the question).

    As the reference's ``make_hint``: below a one-step thought, ``Hint: `` and the thoughts
    since the last sub-question in one line; below a sub-question (or its re-answer), one
    ``Hint k: <sub-question> <answer>`` line per sub-question.
    """
    last = path[-1].get("type") if path else None
    if last == "thought":
        steps: list[str] = []
        for record in path:
            if record.get("type") in ("subquestion", "reanswer"):
                steps = []
            elif record.get("type") == "thought":
                steps.append(_clean(str(record.get("text", ""))))
        return "Hint: " + " ".join(steps)
    if last in ("subquestion", "reanswer"):
        subs: list[tuple[str, str]] = []
        for record in path:
            kind = record.get("type")
            text = _clean(str(record.get("text", "")))
            if kind == "subquestion":
                subs.append((_clean(str(record.get("subquestion", ""))), text))
            elif kind == "reanswer" and subs:
                subs[-1] = (subs[-1][0], text)
        return "\n".join(f"Hint {k}: {q} {a}" for k, (q, a) in enumerate(subs, start=1))
    return None


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

    Direct answers (A2), one-step thoughts that state the answer (terminal or not, see
    ``a1_answer_terminal``), and sub-questions that answer the original question are
    solutions; an intermediate sub-answer is not, even when the depth limit ends its
    trajectory.
    """
    if record.get("answer") is None:
        return False
    kind = record.get("type")
    if kind == "thought":
        # terminal with ``a1_answer_terminal``; else expanded further, still a solution
        return True
    if not record.get("terminal") or record.get("dead"):
        return False
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
    """A1: propose ``num_a1_steps`` next steps; a step may state the answer."""
    outcome = yield SampleCall(
        prompts=[
            P.one_step_prompt(
                config.task,
                task["question"],
                task["path"],
                exemplar_set=config.exemplar_set,
                context=config.a1_context,
            )
        ],
        n=config.num_a1_steps,
        stop=P.STOP_LINE,
        params=config.action_sampling_kwargs("A1"),
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
    for i, (text, _count) in enumerate(_dedupe_or_keep(samples, config.dedupe_a1)):
        answer = checker.extract(text)
        fields: dict[str, Any] = {"text": text, "samples": _count}
        if (
            answer is not None
            and checker.normalize(answer) is not None
            and _states_answer(text, checker)
        ):
            agree = sum(c for a, c in stated.items() if checker.equivalent(a, answer))
            confidence = agree / max(len(samples), 1)
            if config.a1_answer_terminal:
                fields.update(
                    answer=answer, confidence=confidence, reward=confidence, terminal=True
                )
            else:  # the reference: reward 0, expanded further, still a solution
                fields.update(answer=answer, confidence=confidence)
        children.append(_new_child(task, "A1", i, "thought", config, **fields))
    return {"children": children, "errors": outcome.errors}


def a2_direct_answer(task: ExpandTask, config: RStarConfig, checker: AnswerChecker) -> ActionGen:
    """A2: write the rest of the solution ``votes_for("A2")`` times; the majority wins.

    ``a2_mode="continue"`` continues the path after ``Step k:``; ``"regenerate"`` writes a
    whole solution from the chain-of-thought prompt with the path as a hint.
    """
    if config.a2_mode == "regenerate":
        question = P.path_question(task["question"], task["path"])
        prompt = P.cot_prompt(
            config.task, question, solution_hint(task["path"]), exemplar_set=config.exemplar_set
        )
    else:
        prompt = P.remaining_prompt(
            config.task, task["question"], task["path"], exemplar_set=config.exemplar_set
        )
    outcome = yield SampleCall(
        prompts=[prompt],
        n=config.votes_for("A2"),
        stop=P.STOP_BLOCK,
        params=config.action_sampling_kwargs("A2"),
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
    """A3: propose ``num_subquestions`` sub-questions and answer each by majority vote.

    A final sub-question's answer gets ``votes_for("A3_final")`` samples, the others
    ``votes_for("A3")``, one request per size. (The reference code picks one size for all
    sub-questions of an expansion from the *last* one it proposed, a loop-variable slip;
    here each sub-question's own final test decides.)
    """
    question = P.path_question(task["question"], task["path"])
    asked = yield SampleCall(
        prompts=[
            P.subquestion_prompt(
                config.task, task["question"], task["path"], exemplar_set=config.exemplar_set
            )
        ],
        n=config.num_subquestions,
        stop=P.STOP_LINE,
        params=config.action_sampling_kwargs("A3_ask"),
        cache=config.vote_cache,
        seed=_seed(config, task["node_id"], "A3", "ask"),
        run_name="A3_subquestion",
        metadata=_meta(task, "A3", "ask"),
    )
    errors = list(asked.errors)
    subquestions = [t for t, _ in _dedupe_or_keep(asked.texts[0] or [], config.dedupe_a3)]
    if not subquestions:
        return {"children": [], "errors": errors}
    finals = [is_final_subquestion(sq, question, config) for sq in subquestions]
    # one request per vote size (a final sub-question's answer may get more samples)
    groups: dict[int, list[int]] = {}
    for i, final in enumerate(finals):
        groups.setdefault(config.votes_for("A3_final" if final else "A3"), []).append(i)
    answers: list[list[str] | None] = [None] * len(subquestions)
    for n, indices in groups.items():
        seed_parts: tuple[Any, ...] = ("A3", "answer") if len(groups) == 1 else ("A3", "answer", n)
        answered = yield SampleCall(
            prompts=[
                P.subanswer_prompt(
                    config.task,
                    task["question"],
                    task["path"],
                    subquestions[i],
                    exemplar_set=config.exemplar_set,
                )
                for i in indices
            ],
            n=n,
            stop=P.STOP_LINE,
            params=config.action_sampling_kwargs("A3"),
            cache=config.vote_cache,
            seed=_seed(config, task["node_id"], *seed_parts),
            run_name="A3_subquestion_answers",
            metadata=_meta(task, "A3", "answer"),
        )
        errors.extend(answered.errors)
        for j, i in enumerate(indices):
            answers[i] = _texts(answered, j)
    children: list[NodeRecord] = []
    for i, sq in enumerate(subquestions):
        samples = answers[i]
        if not samples:
            continue
        text, answer, confidence = _vote_child_fields(samples, checker)
        final = finals[i]
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
    """A4: answer the last sub-question again, step by step, by majority vote.

    ``a4_mode="line"``: one line after the earlier sub-questions and answers.
    ``"resolve"`` (the reference's ``generate_re_subanswers``): the chain-of-thought prompt
    on "question context + last sub-question" alone, earlier sub-answers not shown.
    """
    parent = task["path"][-1]
    sq = str(parent.get("subquestion", ""))
    resolve = config.a4_mode == "resolve"
    if resolve:
        context, _ = split_question(P.path_question(task["question"], task["path"]))
        joint = "Question: " if _paraphrased(task["path"]) else ""
        prompt = P.cot_prompt(
            config.task, f"{context} {joint}{sq}".strip(), exemplar_set=config.exemplar_set
        )
        stop = P.STOP_BLOCK
    else:
        prompt = P.reanswer_prompt(
            config.task, task["question"], task["path"][:-1], sq, exemplar_set=config.exemplar_set
        )
        stop = P.STOP_LINE
    outcome = yield SampleCall(
        prompts=[prompt],
        n=config.votes_for("A4"),
        stop=stop,
        params=config.action_sampling_kwargs("A4"),
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
        text=text if resolve else f"{P.REANSWER_HINT} {text}".strip(),
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
        params=config.action_sampling_kwargs("A5"),
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
            ``n`` in all (kept duplicates, ``dedupe_a1=False``: ``n`` children, each
            weighing at most 1 also when the pool counts frequency). A2: one answer node,
            confidence at most 1. A3: at most ``num_subquestions`` final sub-questions,
            each weighing at most 1. A4 copies its parent's ``final`` flag, and a final
            sub-question is terminal (never expanded), so A4 never creates a candidate; A5
            creates none either. (The ``tree_and_rollouts`` pool also counts each rollout's
            end node: :func:`~langchain_rstar.search.budget.max_new_weight_per_rollout`
            adds 1.)
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
