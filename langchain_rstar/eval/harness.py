"""Evaluation harness: run a method over a dataset into a resumable JSONL file.

Four methods share one model, one prompt format and one accounting (every model call goes
through :class:`~langchain_rstar.sampling.sampler.Sampler`):

* ``cot``: greedy few-shot chain of thought (:class:`~.baselines.ChainOfThought`);
* ``sc``: self-consistency, majority of N samples (:class:`~.baselines.SelfConsistency`);
* ``rstar-gen``: the rStar search without a discriminator (generator weighted majority);
* ``rstar``: the search with mutual verification (the generator verifies itself unless
  another discriminator is given).

:func:`run_evaluation` appends one JSON line per finished question (flushed and fsync'ed)
and skips questions already in the file, so rerunning the same command resumes. On start
a trailing partial line (a write cut by ``kill -9``) is truncated away. A question whose
model calls failed is *not* written (a rerun retries it); a dead backend stops the run.

Record fields: ``id``, ``method``, ``label``, ``dataset``, ``task``, ``question``,
``prediction``, ``gold``, ``correct``, ``covered`` (gold among the method's answers:
pass@N for ``sc``, any candidate for ``rstar``), ``confidence``, ``answers`` (answer ->
count), ``usage`` (``llm_calls``, ``prompt_tokens``, ``completion_tokens``, ``samples``,
``seconds``, ``model_seconds``, ``tokens_estimated``), ``trajectory`` (step texts),
``error`` (a question that cannot be run, e.g. empty), ``call_errors``, ``model``,
``settings``, ``extra`` (for ``rstar``: ``generator_answer`` and ``generator_correct``, the
same search's answer before verification), ``finished_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from langchain_core.language_models import BaseLanguageModel

from langchain_rstar import prompts as P
from langchain_rstar.answers import AnswerChecker, get_checker
from langchain_rstar.chain import RStarChain, validate_question
from langchain_rstar.config import RStarConfig
from langchain_rstar.errors import (
    BackendDeadError,
    OutputLockedError,
    RStarBackendError,
    SettingsMismatchError,
)
from langchain_rstar.eval.baselines import (
    ChainOfThought,
    MethodOutput,
    QuestionFailed,
    SelfConsistency,
)
from langchain_rstar.llms._session import session
from langchain_rstar.result import RStarResult, Step

__all__ = [
    "ASYNC_CONCURRENCY",
    "METHODS",
    "BackendDeadError",
    "EvalSummary",
    "Method",
    "OutputLockedError",
    "QuestionFailed",
    "RStarMethod",
    "Runner",
    "SettingsMismatchError",
    "build_method",
    "check_resume",
    "duplicate_ids",
    "grade",
    "make_record",
    "open_results",
    "read_records",
    "render_trajectory",
    "run_evaluation",
]

#: From this ``concurrency`` on, a method with ``asolve`` (``rstar``, ``rstar-gen``) runs its
#: searches as asyncio tasks on one event loop instead of one thread each. Why 32: below it
#: threads cost nothing noticeable; the expected scale-out setting is 32 x replicas searches
#: in flight, and hundreds of threads (8 MiB stacks, GIL hand-offs between them) are what
#: one event loop avoids. ``cot`` and ``sc`` have no async path and stay on threads.
ASYNC_CONCURRENCY = 32

#: The methods :func:`build_method` knows.
METHODS = ("cot", "sc", "rstar-gen", "rstar")


#: Config fields that change how a run copes with failures, not what it measures: a resumed
#: run may change them.
_OPERATIONAL = ("max_retries", "retry_backoff", "call_timeout", "max_question_chars")


class Method(Protocol):
    """What the harness needs from a method."""

    name: str

    def solve(self, question: str, task: str | None = None) -> MethodOutput: ...

    def settings(self) -> dict[str, Any]: ...


class Runner(Protocol):
    """Runs questions elsewhere and hands every outcome back to the writing process.

    Called once with the unfinished examples and the harness's callbacks:
    ``prepared(ex) -> (task, question, error)`` (an error means: call
    ``write_invalid(ex, task, error)`` and run nothing), then ``finish(ex, task, outcome)``
    exactly once per question run, in this process, where ``outcome`` is
    ``(MethodOutput, seconds)`` or the exception the question ended with
    (:class:`BackendDeadError` stops the run: ``summary.dead`` is set; submit nothing
    more once it is).
    """

    def __call__(
        self,
        todo: Sequence[Any],
        prepared: Callable[[Any], tuple[str, str | None, str | None]],
        write_invalid: Callable[[Any, str, str], None],
        finish: Callable[[Any, str, Any], None],
        summary: EvalSummary,
    ) -> None: ...


# --------------------------------------------------------------------------------------
# rStar as a method
# --------------------------------------------------------------------------------------
def render_trajectory(steps: Sequence[Step | Mapping[str, Any]]) -> list[str]:
    """An rStar trajectory as one string per step, in the prompts' own format."""
    out: list[str] = []
    path: list[dict[str, Any]] = []
    for step in steps:
        record = step.model_dump() if isinstance(step, Step) else dict(step)
        if record.get("type") == "rephrase":
            out.append(f"Rephrased question: {' '.join(str(record.get('text', '')).split())}")
        else:
            path.append(record)
    return out + P.path_lines(path)


