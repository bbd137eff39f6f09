"""Prompts per action, the paper exemplar sets, TaskSpec and the reference answer extraction."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from pydantic import ValidationError

from langchain_rstar import RStarChain, RStarConfig, TaskSpec
from langchain_rstar import prompts as P
from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.answers.tasks import TASK_FAMILIES
from langchain_rstar.config import FAST_PROFILE
from langchain_rstar.prompts.task import task_spec
from langchain_rstar.sampling.sampler import SampleOutcome
from langchain_rstar.search.actions import run_action
from langchain_rstar.testing import ScriptedLLM
from scripts import QUESTION

# --------------------------------------------------------------------------------------
# The paper exemplar sets
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_paper_sets_have_the_reference_counts(family: str) -> None:
    spec = task_spec(family)
    assert (len(spec.cot), len(spec.one_step), len(spec.decompose), len(spec.rephrase)) == (
        8,
        4,
        4,
        8,
    )
    # the fast set is today's shared block
    assert len(spec.exemplars("shared")) == len(P.load_exemplars(family)["solve"])


def _all_solutions(family: str):
    spec = task_spec(family)
    yield from (*spec.cot, *spec.one_step, *spec.decompose)


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_every_paper_solution_states_an_answer_its_checker_reads(family: str) -> None:
    for checker in (get_checker(family), get_checker(family, extraction="reference")):
        for ex in _all_solutions(family):
            last = ex.steps[-1]
            text = last.a if last.kind == "sub" else last.text
            assert "The answer is" in text, ex.question
            assert checker.extract(text) is not None, (ex.question, text)
            assert checker.normalize(checker.extract(text)) is not None


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_decompositions_end_with_the_final_subquestion(family: str) -> None:
    for ex in task_spec(family).decompose:
        assert all(s.kind == "sub" for s in ex.steps)
        assert P.is_final_subquestion(ex.steps[-1].q)
        assert not any(P.is_final_subquestion(s.q) for s in ex.steps[:-1])
        assert all("The answer is" in s.a for s in ex.steps)


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_rephrasings_are_one_line_ending_in_the_question(family: str) -> None:
    for ex in task_spec(family).rephrase:
        assert "\n" not in ex.rephrased
        assert ex.rephrased.startswith("Condition 1:")
        assert re.search(r"Question: [^:]+\?$", ex.rephrased), ex.rephrased


_CALC = re.compile(
    r"(?<![\w.^{])((?:\d[\d,]*(?:\.\d+)?\s*[-+*/]\s*)+\d[\d,]*(?:\.\d+)?)\s*=\s*\$?(\d[\d,]*(?:\.\d+)?)"
)


def _num(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def _evaluate(expr: str) -> Fraction:
    tokens = re.findall(r"\d[\d,]*(?:\.\d+)?|[-+*/]", expr)
    # exact arithmetic with the usual precedence
    values: list[Fraction] = [_num(tokens[0])]
    ops: list[str] = []
    for op, num in zip(tokens[1::2], tokens[2::2], strict=True):
        if op in "*/":
            values[-1] = values[-1] * _num(num) if op == "*" else values[-1] / _num(num)
        else:
            ops.append(op)
            values.append(_num(num))
    total = values[0]
    for op, v in zip(ops, values[1:], strict=True):
        total = total + v if op == "+" else total - v
    return total


def _texts(family: str) -> list[str]:
    out = []
    for ex in _all_solutions(family):
        for s in ex.steps:
            out.append(s.a if s.kind == "sub" else s.text)
    return out


@pytest.mark.parametrize("family", TASK_FAMILIES)
def test_every_calculation_in_the_exemplars_is_right(family: str) -> None:
    checked = 0
    for text in _texts(family):
        for expr, result in _CALC.findall(text.replace("$", " ")):
            assert _evaluate(expr) == _num(result), f"{expr} = {result} in {text!r}"
            checked += 1
    assert checked >= {"arithmetic": 39, "math": 3, "yesno": 3}[family]
    if family == "arithmetic":  # every equation of the family is a checked calculation
        assert checked == sum(t.count("=") for t in _texts(family))


def _latex_to_python(tex: str) -> str:
    t = re.sub(r"\\binom\{(\d+)\}\{(\d+)\}", r"comb(\1,\2)", tex)
    for _ in range(3):
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", t)
        t = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", t)
    t = t.replace("\\cdot", "*").replace("^", "**").replace("{", "(").replace("}", ")")
    return re.sub(r"\)\(", ")*(", t.replace("\\pi", "*pi"))


def test_every_numeric_equation_in_the_math_exemplars_holds() -> None:
    env = {"comb": math.comb, "sqrt": math.sqrt, "pi": math.pi, "__builtins__": {}}
    checked = 0
    for text in _texts("math"):
        for seg in re.findall(r"\$([^$]*)\$", text):
            bare = re.sub(r"\\(frac|cdot|binom|sqrt|pi)", "", seg)
            if "=" not in seg or re.search(r"[a-zA-Z]", bare):
                continue  # an equation with unknowns or a congruence: read by hand
            values = [eval(_latex_to_python(side), env) for side in seg.split("=")]  # noqa: S307
            assert all(abs(v - values[0]) < 1e-9 for v in values), (seg, values)
            checked += 1
    assert checked >= 20


def test_arithmetic_answers_follow_from_the_last_calculation() -> None:
    checker = get_checker("arithmetic")
    for ex in _all_solutions("arithmetic"):
        last = ex.steps[-1]
        text = last.a if last.kind == "sub" else last.text
        calcs = _CALC.findall(text.replace("$", " "))
        assert calcs, text
        assert checker.equivalent(checker.extract(text), calcs[-1][1]), text


def test_calculation_checker_catches_a_wrong_sum() -> None:
    ((expr, result),) = _CALC.findall("so 60 - 17 = 44 pencils")
    assert _evaluate(expr) != _num(result)
    assert _evaluate("2 * 365 * 80") == 58400 and _evaluate("150 / 2") == 75


# --------------------------------------------------------------------------------------
# Which exemplars each action's prompt shows
# --------------------------------------------------------------------------------------


def _root() -> dict:
    return {"id": "0", "parent": None, "type": "root", "depth": 0, "text": QUESTION}


def _sub() -> dict:
    return {
        "id": "0/A3.0",
        "parent": "0",
        "type": "subquestion",
        "depth": 1,
        "subquestion": "How many apples are in the bags?",
        "text": "3 * 4 = 12. The answer is 12.",
    }


def _prompts(action: str, path: list[dict], cfg: RStarConfig) -> list[str]:
    task = {
        "node_id": path[-1]["id"],
        "action": action,
        "question": QUESTION,
        "path": path,
        "rollout": 0,
        "config": cfg.model_dump(),
    }
    gen = run_action(action, task, cfg, get_checker("arithmetic"))  # type: ignore[arg-type]
    prompts: list[str] = []
    call = next(gen)
    try:
        while True:
            prompts.extend(call.prompts)
            call = gen.send(
                SampleOutcome(texts=[[" How many? The answer is 1."]] * len(call.prompts))
            )
    except StopIteration:
        return prompts


@pytest.mark.parametrize(
    ("action", "path", "family"),
    [
        ("A1", [_root()], "one_step"),
        ("A2", [_root()], "cot"),
        ("A3", [_root()], "decompose"),
        ("A4", [_root(), _sub()], "cot"),  # paper A4 re-solves with CoT (a4_mode="resolve")
    ],
)
def test_paper_set_shows_each_action_its_own_family(action, path, family) -> None:
    spec = task_spec("arithmetic")
    others = {"cot", "one_step", "decompose"} - {family}
    for prompt in _prompts(action, path, RStarConfig()):
        assert prompt.startswith(spec.instructions[family])
        shown = {ex.question for ex in spec.exemplars(family)}
        assert all(f"Question: {q}\n" in prompt for q in shown)
        for other in others:
            assert not any(
                f"Question: {ex.question}\n" in prompt
                for ex in spec.exemplars(other)
                if ex.question not in shown
            )
    # the fast set: the one shared block, whatever the action
    for prompt in _prompts(action, path, RStarConfig.fast()):
        assert prompt.startswith(P.fewshot_block("arithmetic", exemplar_set="fast"))


def test_paper_rephrase_prompt_shows_eight_examples_fast_two() -> None:
    paper = _prompts("A5", [_root()], RStarConfig())[0]
    fast = _prompts("A5", [_root()], RStarConfig.fast())[0]
    assert paper.count("Rephrased question:") == 9 and fast.count("Rephrased question:") == 3
    assert paper.endswith(f"Question: {QUESTION}\nRephrased question:")


def test_discriminator_prompt_follows_the_exemplar_set() -> None:
    paper = P.completion_prompt("yesno", "Q?", "Step 1:", exemplar_set="paper")
    assert paper.startswith(task_spec("yesno").instructions["cot"])
    assert paper.endswith("Question: Q?\nStep 1:")
    fast = P.completion_prompt("yesno", "Q?", "Step 1:")
    assert fast == P.solve_prefix("yesno", "Q?") + "Step 1:"
    with pytest.raises(ValueError, match="unknown exemplar set"):
        P.solve_prefix("yesno", "Q?", exemplar_set="huge")


def test_fast_profile_keeps_todays_prompts_and_extraction() -> None:
    assert FAST_PROFILE["exemplar_set"] == "fast"
    assert FAST_PROFILE["answer_extraction"] == "marker"
    paper, fast = RStarConfig(), RStarConfig.fast()
    assert (paper.exemplar_set, paper.answer_extraction) == ("paper", "reference")
    assert (fast.exemplar_set, fast.answer_extraction) == ("fast", "marker")
    # a field given explicitly wins over the profile
    assert RStarConfig.fast(answer_extraction="reference").answer_extraction == "reference"


# --------------------------------------------------------------------------------------
# Reference answer extraction
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "text", "marker", "reference"),
    [
        # the reference reads the FIRST number after "answer is"; the marker rule the last answer
        ("arithmetic", "The answer is 5. No wait, the answer is 6.", "6", "5"),
        # no statement: the reference takes the last number, the marker rule finds nothing
        ("arithmetic", "Step 1: 2 + 3 = 5 and 5 * 2 = 10 apples", None, "10"),
        ("arithmetic", "The answer is $1,200.", "1200", "1200"),
        ("math", "The answer is \\boxed{5}. Or the answer is \\boxed{6}.", "6", "5"),
        ("math", "so we get \\boxed{\\frac{1}{2}} in the end", "1/2", "1/2"),
        ("yesno", "The answer is no. On reflection the answer is yes.", "yes", "no"),
        ("yesno", "Penguins cannot fly, so no.", None, "no"),
    ],
)
def test_reference_extraction_against_marker(family, text, marker, reference) -> None:
    m = get_checker(family)
    r = get_checker(family, extraction="reference")
    assert r.extraction == "reference" and m.extraction == "marker"
    got_m, got_r = m.extract(text), r.extract(text)
    if marker is None:
        assert got_m is None
    else:
        assert m.equivalent(got_m, marker), got_m
    assert r.equivalent(got_r, reference), got_r


def test_unknown_extraction_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown extraction"):
        get_checker("arithmetic", extraction="first")
    with pytest.raises(ValidationError):
        RStarConfig(answer_extraction="first")


def _a1_children(cfg: RStarConfig, samples: list[str]) -> list[dict]:
    task = {
        "node_id": "0",
        "action": "A1",
        "question": QUESTION,
        "path": [_root()],
        "rollout": 0,
        "config": cfg.model_dump(),
    }
    checker = get_checker(cfg.task, extraction=cfg.answer_extraction)
    gen = run_action("A1", task, cfg, checker)  # type: ignore[arg-type]
    next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.send(SampleOutcome(texts=[samples]))
    return stop.value.value["children"]


def test_reference_extraction_a1_step_states_an_answer_only_with_answer_is() -> None:
    samples = [" Ann has 3 * 4 = 12 apples.", " 12 - 2 = 10. The answer is 10.", " 3 + 4 = 7"]
    for cfg in (RStarConfig(), RStarConfig.fast()):
        kids = {k["text"]: k for k in _a1_children(cfg, samples)}
        assert kids["12 - 2 = 10. The answer is 10."]["answer"] == "10"
        # a plain calculation is a step, not an answer, under both rules
        assert kids["Ann has 3 * 4 = 12 apples."]["answer"] is None
        assert kids["3 + 4 = 7"]["answer"] is None


def test_paper_config_searches_with_the_reference_extraction() -> None:
    # every sample states two answers; the reference rule votes for the first
    llm = ScriptedLLM(default=[" 3 * 4 = 12. The answer is 12. Wait, the answer is 10."])
    cfg = dict(num_rollouts=2, disable_a5=True, verify=False, max_depth=1)
    paper = RStarChain(generator=llm, config=RStarConfig(**cfg), discriminator=False)
    assert paper.invoke(QUESTION).answer == "12"


# --------------------------------------------------------------------------------------
# TaskSpec: a custom task end to end
# --------------------------------------------------------------------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class WeekdayChecker(AnswerChecker):
    """Answers are weekday names; "Mon", "monday" and "MONDAY." are the same answer."""

    task = "weekday"

    def normalize(self, answer: str | None) -> str | None:
        words = re.findall(r"[a-z]+", (answer or "").lower())
        for word in reversed(words):
            for day in WEEKDAYS:
                if len(word) >= 3 and day.startswith(word):
                    return day
        return None


def _weekday_spec(name: str = "weekday-test") -> TaskSpec:
    return TaskSpec(
        name=name,
        instruction="Answer each calendar puzzle with a day of the week.",
        checker=WeekdayChecker,
        cot=[
            {
                "question": "Today is Monday. What day is it in 2 days?",
                "steps": ["Two days after Monday is Wednesday. The answer is Wednesday."],
            }
        ],
        decompose=[
            {
                "question": "Today is Friday. What day was it 3 days ago?",
                "steps": [
                    ("What day was yesterday?", "Thursday. The answer is Thursday."),
                    (
                        "Now we can answer the question: What day was it 3 days ago?",
                        "Two days before Thursday is Tuesday. The answer is Tuesday.",
                    ),
                ],
            }
        ],
        rephrase=[
            {
                "question": "Today is Monday. What day is it in 2 days?",
                "rephrased": "Condition 1: Today is Monday. Question: What day is it in 2 days?",
            }
        ],
    )


DATE_Q = "Today is Saturday. What day of the week will it be in 10 days?"


def test_custom_task_spec_runs_end_to_end_with_its_checker() -> None:
    spec = _weekday_spec()
    seen: list[str] = []

    def respond(prompt: str, n: int) -> list[str]:
        seen.append(prompt)
        if prompt.endswith("Rephrased question:"):
            return [" Condition 1: Today is Saturday. Question: What day is it in 10 days?"] * n
        if prompt.rstrip().endswith("Sub-question 1:"):
            return [" Now we can answer the question: What day is it in 10 days?"] * n
        # mixed spellings of the same answer, and a wrong one
        return [
            " 10 = 7 + 3, three days after Saturday. The answer is TUESDAY.",
            " The answer is Tue.",
            " The answer is Monday.",
        ][: max(n, 1)] * n

    llm = ScriptedLLM(responder=respond)
    cfg = RStarConfig(task=spec, num_rollouts=6, seed=1)
    assert cfg.task == "weekday-test"
    result = RStarChain(generator=llm, config=cfg, discriminator=False).invoke(DATE_Q)
    assert WeekdayChecker().equivalent(result.answer, "tuesday"), result.answer
    # the model saw the spec's instruction and exemplars, not the arithmetic ones
    assert seen and all("calendar puzzle" in p or "Condition 1" in p for p in seen)
    assert not any("pencils" in p for p in seen)
    # the spec's checker is what votes: "TUESDAY" and "Tue" are one answer
    assert isinstance(get_checker("weekday-test"), WeekdayChecker)


def test_task_spec_config_is_plain_data_and_validated() -> None:
    spec = _weekday_spec("weekday-dump")
    cfg = RStarConfig(task=spec)
    dumped = cfg.model_dump()
    assert dumped["task"] == "weekday-dump"
    assert RStarConfig(**dumped) == cfg
    assert RStarConfig.model_validate_json(cfg.model_dump_json()).task_spec() is spec
    with pytest.raises(ValidationError, match="unknown task 'not-registered'"):
        RStarConfig(task="not-registered")
    with pytest.raises(ValueError, match="taken by a built-in task"):
        _weekday_spec("gsm8k").register()
    with pytest.raises(ValidationError, match="checker must be"):
        TaskSpec(name="x", instruction="i", checker=3, cot=[{"question": "q", "steps": ["s"]}])
    with pytest.raises(ValidationError):
        TaskSpec(name="x", instruction="i", checker=WeekdayChecker, cot=[])


def test_re_registering_a_name_replaces_the_spec_and_its_checker() -> None:
    first = _weekday_spec("weekday-again").register()
    assert RStarConfig(task="weekday-again").task_spec() is first

    class Other(WeekdayChecker):
        pass

    second = first.model_copy(update={"checker": Other})
    RStarConfig(task=second)
    assert isinstance(get_checker("weekday-again"), Other)
    assert task_spec("weekday-again") is second


def test_builtins_are_task_specs() -> None:
    for family in TASK_FAMILIES:
        spec = task_spec(family)
        assert isinstance(spec, TaskSpec) and spec.name == family
        assert spec.get_checker("reference").extraction == "reference"
        assert RStarConfig(task=spec).task == family


def test_custom_task_example_runs_scripted(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "custom_task.py"
    spec = importlib.util.spec_from_file_location("rstar_example_custom_task", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result = module.main(["--scripted", "--rollouts", "6"])
    checker = module.WeekdayChecker()
    assert checker.normalize(result.answer) == "tuesday"
    # "Tue", "Tuesday" and "TUESDAY" were one answer in the vote
    spellings = {c.answer for c in result.candidates if checker.normalize(c.answer) == "tuesday"}
    assert len(spellings) >= 2
    assert result.verification.mode != "none"
    assert "Answer:   " in capsys.readouterr().out


def test_task_spec_fallbacks_and_fast_set() -> None:
    spec = TaskSpec(
        name="fallbacks",
        instruction="Solve it.",
        instructions={"decompose": "Split it."},
        checker=WeekdayChecker(),
        cot=[{"question": f"q{i}?", "steps": [f"s{i}. The answer is Monday."]} for i in range(3)],
    ).register()
    assert spec.exemplars("one_step") == spec.cot == spec.exemplars("decompose")
    assert spec.exemplars("shared") == spec.cot[:2]
    one = P.one_step_prompt("fallbacks", "Q?", [_root()], exemplar_set="paper")
    assert one.startswith("Solve it.\n\nQuestion: q0?\nStep 1: s0.") and "q2?" in one
    assert P.subquestion_prompt("fallbacks", "Q?", [_root()], exemplar_set="paper").startswith(
        "Split it."
    )
    fast = P.one_step_prompt("fallbacks", "Q?", [_root()], exemplar_set="fast")
    assert "q1?" in fast and "q2?" not in fast
    # no rephrase examples: A5 asks with the instruction only
    assert P.rephrase_prompt("fallbacks", "Q?", exemplar_set="paper").count("Question:") == 1
    # an instance checker is used as it is, whatever the extraction
    assert get_checker("fallbacks", extraction="reference") is spec.checker
    with pytest.raises(ValidationError, match="unknown instruction families"):
        TaskSpec(
            name="x",
            instruction="i",
            checker=WeekdayChecker,
            instructions={"a9": "?"},
            cot=[{"question": "q", "steps": ["s"]}],
        )
