"""Configuration of an rStar search."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The backend contract owns this trait; re-exported here (old path) for the 0.1.x releases.
from langchain_rstar.llms.base import top_p_is_costly
from langchain_rstar.prompts.task import TaskSpec, task_spec

__all__ = ["FAST_PROFILE", "PROFILES", "RStarConfig", "top_p_is_costly"]

#: The named search profiles (``RStarConfig.paper()``, ``RStarConfig.fast()``).
PROFILES = ("paper", "fast")

#: What ``profile="fast"`` changes against the defaults (which are the ``paper`` profile's:
#: the authors' reference code, minus its gold-answer leak). Each entry is one documented
#: deviation a user can also set alone; explicit fields always win over the profile.
FAST_PROFILE: dict[str, Any] = {
    # one shared 4-example block for every action, 2 rephrase examples (shorter prompts)
    "exemplar_set": "fast",
    # the last stated answer the family can read (the reference reads the first number
    # after "answer is", else the last number of the text)
    "answer_extraction": "marker",
}


class RStarConfig(BaseModel):
    """All knobs of the rStar generator (MCTS) and discriminator (mutual verification).

    Defaults follow the paper where it gives a number (rollouts, votes, depth, exploration
    weight, masking range). Invalid values fail at construction with the field named.

    Example:
        >>> RStarConfig(num_rollouts=8, task="arithmetic").num_rollouts
        8
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # --- profile -------------------------------------------------------------------------
    profile: Literal["paper", "fast"] = Field(
        "paper",
        description=(
            "'paper' (default): the algorithm of the authors' reference code, minus its "
            "gold-answer leak. 'fast': today's cheaper variant; each of its deviations is a "
            "field of its own (see FAST_PROFILE), and fields given explicitly win."
        ),
    )

    # --- task --------------------------------------------------------------------------
    task: str = Field(
        "arithmetic",
        description=(
            "The task: a built-in family ('arithmetic': numeric word problems, 'math': "
            "competition math, 'yesno': yes/no questions) or a TaskSpec. A spec is registered "
            "under its name and the config stores the name (plain data; see "
            "langchain_rstar.prompts.task for where a name is resolved)."
        ),
    )

    # --- paper vs fast: prompts ------------------------------------------------------------
    exemplar_set: Literal["paper", "fast"] = Field(
        "paper",
        description=(
            "'paper': each action shows its own few-shot family in the rStar reference's "
            "counts (8 step-by-step solutions for A2 and the discriminator, 4 one-step "
            "solutions for A1, 4 decompositions for A3/A4, 8 rephrasings for A5). 'fast': one "
            "shared 4-example block for every solving action and 2 rephrasings."
        ),
    )
    answer_extraction: Literal["reference", "marker"] = Field(
        "reference",
        description=(
            "How a completion's answer is read. 'reference': as the rStar reference "
            "evaluator (the first number after 'answer is', else the last number; MATH: the "
            "text after 'answer is', else the last \\boxed{}; yes/no: the first yes/no "
            "after 'answer is', else the last); a one-step thought (A1) then states an "
            "answer only when it says 'answer is'. 'marker': the last stated answer the "
            "family can read ('The answer is X', 'Answer: X', '#### X', \\boxed{X})."
        ),
    )

    # --- search (generator) --------------------------------------------------------------
    num_rollouts: int = Field(16, ge=1, le=10_000, description="MCTS rollouts per question.")
    rollout_batch: int = Field(
        1, ge=1, le=256, description="Rollouts selected per wave (virtual loss); 1 = sequential."
    )
    num_votes: int = Field(10, ge=1, le=256, description="Samples for each majority vote (A2-A4).")
    num_a1_steps: int = Field(3, ge=1, le=64, description="One-step thoughts per A1 expansion.")
    num_subquestions: int = Field(3, ge=1, le=64, description="Sub-questions per A3 expansion.")
    max_depth: int = Field(5, ge=1, le=32, description="Depth at which a node is terminal.")
    exploration_weight: float = Field(2.0, ge=0.0, description="UCT exploration constant c.")
    virtual_loss: float = Field(
        1.0, ge=0.0, description="Visits added along a path while a wave is in flight."
    )
    disable_a1: bool = Field(False, description="Never propose one-step thoughts (A1).")
    disable_a5: bool = Field(False, description="Never rephrase the question (A5).")
    early_stop: bool = Field(
        False,
        description=(
            "Stop when the leading answer cannot be overtaken in the remaining rollouts. "
            "Off reproduces the paper's fixed budget."
        ),
    )
    vote_cache: bool = Field(
        True,
        description=(
            "Reuse samples already drawn in this search for an identical request (same "
            "prompt, stop strings and sampling parameters; at least as many samples)."
        ),
    )

    # --- sampling ----------------------------------------------------------------------
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_k: int | None = Field(40, ge=1, description="None disables top-k.")
    top_p: float | None = Field(
        0.95, gt=0.0, le=1.0, description="None disables top-p (costly on large vocabularies)."
    )
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    sampling_preset: Literal["auto", "paper", "fast"] = Field(
        "auto",
        description=(
            "Which filters are sent. 'paper': temperature, top_k and top_p as set (the "
            "paper's 0.8 / 40 / 0.95). 'fast': the same without top_p, the one filter that "
            "sorts the whole vocabulary for every token on local CPU backends (about 5x "
            "slower decoding with Gemma's 262k vocabulary). 'auto': 'fast' on a backend "
            "whose top-p is costly (see top_p_is_costly), else 'paper'. VLLMEngine and "
            "TransformersLLM apply top-p inside the top-k shortlist by default (same tokens, "
            "top-k cost), so 'auto' keeps the paper's filters there."
        ),
    )
    max_tokens: int = Field(
        256, ge=1, le=32_768, description="Token cap for one step (A2 writes all remaining steps)."
    )
    max_line_tokens: int | None = Field(
        128,
        ge=1,
        le=32_768,
        description=(
            "Token cap for the one-line actions (A1 thought, A3 sub-question and its answers, "
            "A4, A5): a line that runs longer is degenerate and would only hold its batch "
            "back. None: max_tokens. Never above max_tokens."
        ),
    )
    seed: int | None = Field(0, description="Seed for tree decisions and sampling.")

    # --- mutual verification (discriminator) ---------------------------------------------
    verify: bool = Field(True, description="Run mutual verification when a discriminator is set.")
    num_masks: int = Field(4, ge=1, le=32)
    mask_low: float = Field(0.2, ge=0.0, le=1.0)
    mask_high: float = Field(0.5, ge=0.0, le=1.0)
    mask_unit: Literal["step", "word"] = "step"
    num_completions: int = Field(1, ge=1, le=64, description="Completions per masked prefix.")
    verify_temperature: float = Field(1.0, ge=0.0, le=5.0)
    consistency: Literal["loose", "mid", "strict", "maj"] = "mid"
    skip_threshold: float = Field(
        0.999, ge=0.0, le=1.0, description="Skip verification above this generator majority."
    )
    max_candidates: int | None = Field(
        None, ge=1, description="Verify at most this many candidates (best first)."
    )

    # --- reliability and limits --------------------------------------------------------
    # Limits are checked between waves (every ``rollout_batch`` rollouts): the wave in
    # flight finishes, so a search can overshoot a limit by one wave's expansions. A hit
    # limit ends the search with stop_reason "limit" and its name in limits_hit.
    max_retries: int = Field(
        2, ge=0, le=20, description="Retries of a failing model call (each attempt is counted)."
    )
    retry_backoff: float = Field(
        0.5, ge=0.0, le=60.0, description="First backoff in seconds (doubles each retry)."
    )
    call_timeout: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Seconds one model call attempt may take before it counts as failed (and is "
            "retried). None: no limit; set it to bound a search against a hung backend."
        ),
    )
    dead_after: int = Field(
        3,
        ge=1,
        le=1000,
        description="Consecutive failed calls (after retries) before the backend counts as dead.",
    )
    max_nodes: int | None = Field(
        None,
        ge=1,
        description="Tree size limit, checked between waves (one wave may overshoot it).",
    )
    max_total_tokens: int | None = Field(
        None,
        ge=1,
        description=(
            "Completion tokens of the search per question, checked between waves (one wave "
            "may overshoot it; verification is not counted)."
        ),
    )
    max_wall_seconds: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Wall time of the search per question, checked between waves (the wave in "
            "flight finishes; verification is not counted)."
        ),
    )
    max_question_chars: int = Field(
        20_000, ge=1, description="Longer questions are rejected before any model call."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("profile") == "fast":
            return {**FAST_PROFILE, **data}
        return data

    @classmethod
    def paper(cls, **fields: Any) -> RStarConfig:
        """The ``paper`` profile (the defaults) with ``fields`` changed."""
        return cls(**{**fields, "profile": "paper"})

    @classmethod
    def fast(cls, **fields: Any) -> RStarConfig:
        """The ``fast`` profile (every deviation in :data:`FAST_PROFILE`) with ``fields``
        changed."""
        return cls(**{**fields, "profile": "fast"})

    @field_validator("task", mode="before")
    @classmethod
    def _task_name(cls, value: Any) -> Any:
        if isinstance(value, TaskSpec):
            return value.register().name
        if isinstance(value, str):
            task_spec(value)  # a clear error for an unknown name
        return value

    def task_spec(self) -> TaskSpec:
        """The :class:`~langchain_rstar.TaskSpec` this config names."""
        return task_spec(self.task)

    @model_validator(mode="after")
    def _check_ranges(self) -> RStarConfig:
        if self.mask_low > self.mask_high:
            raise ValueError(
                f"mask_low ({self.mask_low}) must not exceed mask_high ({self.mask_high})"
            )
        return self

    def sampling_kwargs(self) -> dict[str, Any]:
        """Sampling parameters for generator calls (None values left out).

        ``sampling_preset="fast"`` leaves ``top_p`` out; an unresolved ``"auto"`` (see
        :meth:`for_backend`) counts as ``"paper"``.
        """
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.top_p is not None and self.top_p < 1.0 and self.sampling_preset != "fast":
            out["top_p"] = self.top_p
        if self.min_p is not None and self.min_p > 0:
            out["min_p"] = self.min_p
        return out

    def line_sampling_kwargs(self) -> dict[str, Any]:
        """:meth:`sampling_kwargs` for one-line actions (``max_line_tokens`` cap)."""
        out = self.sampling_kwargs()
        if self.max_line_tokens is not None:
            out["max_tokens"] = min(self.max_tokens, self.max_line_tokens)
        return out

    def for_backend(self, llm: Any) -> RStarConfig:
        """This config with ``sampling_preset="auto"`` resolved for the model ``llm``."""
        if self.sampling_preset != "auto":
            return self
        preset = "fast" if top_p_is_costly(llm) else "paper"
        return self.model_copy(update={"sampling_preset": preset})