class RStarMethod:
    """The rStar search as an evaluation method (``rstar`` or ``rstar-gen``).

    Args:
        generator: the generator model.
        config: the search configuration.
        verify: run mutual verification (``rstar``) or not (``rstar-gen``).
        discriminator: the verifying model; None uses the generator.
    """

    def __init__(
        self,
        generator: BaseLanguageModel,
        config: RStarConfig | None = None,
        *,
        verify: bool = True,
        discriminator: BaseLanguageModel | None = None,
    ) -> None:
        self.config = config or RStarConfig()
        self.verify = verify
        self.name = "rstar" if verify else "rstar-gen"
        disc: BaseLanguageModel | bool | None
        disc = (discriminator if discriminator is not None else True) if verify else False
        self.chain = RStarChain(generator=generator, discriminator=disc, config=self.config)
        self._by_task: dict[str, Any] = {self.config.task: self.chain}

    def settings(self) -> dict[str, Any]:
        keep = self.config.model_dump(exclude_defaults=True)
        keep.update(
            task=self.config.task,
            num_rollouts=self.config.num_rollouts,
            num_votes=self.config.num_votes,
            max_tokens=self.config.max_tokens,
        )
        for key in ("verify", *_OPERATIONAL):
            keep.pop(key, None)
        return keep

    def _chain(self, task: str | None) -> Any:
        task = task or self.config.task
        if task not in self._by_task:
            self._by_task[task] = self.chain.with_overrides(task=task)
        return self._by_task[task]

    def solve(self, question: str, task: str | None = None) -> MethodOutput:
        return self._output(self._chain(task).invoke(question), task)

    async def asolve(self, question: str, task: str | None = None) -> MethodOutput:
        """:meth:`solve` on the running event loop (``ainvoke``): the high-concurrency path."""
        return self._output(await self._chain(task).ainvoke(question), task)

    def _output(self, result: RStarResult, task: str | None) -> MethodOutput:
        fatal = [e for e in result.errors if e.get("fatal") or e.get("kind") == "backend_dead"]
        if result.stop_reason == "backend_dead" or fatal:
            last = (fatal or result.errors or [{"error": "backend dead"}])[-1]
            raise BackendDeadError(f"{self.name}: {last.get('error', 'backend dead')}")
        failed = [e for e in result.errors if not e.get("warning")]
        if result.answer is None and not result.candidates and failed:
            last = failed[-1].get("error", "model calls failed")
            raise QuestionFailed(
                f"{self.name}: no candidate; {len(failed)} model call(s) failed: {last}",
                result.errors,
            )
        checker = get_checker(task or self.config.task)
        counts: dict[str, int] = {}
        for cand in result.candidates:
            if cand.answer is None:
                continue
            for rep in counts:
                if checker.equivalent(rep, cand.answer):
                    counts[rep] += 1
                    break
            else:
                counts[cand.answer] = 1
        u = result.usage
        return MethodOutput(
            prediction=result.answer,
            confidence=result.confidence,
            answers=counts,
            trajectory=render_trajectory(result.trajectory),
            usage={
                "llm_calls": u.llm_calls,
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "samples": u.samples,
                "model_seconds": round(u.model_seconds, 4),
                "tokens_estimated": u.tokens_estimated,
                "rollouts": u.rollouts,
                "nodes": u.nodes,
            },
            call_errors=len(failed),
            extra={
                "generator_answer": result.verification.generator_answer,
                "generator_confidence": result.verification.generator_confidence,
                "verification": result.verification.mode,
                "verified": result.verification.ran,
                "fell_back": result.verification.fell_back,
                "stop_reason": result.stop_reason,
                "limits_hit": list(result.limits_hit),
            },
        )


