"""Prompts of the five actions and the discriminator: one module per prompt.

* ``a1_one_step.py`` -- A1, the next single step.
* ``a2_remaining.py`` -- A2, all remaining steps (direct answer).
* ``a3_subquestion.py`` -- A3, the next sub-question and its answer.
* ``a4_reanswer.py`` -- A4, the last sub-question answered again.
* ``a5_rephrase.py`` -- A5, the question restated as its conditions.
* ``discriminator.py`` -- completing a masked candidate (mutual verification).
* ``_format.py`` -- the shared format (question, path lines) and the few-shot blocks.
* ``task.py`` -- :class:`TaskSpec`: instruction, exemplars per action family, checker.

The built-in exemplars are data, written for this package: ``prompts/<task>.json`` (the
``fast`` set: one shared block) and ``prompts/<task>_paper.json`` (the ``paper`` set, in the
rStar reference's counts: 8 step-by-step solutions, 4 one-step solutions, 4 decompositions,
8 rephrasings). ``RStarConfig.exemplar_set`` picks the set. This module
re-exports the names other modules use.
"""

from __future__ import annotations

from langchain_rstar.prompts._format import (
    EXEMPLAR_SETS,
    STOP_BLOCK,
    STOP_LINE,
    fewshot_block,
    load_exemplars,
    path_lines,
    path_question,
    solve_body,
    solve_prefix,
    step_number,
)
from langchain_rstar.prompts.a1_one_step import one_step_prompt
from langchain_rstar.prompts.a2_remaining import COT_OPENING, cot_prompt, remaining_prompt
from langchain_rstar.prompts.a3_subquestion import (
    FINAL_SUBQUESTION_PREFIX,
    is_final_subquestion,
    subanswer_prompt,
    subquestion_prompt,
)
from langchain_rstar.prompts.a4_reanswer import REANSWER_HINT, reanswer_prompt
from langchain_rstar.prompts.a5_rephrase import STOP_REPHRASE, rephrase_prompt
from langchain_rstar.prompts.discriminator import completion_prompt
from langchain_rstar.prompts.task import Exemplar, Rephrasing, TaskSpec, task_spec

__all__ = [
    "EXEMPLAR_SETS",
    "Exemplar",
    "Rephrasing",
    "TaskSpec",
    "fewshot_block",
    "task_spec",
    "COT_OPENING",
    "FINAL_SUBQUESTION_PREFIX",
    "cot_prompt",
    "REANSWER_HINT",
    "STOP_BLOCK",
    "STOP_LINE",
    "STOP_REPHRASE",
    "completion_prompt",
    "is_final_subquestion",
    "load_exemplars",
    "one_step_prompt",
    "path_lines",
    "path_question",
    "reanswer_prompt",
    "remaining_prompt",
    "rephrase_prompt",
    "solve_body",
    "solve_prefix",
    "step_number",
    "subanswer_prompt",
    "subquestion_prompt",
]
