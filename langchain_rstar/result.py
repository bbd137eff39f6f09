"""Search records and the public result model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer
from typing_extensions import TypedDict

from langchain_rstar import visualize

__all__ = [
    "NodeType",
    "NodeRecord",
    "Step",
    "Candidate",
    "MaskCheck",
    "Usage",
    "Verification",
    "RStarResult",
    "RStarProgress",
    "ACTION_OF_TYPE",
]

NodeType = Literal["root", "rephrase", "thought", "subquestion", "reanswer", "answer"]

#: The action that creates each node type.
ACTION_OF_TYPE: dict[str, str] = {
    "root": "",
    "thought": "A1",
    "answer": "A2",
    "subquestion": "A3",
    "reanswer": "A4",
    "rephrase": "A5",
}


class NodeRecord(TypedDict, total=False):
    """One node of the search tree: plain data, keyed by ``id`` in the graph state.

    Keys:
        id: unique, stable id (the parent's id plus the action and child index).
        parent: parent id (None for the root).
        type: node type (see :data:`NodeType`).
        action: ``A1``..``A5`` (empty for the root).
        text: the step text (thought, sub-answer, remaining steps or rephrased question).
        subquestion: the sub-question of A3/A4 nodes.
        answer: the answer this node states, if any.
        confidence: share of the node's samples agreeing with ``answer``.
        samples: how many sampled sequences produced or voted for this node.
        depth: distance from the root.
        visits: N (rollouts through the node).
        value: Q (sum of rewards backpropagated through the node).
        reward: the node's own reward (answer confidence for terminal nodes, else 0).
        terminal: whether the node ends a trajectory.
        expanded: whether the node's legal actions have been run.
        children: child ids, in creation order (set once expanded).
        final: for sub-questions, whether it answers the original question.
        rollout: index of the rollout that created the node.
        dead: the node was expanded but no action produced a usable child.
    """

    id: str
    parent: str | None
    type: str
    action: str
    text: str
    subquestion: str
    answer: str | None
    confidence: float
    samples: int
    depth: int
    visits: float
    value: float
    reward: float
    terminal: bool
    expanded: bool
    children: list[str]
    final: bool
    rollout: int
    dead: bool


class Step(BaseModel):
    """One step of a reasoning trajectory."""

    model_config = ConfigDict(extra="forbid")

    node_id: str
    type: str
    action: str
    text: str
    subquestion: str | None = None
    answer: str | None = None


class MaskCheck(BaseModel):
    """One masked prefix of a candidate and what the discriminator made of it."""

    model_config = ConfigDict(extra="forbid")

    cut: int = Field(description="Units (steps or words) of the trajectory kept as prefix.")
    total: int = Field(description="Units in the whole trajectory.")
    prefix: str
    completions: list[str] = Field(default_factory=list)
    answers: list[str | None] = Field(default_factory=list)
    agree: int = 0
    error: str | None = None


class Candidate(BaseModel):
    """A terminal trajectory found by the search."""

    model_config = ConfigDict(extra="forbid")

    node_id: str
    answer: str | None
    reward: float = Field(description="Search reward: mean Q/N along the trajectory.")
    confidence: float = Field(description="Self-consistency confidence of the answer.")
    score: float = 0.0
    trajectory: list[Step] = Field(default_factory=list)
    masks: list[MaskCheck] = Field(default_factory=list)
    agreement: float | None = Field(None, description="Share of completions reaching the answer.")
    consistent: bool | None = None
    frequency: int | None = Field(
        None,
        description=(
            "How often the generator's pool holds this node (candidate_pool="
            "'tree_and_rollouts': 1 for the tree plus 1 per rollout ending on it); None "
            "for the 'terminal' pool, where each node counts once. Left out of dumps when None."
        ),
    )

    @model_serializer(mode="wrap")
    def _drop_unset_frequency(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("frequency") is None:
            data.pop("frequency", None)
        return data


class Usage(BaseModel):
    """What the search cost.

    ``llm_calls`` counts every attempt (retries included); ``failed_calls`` the calls that
    still failed after their retries; ``repetitions_trimmed`` the samples cut back from a
    degenerate endless repetition to its first occurrence.
    """

    model_config = ConfigDict(extra="forbid")

    llm_calls: int = 0
    batches: int = 0
    prompts: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    wall_seconds: float = 0.0
    model_seconds: float = 0.0
    framework_seconds: float = 0.0
    rollouts: int = 0
    nodes: int = 0
    failed_calls: int = 0
    repetitions_trimmed: int = 0


class Verification(BaseModel):
    """How the final answer was chosen.

    ``verifier`` says which model was set to verify: ``"generator"`` (the generator checks
    its own candidates, the default when no discriminator is given), ``"discriminator"`` (a
    separate model, named in ``verifier_model``), or None when verification was off
    (``discriminator=False``, ``verify=False``, or the ``fast`` profile without a
    discriminator). ``ran`` says whether it actually ran (it is skipped when the generator
    is unanimous, see ``skipped`` and ``reason``).
    """

    model_config = ConfigDict(extra="forbid")

    mode: str = "none"
    ran: bool = False
    skipped: bool = False
    fell_back: bool = False
    reason: str = ""
    generator_answer: str | None = None
    generator_confidence: float = 0.0
    verifier: Literal["generator", "discriminator"] | None = None
    verifier_model: str | None = Field(None, description="Name of the verifying model.")
    rule: str = Field("", description="The final_score rule that picked the answer.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Each surviving answer's final score."
    )


class RStarResult(BaseModel):
    """Outcome of one rStar search. JSON-serialisable (``model_dump_json``)."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str | None
    confidence: float = 0.0
    trajectory: list[Step] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    tree: dict[str, dict[str, Any]] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    verification: Verification = Field(default_factory=Verification)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    stop_reason: str = "budget"
    limits_hit: list[str] = Field(default_factory=list)

    def __str__(self) -> str:
        return f"RStarResult(answer={self.answer!r}, confidence={self.confidence:.2f})"

    def to_mermaid(self, **kwargs: Any) -> str:
        """The search tree as Mermaid text (see :func:`langchain_rstar.visualize.to_mermaid`)."""
        return visualize.to_mermaid(self, **kwargs)

    def to_html(self, **kwargs: Any) -> str:
        """Self-contained HTML page of the tree (see :func:`langchain_rstar.visualize.to_html`)."""
        return visualize.to_html(self, **kwargs)

    def save_html(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write :meth:`to_html` to ``path`` and return it (``rstar solve --tree out.html``)."""
        return visualize.save_html(self, path, **kwargs)


class RStarProgress(BaseModel):
    """A progress event streamed after every finished rollout."""

    model_config = ConfigDict(extra="forbid")

    rollout: int
    num_rollouts: int
    best_answer: str | None
    confidence: float
    completion_tokens: int
    llm_calls: int
    nodes: int
