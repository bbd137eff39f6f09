"""Configuration of an rStar search."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The backend contract owns this trait; re-exported here (old path) for the 0.1.x releases.
from langchain_rstar.llms.base import top_p_is_costly
from langchain_rstar.prompts.task import TaskSpec, task_spec

__all__ = [
    "CALL_TIMEOUT_BASE_S",
    "CALL_TIMEOUT_PER_TOKEN_S",
    "FAST_PROFILE",
    "PROFILES",
    "RStarConfig",
    "default_call_timeout",
    "top_p_is_costly",
]

#: The named search profiles (``RStarConfig.paper()``, ``RStarConfig.fast()``).
PROFILES = ("paper", "fast")

#: What ``profile="fast"`` changes against the defaults (which are the ``paper`` profile's:
#: the authors' reference code, minus its gold-answer leak). Each entry is one documented
#: deviation a user can also set alone; explicit fields always win over the profile.
FAST_PROFILE: dict[str, Any] = {
    # --- paper vs fast: verification (see the fields of the same names) ---
    "self_verify": False,
    "mask_unit": "step",
    "mask_cuts": "distinct",
    "verify_question": "path",
    "verify_dedupe": False,
    "verify_max_tokens": None,
    "verify_max_answer_chars": None,
    "final_score": "reward_x_confidence",
    # one shared 4-example block for every action, 2 rephrase examples (shorter prompts)
    "exemplar_set": "fast",
    # the last stated answer the family can read (the reference reads the first number
    # after "answer is", else the last number of the text)
    "answer_extraction": "marker",
    # generator (search/actions.py, search/candidates.py)
    "a1_answer_terminal": True,
    "dedupe_a1": True,
    "dedupe_a3": True,
    "a1_context": "path",
    "a2_mode": "continue",
    "a3_final_test": "prefix",
    "a4_mode": "line",
    "a2_votes": None,
    "a3_final_votes": None,
    "a1_max_tokens": None,
    "a2_max_tokens": None,
    "a3_max_tokens": None,
    "a4_max_tokens": None,
    "a5_max_tokens": None,
    "candidate_pool": "terminal",
    "vote_cache": True,
    "repetition_penalty": None,
}


#: The default per-call timeout (``call_timeout=None``) is ``CALL_TIMEOUT_BASE_S +
#: CALL_TIMEOUT_PER_TOKEN_S * max_tokens`` of the call (572 s at the default 256 tokens, 316 s
#: for a 128-token one-line action): a minute for queueing and the prompt, then 2 s per token,
#: a rate (0.5 token/s per sequence) no working backend is slower than -- the slowest measured
#: here, Gemma 3 270M on a busy 2-core CPU, decoded a step of a 6-sequence batch in 0.18 s.
#: Read at call time (tests shrink them).
CALL_TIMEOUT_BASE_S = 60.0
CALL_TIMEOUT_PER_TOKEN_S = 2.0


def default_call_timeout(max_tokens: int | None) -> float:
    """The per-call timeout used when ``RStarConfig.call_timeout`` is None (see
    :data:`CALL_TIMEOUT_BASE_S`); ``max_tokens`` None counts as 256."""
    tokens = 256 if max_tokens is None else max(int(max_tokens), 1)
    return CALL_TIMEOUT_BASE_S + CALL_TIMEOUT_PER_TOKEN_S * tokens


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
        False,
        description=(
            "Reuse samples already drawn in this search for an identical request (same "
            "prompt, stop strings and sampling parameters; at least as many samples). "
            "Off in 'paper' (the reference draws every vote afresh); on in 'fast'."
        ),
    )

    # --- paper vs fast: generator ----------------------------------------------------------
    # Defaults: the authors' reference code (run_src/MCTS_for_reasoning.py, rstar_utils.py,
    # do_eval.py at its GSM8K script settings). FAST_PROFILE holds today's cheaper values.
    a1_answer_terminal: bool = Field(
        False,
        description=(
            "Whether an A1 step that states an answer ends its trajectory. False ('paper'): "
            "reward 0, the node keeps being expanded, and it still counts as a candidate "
            "solution. True ('fast'): terminal, reward = share of the A1 samples agreeing."
        ),
    )
    dedupe_a1: bool = Field(
        False,
        description=(
            "Merge identical A1 samples into one child. False ('paper'): every sample is a "
            "child of its own, so a repeated step counts twice. True: 'fast'."
        ),
    )
    a1_context: Literal["reference", "path"] = Field(
        "reference",
        description=(
            "What the A1 prompt shows of a path with sub-questions. 'reference' ('paper'): as "
            "the authors' code, directly below a sub-question its sub-answers as steps (the "
            "sub-questions left out), below later one-step thoughts only those thoughts. "
            "'path' ('fast'): the whole path, sub-questions and answers included."
        ),
    )
    dedupe_a3: bool = Field(
        False,
        description=(
            "Merge identical A3 sub-questions into one child. False ('paper'): every proposed "
            "sub-question is a child of its own with its own answer votes, as the reference "
            "keeps them. True: 'fast'."
        ),
    )
    a2_mode: Literal["regenerate", "continue"] = Field(
        "regenerate",
        description=(
            "'regenerate' ('paper'): A2 writes a whole solution from a chain-of-thought "
            "few-shot prompt, the path's steps given as a hint. 'continue' ('fast'): A2 "
            "continues the path after 'Step k:'."
        ),
    )
    a3_final_test: Literal["prefix_or_last_sentence", "prefix"] = Field(
        "prefix_or_last_sentence",
        description=(
            "When a sub-question answers the question. 'prefix_or_last_sentence' ('paper'): "
            "it contains 'Now we can answer' or the question's last sentence. 'prefix' "
            "('fast'): it starts with 'Now we can answer the question'."
        ),
    )
    a4_mode: Literal["resolve", "line"] = Field(
        "resolve",
        description=(
            "'resolve' ('paper'): A4 solves 'question context + last sub-question' from "
            "scratch with the chain-of-thought prompt (earlier sub-answers not shown). "
            "'line' ('fast'): a one-line re-answer after the earlier sub-questions."
        ),
    )
    a2_votes: int | None = Field(
        32, ge=1, le=256, description="Samples of the A2 vote. None: num_votes ('fast')."
    )
    a3_votes: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Samples of the vote on an intermediate sub-answer. None: num_votes.",
    )
    a3_final_votes: int | None = Field(
        32,
        ge=1,
        le=256,
        description="Samples of the vote on a final sub-answer. None: a3_votes ('fast').",
    )
    a4_votes: int | None = Field(
        None, ge=1, le=256, description="Samples of the A4 vote. None: num_votes."
    )
    a1_max_tokens: int | None = Field(
        256, ge=1, le=32_768, description="Token cap of an A1 step. None: the line cap ('fast')."
    )
    a2_max_tokens: int | None = Field(
        1024, ge=1, le=32_768, description="Token cap of an A2 sample. None: max_tokens ('fast')."
    )
    a3_max_tokens: int | None = Field(
        512,
        ge=1,
        le=32_768,
        description=(
            "Token cap of a sub-question's answer (the sub-question itself keeps the line "
            "cap, as the reference's 128). None: the line cap ('fast')."
        ),
    )
    a4_max_tokens: int | None = Field(
        1024, ge=1, le=32_768, description="Token cap of an A4 sample. None: the line cap ('fast')."
    )
    a5_max_tokens: int | None = Field(
        512,
        ge=1,
        le=32_768,
        description="Token cap of an A5 rephrasing. None: the line cap ('fast').",
    )
    candidate_pool: Literal["tree_and_rollouts", "terminal"] = Field(
        "tree_and_rollouts",
        description=(
            "The generator's candidates and its majority (generator@maj). "
            "'tree_and_rollouts' ('paper'): every solution node of the final tree (the "
            "first on each branch) plus each rollout's end node that states an answer, "
            "counted by frequency. 'terminal' ('fast'): each solution node once (with "
            "a1_answer_terminal all of them are terminal), weighted by its confidence."
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
            "Which sampling filters are sent (unrelated to the search 'profile', which "
            "does not change it). 'paper': temperature, top_k and top_p as set (the "
            "paper's 0.8 / 40 / 0.95). 'fast': the same without top_p, the one filter that "
            "sorts the whole vocabulary for every token on local CPU backends (about 5x "
            "slower decoding with Gemma's 262k vocabulary). 'auto': 'fast' on a backend "
            "whose top-p is costly (see top_p_is_costly), else 'paper'. VLLMEngine and "
            "TransformersLLM apply top-p inside the top-k shortlist by default (same tokens, "
            "top-k cost), so 'auto' keeps the paper's filters there."
        ),
    )
    max_tokens: int = Field(
        256,
        ge=1,
        le=32_768,
        description=(
            "Token cap for one step (A2 writes all remaining steps) where no per-action cap "
            "(a1_max_tokens .. a5_max_tokens) is set; those win where set."
        ),
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
    repetition_penalty: float | None = Field(
        1.1,
        gt=0.0,
        le=5.0,
        description=(
            "Repetition penalty of every sample (the reference's vLLM setting 1.1; 'paper'). "
            "None: not sent ('fast'). Sent to VLLMEngine and TransformersLLM as a keyword, "
            "to OpenAI-compatible servers in extra_body (vLLM's server reads it there); "
            "other LangChain models do not get it (sampling/plain.py routes temperature, "
            "top-k/p, min-p and the token cap only)."
        ),
    )
    seed: int | None = Field(0, description="Seed for tree decisions and sampling.")

    # --- mutual verification (discriminator) ---------------------------------------------
    verify: bool = Field(
        True,
        description=(
            "Run mutual verification. False opts out whatever models are given (the answer "
            "is the generator's majority)."
        ),
    )
    num_masks: int = Field(4, ge=1, le=32)
    mask_low: float = Field(0.2, ge=0.0, le=1.0)
    mask_high: float = Field(0.5, ge=0.0, le=1.0)

    # --- paper vs fast: verification -----------------------------------------------------
    # Defaults are the reference code's (run_src/do_discriminate.py and
    # rstar_utils.mask_solution_trace); FAST_PROFILE holds the package's earlier behaviour.
    self_verify: bool = Field(
        True,
        description=(
            "With no discriminator given, the generator verifies its own candidates (paper; "
            "the same model is the honest default for 'a second SLM of similar ability'). "
            "False (fast): no discriminator means no verification. discriminator=False or "
            "verify=False always opts out."
        ),
    )
    mask_unit: Literal["step", "word"] = Field(
        "word",
        description=(
            "What a masked prefix counts: words of the candidate's solution (paper) or its "
            "steps (fast; the prefix ends with the next step's 'Step k:' cue)."
        ),
    )
    mask_cuts: Literal["ceil", "distinct"] = Field(
        "ceil",
        description=(
            "'ceil' (paper): exactly num_masks prefixes at mask_low..mask_high of the length, "
            "each rounded up, duplicates kept (3 words -> 1,1,2,2; 10 -> 2,3,4,5). 'distinct' "
            "(fast): the same fractions rounded to nearest, kept below the length, duplicates "
            "merged (often 2 prefixes for a short candidate)."
        ),
    )
    verify_question: Literal["original", "path"] = Field(
        "original",
        description=(
            "The question the discriminator sees before a masked prefix: the user's question "
            "(paper) or the candidate's last rephrasing, if any (fast)."
        ),
    )
    verify_dedupe: bool = Field(
        True,
        description=(
            "Verify each distinct solution text once and count its copies (paper: the "
            "reference groups identical traces and weights them by frequency); False (fast): "
            "every candidate is verified on its own."
        ),
    )
    verify_max_tokens: int | None = Field(
        512,
        ge=1,
        le=32_768,
        description="Token cap of a discriminator completion (paper 512); None: max_tokens.",
    )
    verify_max_answer_chars: int | None = Field(
        100,
        ge=1,
        description=(
            "Candidates whose answer is longer are neither verified nor counted in the final "
            "pick (the reference drops them); None keeps every candidate."
        ),
    )
    final_score: Literal[
        "confidence_plus_survival", "frequency_plus_survival", "reward_x_confidence"
    ] = Field(
        "confidence_plus_survival",
        description=(
            "How the surviving (mutually consistent) candidates pick the answer. Both "
            "'*_plus_survival' rules score an answer by its share among the survivors plus "
            "its survival rate (survivors with it / candidates with it), copies counted; the "
            "share weights each copy by its answer confidence ('confidence_plus_survival', "
            "the reference code's default, rc_criteria='reward') or by 1 "
            "('frequency_plus_survival', rc_criteria='freq'); with no survivor the answer "
            "with the largest weight among all candidates wins. 'reward_x_confidence' (fast; "
            "the paper's text): survivors' reward x confidence summed per answer, with no "
            "survivor the generator majority stands."
        ),
    )
    num_completions: int = Field(1, ge=1, le=64, description="Completions per masked prefix.")
    verify_temperature: float = Field(1.0, ge=0.0, le=5.0)
    consistency: Literal["loose", "mid", "strict", "maj"] = "mid"
    skip_threshold: float = Field(
        0.999,
        ge=0.0,
        le=1.0,
        description=(
            "Skip verification when the top answer's confidence is above this. With "
            "final_score confidence_plus_survival ('paper') that confidence is the "
            "reference's: its candidates' copies weighted by their answer confidence over all "
            "copies (by 1 with frequency_plus_survival); with reward_x_confidence ('fast') the "
            "generator majority's confidence."
        ),
    )
    max_candidates: int | None = Field(
        None, ge=1, description="Verify at most this many candidates (best first)."
    )

    # --- reliability and limits --------------------------------------------------------
    # Limits are checked between waves (every ``rollout_batch`` rollouts): the wave in
    # flight finishes, so a search can overshoot max_nodes / max_total_tokens by one wave's
    # expansions; max_wall_seconds also cuts the model calls in flight at the deadline. A
    # hit limit ends the search with stop_reason "limit" and its name in limits_hit.
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
            "retried). None (default): derived from the call's max_tokens, 60 s + 2 s per "
            "token (572 s at max_tokens=256; see default_call_timeout), so a hung backend "
            "never hangs a search. float('inf'): no limit."
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
            "Wall time of the search per question: model calls still running at the "
            "deadline are abandoned (recorded as errors, not as backend failures) and the "
            "search returns its partial tree with limits_hit; verification is not counted."
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
        if self.repetition_penalty is not None:
            out["repetition_penalty"] = self.repetition_penalty
        return out

    def line_sampling_kwargs(self) -> dict[str, Any]:
        """:meth:`sampling_kwargs` for one-line actions (``max_line_tokens`` cap)."""
        out = self.sampling_kwargs()
        if self.max_line_tokens is not None:
            out["max_tokens"] = min(self.max_tokens, self.max_line_tokens)
        return out

    def action_sampling_kwargs(self, kind: str) -> dict[str, Any]:
        """Sampling parameters of one kind of generator request.

        ``kind`` is ``A1``, ``A2``, ``A3_ask`` (proposing sub-questions), ``A3`` (answering
        them), ``A4`` or ``A5``. A per-action cap (``a1_max_tokens`` ..) wins where set;
        otherwise A2 gets ``max_tokens`` and the one-line actions the line cap (today's
        behaviour, the ``fast`` profile).
        """
        cap = {
            "A1": self.a1_max_tokens,
            "A2": self.a2_max_tokens,
            "A3": self.a3_max_tokens,
            "A4": self.a4_max_tokens,
            "A5": self.a5_max_tokens,
        }.get(kind)
        out = self.sampling_kwargs() if kind == "A2" else self.line_sampling_kwargs()
        if cap is not None:
            out["max_tokens"] = cap
        return out

    def votes_for(self, kind: str) -> int:
        """Samples of one vote: ``A2``, ``A3`` (intermediate sub-answer), ``A3_final``
        (the answer of a final sub-question) or ``A4``; None fields fall back to
        ``num_votes`` (``A3_final`` to the ``A3`` count first)."""
        if kind == "A3_final":
            return self.a3_final_votes or self.a3_votes or self.num_votes
        value = {"A2": self.a2_votes, "A3": self.a3_votes, "A4": self.a4_votes}[kind]
        return value or self.num_votes

    def for_backend(self, llm: Any) -> RStarConfig:
        """This config with ``sampling_preset="auto"`` resolved for the model ``llm``."""
        if self.sampling_preset != "auto":
            return self
        preset = "fast" if top_p_is_costly(llm) else "paper"
        return self.model_copy(update={"sampling_preset": preset})