def build_method(
    name: str,
    generator: BaseLanguageModel,
    *,
    config: RStarConfig | None = None,
    discriminator: BaseLanguageModel | None = None,
    num_samples: int | None = None,
) -> Method:
    """Create a method by name (one of :data:`METHODS`) on the given model."""
    config = config or RStarConfig()
    if name == "cot":
        return ChainOfThought(generator, config)
    if name == "sc":
        return SelfConsistency(generator, config, num_samples=num_samples)
    if name == "rstar-gen":
        return RStarMethod(generator, config, verify=False)
    if name == "rstar":
        return RStarMethod(generator, config, verify=True, discriminator=discriminator)
    raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")


# --------------------------------------------------------------------------------------
# Examples and records
# --------------------------------------------------------------------------------------
def _get(example: Any, key: str, default: Any = None) -> Any:
    if isinstance(example, Mapping):
        return example.get(key, default)
    return getattr(example, key, default)


def grade(
    prediction: str | None, gold: str | None, answers: Iterable[str], checker: AnswerChecker
) -> tuple[bool, bool]:
    """``(correct, covered)``: prediction equals gold; gold is among ``answers``."""
    if gold is None:
        return False, False
    correct = prediction is not None and checker.equivalent(prediction, gold)
    covered = correct or any(checker.equivalent(a, gold) for a in answers)
    return correct, covered


def make_record(
    example: Any,
    method: Method,
    output: MethodOutput | None,
    *,
    dataset: str,
    seconds: float,
    task: str,
    model: str = "",
    label: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One JSON-ready result line."""
    checker = get_checker(task)
    gold = _get(example, "answer")
    if gold is None and _get(example, "solution") is not None:
        gold = checker.gold(str(_get(example, "solution")))
    gold = None if gold is None else str(gold)
    out = output or MethodOutput(prediction=None)
    correct, covered = grade(out.prediction, gold, out.answers, checker)
    extra = dict(out.extra)
    if "generator_answer" in extra:
        # the same search's answer without verification: rstar-gen for free (no extra cost)
        extra["generator_correct"] = grade(extra["generator_answer"], gold, (), checker)[0]
    usage = {
        "llm_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "samples": 0,
        **out.usage,
        "seconds": round(seconds, 4),
    }
    return {
        "id": str(_get(example, "id")),
        "method": method.name,
        "label": label or method.name,
        "dataset": dataset,
        "task": task,
        "question": _get(example, "problem"),
        "prediction": out.prediction,
        "gold": gold,
        "correct": correct,
        "covered": covered,
        "confidence": round(float(out.confidence), 6),
        "answers": out.answers,
        "usage": usage,
        "trajectory": out.trajectory,
        "error": error,
        "call_errors": out.call_errors,
        "model": model,
        "settings": method.settings(),
        "extra": extra,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def read_records(path: str | Path, *, warn: Callable[[str], None] | None = None) -> list[dict]:
    """Complete, parseable records of a JSONL file (a trailing partial line is ignored)."""
    data = Path(path).read_bytes()
    return _parse_lines(data[: data.rfind(b"\n") + 1], str(path), warn)


def _parse_lines(data: bytes, name: str, warn: Callable[[str], None] | None) -> list[dict]:
    records = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            if warn:
                warn(f"{name}:{lineno}: not valid JSON; line ignored")
            continue
        if isinstance(rec, dict) and "id" in rec:
            records.append(rec)
        elif warn:
            warn(f"{name}:{lineno}: not a result record; line ignored")
    return records


@contextlib.contextmanager
def open_results(
    path: str | Path, *, warn: Callable[[str], None] | None = None
) -> Iterator[tuple[IO[bytes], list[dict]]]:
    """Open a result file for appending, repaired, locked, with its finished records.

    The file is locked exclusively (``flock``; :class:`OutputLockedError` if another
    process holds it). A trailing partial line is truncated away (and fsync'ed) so the
    next append starts on a fresh line.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")  # noqa: SIM115 - closed below
    try:
        try:
            import fcntl

            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise OutputLockedError(
                    f"{path} is being written by another process (rstar eval running?)"
                ) from exc
        except ImportError:  # pragma: no cover - not POSIX
            pass
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            os.ftruncate(fh.fileno(), cut)
            os.fsync(fh.fileno())
            if warn:
                warn(
                    f"{path}: dropped a partial last line ({len(data) - cut} bytes, "
                    "an interrupted write); that question will run again"
                )
        records = _parse_lines(data[:cut], str(path), warn)
        fh.seek(0, os.SEEK_END)
        yield fh, records
    finally:
        fh.close()


def _append(fh: IO[bytes], record: Mapping[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
    fh.write(line)
    fh.flush()
    os.fsync(fh.fileno())


# --------------------------------------------------------------------------------------
# The run loop
# --------------------------------------------------------------------------------------
@dataclass
class EvalSummary:
    """What :func:`run_evaluation` did.

    Attributes:
        total: questions in the requested window.
        skipped: already finished before this run (resumed).
        written: records written by this run.
        failed: ``(id, error)`` of questions that failed (not written; rerun retries).
        dead: the error that stopped the run, when the backend died.
        interrupted: the run was stopped by Ctrl-C.
        correct: correct answers among all finished records of the window.
        finished: finished records of the window (old and new).
        completion_tokens: generated tokens over the finished records.
        out: the output path.
    """

    total: int = 0
    skipped: int = 0
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    dead: str | None = None
    interrupted: bool = False
    correct: int = 0
    finished: int = 0
    completion_tokens: int = 0
    out: str = ""

    @property
    def accuracy(self) -> float:
        return self.correct / self.finished if self.finished else 0.0

    @property
    def complete(self) -> bool:
        return self.finished == self.total and not self.failed and self.dead is None


def _session_key(label: str, ex: Any) -> str:
    """The session key of one question's requests: ``<label>/<question id>``."""
    return f"{label}/{_get(ex, 'id')}"


def _solve_one(
    method: Method, question: str, task: str, key: str | None = None
) -> tuple[MethodOutput, float]:
    """Solve one question; every OpenAI-compatible request inside carries ``key`` (the
    router keeps the question on one replica, see :mod:`langchain_rstar.llms._session`)."""
    start = time.perf_counter()
    with session(key):
        out = method.solve(question, task)
    return out, time.perf_counter() - start


def run_evaluation(
    examples: Sequence[Any],
    method: Method,
    out: str | Path,
    *,
    dataset: str,
    task: str | None = None,
    model: str = "",
    label: str | None = None,
    concurrency: int = 1,
    progress: bool = True,
    stream: IO[str] | None = None,
    max_consecutive_failures: int = 3,
    max_question_chars: int | None = None,
    runner: Runner | None = None,
) -> EvalSummary:
    """Run ``method`` on every unfinished example and append the records to ``out``.

    Args:
        examples: items with ``id``, ``problem``, ``solution``, ``answer``, ``task``
            (attributes or mapping keys), e.g. from
            :func:`langchain_rstar.eval.datasets.load_dataset`.
        method: from :func:`build_method`.
        out: the JSONL file (created, or resumed).
        dataset: dataset name stored in the records.
        task: answer family for all examples (default: each example's ``task``, else the
            method's config task).
        model: model label stored in the records.
        label: name of this run in reports (default: the method name).
        concurrency: questions in flight at once; >1 only pays off with a backend that
            batches concurrent requests (e.g. an OpenAI-compatible server). Threads, or
            asyncio tasks on one event loop from :data:`ASYNC_CONCURRENCY` on.
        progress: show a tqdm bar on ``stream``.
        stream: where progress and warnings go (default stderr).
        max_consecutive_failures: failed questions in a row that count as a dead backend
            (a :class:`BackendDeadError` or :class:`RStarBackendError` stops the run at once).
        max_question_chars: longest question accepted (default: the method's
            ``config.max_question_chars``, the same limit the search itself enforces).
        runner: runs the unfinished questions somewhere else (e.g.
            :class:`~langchain_rstar.eval.ray_runner.RayRunner`: Ray actors); this process
            still writes every record, so resuming works the same. ``concurrency`` is
            then the runner's business.

    Returns:
        An :class:`EvalSummary`.

    Raises:
        SettingsMismatchError: ``out`` holds records of the same label and dataset made
            with another method, model or settings (see :func:`check_resume`).
        ValueError: two examples share an id.
        OutputLockedError: another process writes to ``out``.
    """
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    label = label or method.name
    settings = method.settings()
    default_task = task or getattr(getattr(method, "config", None), "task", None) or "arithmetic"

    def warn(msg: str) -> None:
        print(f"rstar eval: warning: {msg}", file=stream, flush=True)

    summary = EvalSummary(total=len(examples), out=str(out))
    ids = [str(_get(ex, "id")) for ex in examples]
    dups = duplicate_ids(ids)
    if dups:
        raise ValueError(
            f"duplicate example id(s) in the dataset: {', '.join(map(repr, dups[:5]))}"
            f"{', ...' if len(dups) > 5 else ''}"
        )
    if max_question_chars is None:
        config = getattr(method, "config", None)
        max_question_chars = int(getattr(config, "max_question_chars", 20_000) or 20_000)
    limit_chars = max_question_chars

    with open_results(out, warn=warn) as (fh, records):
        mine = check_resume(
            records,
            method=method.name,
            dataset=dataset,
            label=label,
            settings=settings,
            model=model,
            out=out,
        )
        done = {str(r["id"]): r for r in mine}
        wanted = set(ids)
        for rec in done.values():
            if rec["id"] in wanted:
                summary.skipped += 1
                summary.finished += 1
                summary.correct += bool(rec.get("correct"))
                summary.completion_tokens += int(rec.get("usage", {}).get("completion_tokens", 0))
        todo = [ex for ex, i in zip(examples, ids, strict=True) if i not in done]

        bar = tqdm(
            total=summary.total,
            initial=summary.skipped,
            desc=f"{label}/{dataset}",
            unit="q",
            file=stream,
            disable=not progress,
            dynamic_ncols=True,
            smoothing=0.1,
        )

        def postfix() -> None:
            tok = summary.completion_tokens / summary.finished if summary.finished else 0
            info = {"acc": f"{100 * summary.accuracy:.1f}%", "tok/q": f"{tok:.0f}"}
            if summary.failed:
                info["failed"] = str(len(summary.failed))
            bar.set_postfix(info, refresh=False)

        postfix()
        consecutive = 0

        def finish(ex: Any, ex_task: str, result: Any) -> None:
            nonlocal consecutive
            ex_id = str(_get(ex, "id"))
            if isinstance(result, BaseException):
                if isinstance(result, (BackendDeadError, RStarBackendError)):
                    summary.dead = f"{type(result).__name__}: {result}"
                    return
                msg = f"{type(result).__name__}: {result}"
                if not isinstance(result, QuestionFailed):
                    tb = "".join(traceback.format_exception_only(type(result), result)).strip()
                    msg = f"unexpected error: {tb}"
                summary.failed.append((ex_id, msg))
                bar.write(f"rstar eval: question {ex_id} failed (not saved): {msg}", file=stream)
                consecutive += 1
                if consecutive >= max_consecutive_failures:
                    summary.dead = f"{consecutive} questions failed in a row; last: {msg}"
                postfix()
                return
            output, seconds = result
            consecutive = 0
            record = make_record(
                ex,
                method,
                output,
                dataset=dataset,
                seconds=seconds,
                task=ex_task,
                model=model,
                label=label,
            )
            _append(fh, record)
            summary.written += 1
            summary.finished += 1
            summary.correct += bool(record["correct"])
            summary.completion_tokens += int(record["usage"].get("completion_tokens", 0))
            postfix()
            bar.update(1)

        def prepared(ex: Any) -> tuple[str, str | None, str | None]:
            """(task, question, error): invalid questions get an error record, no call."""
            ex_task = str(task or _get(ex, "task") or default_task)
            try:
                question = validate_question(_get(ex, "problem"), limit_chars)
            except ValueError as exc:
                return ex_task, None, f"invalid question: {exc}"
            return ex_task, question, None

        def write_invalid(ex: Any, ex_task: str, error: str) -> None:
            record = make_record(
                ex,
                method,
                None,
                dataset=dataset,
                seconds=0.0,
                task=ex_task,
                model=model,
                label=label,
                error=error,
            )
            _append(fh, record)
            summary.written += 1
            summary.finished += 1
            postfix()
            bar.update(1)

        try:
            if runner is not None:
                runner(todo, prepared, write_invalid, finish, summary)
            elif concurrency <= 1:
                for ex in todo:
                    ex_task, question, error = prepared(ex)
                    if error is not None:
                        write_invalid(ex, ex_task, error)
                        continue
                    assert question is not None
                    try:
                        res: Any = _solve_one(method, question, ex_task, _session_key(label, ex))
                    except Exception as exc:  # noqa: BLE001 - recorded, run goes on or stops
                        res = exc
                    finish(ex, ex_task, res)
                    if summary.dead:
                        break
            elif _use_async(method, concurrency):
                asyncio.run(
                    _run_async(
                        todo, method, concurrency, prepared, write_invalid, finish, summary, label
                    )
                )
            else:
                _run_pool(
                    todo, method, concurrency, prepared, write_invalid, finish, summary, label
                )
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.close()
    return summary


def _next_job(
    queue: list[Any],
    prepared: Callable[[Any], tuple[str, str | None, str | None]],
    write_invalid: Callable[[Any, str, str], None],
    label: str,
) -> tuple[Any, str, str, str] | None:
    """The next example to solve from ``queue`` (popped from its end) as ``(example, task,
    question, session key)``; examples whose question is invalid are recorded on the way.
    None when the queue is empty. Shared by the thread pool and the event loop."""
    while queue:
        ex = queue.pop()
        ex_task, question, error = prepared(ex)
        if error is not None:
            write_invalid(ex, ex_task, error)
            continue
        return ex, ex_task, question or "", _session_key(label, ex)
    return None


def _run_pool(
    todo: Sequence[Any],
    method: Method,
    concurrency: int,
    prepared: Callable[[Any], tuple[str, str | None, str | None]],
    write_invalid: Callable[[Any, str, str], None],
    finish: Callable[[Any, str, Any], None],
    summary: EvalSummary,
    label: str,
) -> None:
    queue = list(reversed(todo))
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rstar-eval")
    running: dict[Future[Any], tuple[Any, str]] = {}

    def fill() -> None:
        while len(running) < concurrency and not summary.dead:
            job = _next_job(queue, prepared, write_invalid, label)
            if job is None:
                return
            ex, ex_task, question, key = job
            running[pool.submit(_solve_one, method, question, ex_task, key)] = (ex, ex_task)

    try:
        fill()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                ex, ex_task = running.pop(fut)
                exc = fut.exception()
                finish(ex, ex_task, exc if exc is not None else fut.result())
            fill()
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _use_async(method: Method, concurrency: int) -> bool:
    """Whether to run the searches on one event loop (see :data:`ASYNC_CONCURRENCY`)."""
    if concurrency < ASYNC_CONCURRENCY or not callable(getattr(method, "asolve", None)):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False  # called from inside a running loop (a notebook): threads


async def _asolve_one(
    method: Any, question: str, task: str, key: str
) -> tuple[MethodOutput, float]:
    start = time.perf_counter()
    with session(key):  # the task's own context copy: keys never leak between questions
        out = await method.asolve(question, task)
    return out, time.perf_counter() - start


async def _run_async(
    todo: Sequence[Any],
    method: Method,
    concurrency: int,
    prepared: Callable[[Any], tuple[str, str | None, str | None]],
    write_invalid: Callable[[Any, str, str], None],
    finish: Callable[[Any, str, Any], None],
    summary: EvalSummary,
    label: str,
) -> None:
    """:func:`_run_pool` on one event loop: ``concurrency`` searches as asyncio tasks.

    Records are written by ``finish`` on the loop's thread, one at a time, as in the pool.
    """
    queue = list(reversed(todo))
    running: dict[asyncio.Task[Any], tuple[Any, str]] = {}

    def fill() -> None:
        while len(running) < concurrency and not summary.dead:
            job = _next_job(queue, prepared, write_invalid, label)
            if job is None:
                return
            ex, ex_task, question, key = job
            running[asyncio.ensure_future(_asolve_one(method, question, ex_task, key))] = (
                ex,
                ex_task,
            )

    try:
        fill()
        while running:
            done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                ex, ex_task = running.pop(task)
                exc = task.exception()
                finish(ex, ex_task, exc if exc is not None else task.result())
            fill()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def duplicate_ids(ids: Iterable[Any]) -> list[str]:
    """Ids that occur more than once, in first-seen order (one pass, O(n))."""
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for raw in ids:
        key = str(raw)
        if key in seen:
            dups[key] = None
        else:
            seen.add(key)
    return list(dups)


def check_resume(
    records: Iterable[Mapping[str, Any]],
    *,
    method: str,
    dataset: str,
    label: str,
    settings: Mapping[str, Any],
    model: str | None,
    out: str | Path = "the output file",
) -> list[Mapping[str, Any]]:
    """The records a run of ``label`` on ``dataset`` resumes from, after checking that
    they were made the same way.

    A resumed run must measure the same thing as the run it continues, or one label ends up
    mixing results: records under the same label and dataset must come from the same
    method, the same model and the same result-changing settings (task, budget, profile
    values, seed...; operational fields such as retries and time-outs may change).
    ``model=None`` skips the model comparison (a check made before the model is known).

    Raises:
        SettingsMismatchError: with what differs, when they were not.
    """
    mine = [
        r
        for r in records
        if r.get("dataset") == dataset and str(r.get("label") or r.get("method")) == label
    ]
    hint = "use another --out or --label"
    for rec in mine:
        if rec.get("method") != method:
            raise SettingsMismatchError(
                f"{out} already holds results labelled {label!r} on {dataset} made with "
                f"method {rec.get('method')!r}, not {method!r}; {hint}"
            )
        old_model = rec.get("model")
        if model is not None and old_model is not None and str(old_model) != str(model):
            raise SettingsMismatchError(
                f"{out} already holds {label} results on {dataset} made with model "
                f"{old_model!r}, not {model!r}; {hint}"
            )
        old = rec.get("settings")
        if old is not None and old != dict(settings):
            raise SettingsMismatchError(
                f"{out} already holds {label} results on {dataset} made with "
                f"other settings ({_diff(old, settings)}); {hint}"
            )
    return mine


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    parts = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(parts[:6])
