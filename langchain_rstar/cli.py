"""The ``rstar`` command line: ``rstar eval``, ``rstar report``, ``rstar solve``, ``rstar serve``.

Examples::

    rstar solve "Tom has 3 apples and buys 5 more. How many now?"
    rstar eval --dataset svamp --method rstar --limit 50 --out runs/svamp-rstar.jsonl
    rstar report runs/*.jsonl --plot runs/accuracy.png --markdown runs/results.md
    rstar serve --backend openai --model google/gemma-3-270m --base-url http://127.0.0.1:8000/v1

Exit status: 0 done; 1 some questions failed (not saved; rerun the same command to retry
them); 2 bad arguments or setup; 3 the model backend died (the run stopped; rerun resumes);
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "main",
    "build_llm",
    "build_config",
    "scripted_llm",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_DEAD",
    "EXIT_INTERRUPTED",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DEAD = 3
EXIT_INTERRUPTED = 130

SCRIPTED_LABEL = "scripted (canned answers for offline tests; not a real model)"


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# --------------------------------------------------------------------------------------
# Models and configuration
# --------------------------------------------------------------------------------------
def scripted_llm() -> Any:
    """A :class:`~langchain_rstar.testing.ScriptedLLM` for offline demos and tests.

    It answers the package's prompts with canned text (written for "Ann has 3 bags with 4
    apples in each bag. She eats 2 apples. How many apples are left?"): the first direct
    answer says 12, deeper trajectories reach 10. Its answers to other questions mean
    nothing.
    """
    from langchain_rstar.testing import apples_llm

    return apples_llm()


def build_llm(args: argparse.Namespace) -> tuple[Any, str]:
    """The model named by the command line, and a label for records and output.

    ``--scripted`` gives :func:`scripted_llm`; ``--backend openai`` a
    ``langchain_openai.OpenAI`` completions client on ``--base-url`` (e.g. ``vllm serve``);
    otherwise :func:`langchain_rstar.llms.embedded.default_llm` (the embedded Gemma 3 270M unless
    ``--model`` names another).
    """
    if getattr(args, "scripted", False):
        return scripted_llm(), "scripted"
    backend = getattr(args, "backend", "auto") or "auto"
    model = getattr(args, "model", None)
    provider = _provider_of(model) if backend == "auto" else None
    if provider is not None:
        return _init_chat_model(args, provider, model), f"{model} (chat)"
    if backend == "openai":
        try:
            from langchain_openai import OpenAI
        except ImportError as exc:
            raise CLIError(
                "--backend openai needs langchain-openai: pip install 'langchain-rstar[openai]'"
            ) from exc
        if not model:
            raise CLIError("--backend openai needs --model (the served model name or path)")
        base_url = getattr(args, "base_url", None) or os.environ.get(
            "OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"
        )
        api_key = getattr(args, "api_key", None) or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        client = OpenAI(
            model=model,
            base_url=base_url,
            api_key=api_key,
            max_retries=1,
            request_timeout=getattr(args, "request_timeout", None) or 600.0,
        )
        return client, f"{model} (openai @ {base_url})"
    if getattr(args, "base_url", None):
        raise CLIError("--base-url only applies to --backend openai")
    from langchain_rstar.llms.embedded import default_llm

    try:
        llm = default_llm(backend=backend, model=model)  # type: ignore[arg-type]
    except (ImportError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load the model ({backend}): {exc}") from exc
    _OPENED.append(llm)
    name = model or "gemma-3-270m"
    return llm, f"{name} ({backend})"


def _provider_of(model: str | None) -> str | None:
    """The provider of a ``provider:model`` spec (``openai:gpt-4o-mini``,
    ``ollama:qwen2.5:1.5b``) that ``init_chat_model`` knows; None for folders, files and
    hub ids."""
    if not model or ":" not in model or Path(model).exists():
        return None
    provider = model.split(":", 1)[0]
    try:
        from langchain.chat_models.base import _BUILTIN_PROVIDERS as known
    except ImportError:  # pragma: no cover - other langchain versions
        known = {"openai", "anthropic", "ollama", "groq", "mistralai", "huggingface"}
    return provider if provider in known else None


def _init_chat_model(args: argparse.Namespace, provider: str, model: str) -> Any:
    """A chat model from a ``provider:model`` spec through ``init_chat_model``."""
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {}
    if getattr(args, "base_url", None):
        kwargs["base_url"] = args.base_url
    if getattr(args, "api_key", None):
        kwargs["api_key"] = args.api_key
    if getattr(args, "request_timeout", None):
        kwargs["timeout"] = args.request_timeout
    try:
        return init_chat_model(model.split(":", 1)[1], model_provider=provider, **kwargs)
    except (ImportError, ValueError, TypeError) as exc:
        raise CLIError(f"cannot create the chat model {model!r}: {exc}") from exc


def _load_json_arg(text: str) -> dict[str, Any]:
    """``--config``: a JSON object, or the path of a file holding one."""
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text[1:] if text.startswith("@") else text)
        if not path.is_file():
            raise CLIError(f"--config: {text!r} is neither a JSON object nor a file")
        source = path.read_text(encoding="utf-8")
    try:
        data = json.loads(source)
    except ValueError as exc:
        raise CLIError(f"--config: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CLIError("--config must be a JSON object of RStarConfig fields")
    return data


def build_config(args: argparse.Namespace, task: str | None = None) -> Any:
    """An :class:`RStarConfig` from ``--config`` plus the explicit flags (flags win)."""
    from pydantic import ValidationError

    from langchain_rstar.config import RStarConfig

    fields: dict[str, Any] = {}
    if getattr(args, "config", None):
        fields.update(_load_json_arg(args.config))
    if task:
        fields["task"] = task
    for flag, key in (
        ("num_rollouts", "num_rollouts"),
        ("num_votes", "num_votes"),
        ("max_tokens", "max_tokens"),
        ("rollout_batch", "rollout_batch"),
        ("seed", "seed"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            fields[key] = value
    try:
        return RStarConfig(**fields)
    except ValidationError as exc:
        raise CLIError(f"invalid configuration: {exc}") from exc
    except TypeError as exc:
        raise CLIError(f"invalid configuration: {exc}") from exc


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------
def _model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--backend",
        choices=["auto", "vllm", "transformers", "openai"],
        default="auto",
        help="auto/vllm/transformers: local engine on --model (default: embedded Gemma 3 270M); "
        "openai: an OpenAI-compatible completions server at --base-url",
    )
    g.add_argument(
        "--model",
        help="model folder, .gguf file or hub id; served name for openai; or a "
        "provider:model spec for init_chat_model (e.g. ollama:qwen2.5:1.5b, openai:NAME "
        "with --base-url)",
    )
    g.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    g.add_argument(
        "--api-key", help="API key for --backend openai (default $OPENAI_API_KEY or EMPTY)"
    )
    g.add_argument("--request-timeout", type=float, help="seconds per HTTP request (openai)")
    g.add_argument(
        "--scripted",
        action="store_true",
        help="use a scripted offline model with canned answers (testing only)",
    )


def _search_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search budget (override --config)")
    g.add_argument("--num-rollouts", type=int, help="MCTS rollouts per question (default 16)")
    g.add_argument("--num-votes", type=int, help="samples per majority vote (default 10)")
    g.add_argument("--max-tokens", type=int, help="token cap for one step / solution (default 256)")
    g.add_argument("--rollout-batch", type=int, help="rollouts expanded per wave (default 1)")
    g.add_argument("--seed", type=int, help="sampling seed")
    g.add_argument(
        "--config",
        help="RStarConfig fields as a JSON object, or a JSON file path "
        '(e.g. \'{"num_masks": 2, "early_stop": true}\')',
    )


def make_parser() -> argparse.ArgumentParser:
    from langchain_rstar.eval.harness import METHODS

    parser = argparse.ArgumentParser(
        prog="rstar",
        description="rStar: MCTS reasoning + mutual verification for small language models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "eval",
        help="evaluate a method on a dataset (resumable JSONL)",
        description="Run a method over a dataset, one JSON line per question. Rerunning "
        "the same command resumes: finished questions are skipped.",
    )
    ev.add_argument(
        "--dataset",
        required=True,
        help="bundled dataset name (e.g. svamp, gsm8k) or a JSON/JSONL file of "
        "{id, problem, solution}",
    )
    ev.add_argument("--method", required=True, choices=METHODS)
    ev.add_argument("--limit", type=int, help="questions to run (after --offset); default all")
    ev.add_argument("--offset", type=int, default=0, help="skip this many questions first")
    ev.add_argument("--out", help="output JSONL (default runs/<dataset>-<label>.jsonl)")
    ev.add_argument("--label", help="name of this run in reports (default: the method)")
    ev.add_argument(
        "--task",
        choices=["arithmetic", "math", "yesno"],
        help="answer family (default: the dataset's)",
    )
    ev.add_argument(
        "--num-samples",
        type=int,
        help="sc: samples per question (default num_rollouts x num_votes)",
    )
    ev.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="questions in flight at once; >1 pays off with a server that batches requests",
    )
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    _search_options(ev)
    _model_options(ev)

    rp = sub.add_parser(
        "report",
        help="summarise result files: markdown table and plot",
        description="Accuracy (95%% Wilson interval), coverage and cost per method and dataset.",
    )
    rp.add_argument("files", nargs="+", help="JSONL files written by rstar eval")
    rp.add_argument("--plot", help="write a PNG of accuracy against cost")
    rp.add_argument("--markdown", help="write the table to this markdown file")
    rp.add_argument(
        "--x",
        choices=["completion", "total", "calls", "seconds"],
        default="completion",
        help="plot x axis: generated tokens (default), all tokens, calls or seconds per question",
    )

    sv = sub.add_parser(
        "solve",
        help="solve one question and show the answer, trajectory and usage",
    )
    sv.add_argument("question", help="the question ('-' reads it from stdin)")
    sv.add_argument("--json", action="store_true", help="print the full RStarResult as JSON")
    sv.add_argument("--tree", help="write the search tree as an HTML page")
    sv.add_argument("--task", choices=["arithmetic", "math", "yesno"], default=None)
    sv.add_argument(
        "--no-verify", action="store_true", help="skip mutual verification (generator majority)"
    )
    sv.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _search_options(sv)
    _model_options(sv)

    se = sub.add_parser(
        "serve",
        help="serve rStar as an OpenAI-compatible HTTP API (rstar-<model>)",
        description="OpenAI-compatible server: /v1/chat/completions, /v1/completions, "
        "/v1/models, /health. Per request: num_rollouts, profile and rstar_config in the "
        "body (extra_body). Needs pip install 'langchain-rstar[serve]'.",
    )
    se.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    se.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    se.add_argument("--served-model-name", help="model name clients use (default rstar-<model>)")
    se.add_argument("--task", choices=["arithmetic", "math", "yesno"], default=None)
    se.add_argument(
        "--no-verify", action="store_true", help="skip mutual verification (generator majority)"
    )
    se.add_argument(
        "--max-num-rollouts", type=int, default=1024, help="largest num_rollouts a request may ask"
    )
    se.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    _search_options(se)
    _model_options(se)
    return parser


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------
def _err(msg: str) -> None:
    print(f"rstar: {msg}", file=sys.stderr, flush=True)


def _load_examples(args: argparse.Namespace) -> tuple[list[Any], str, str | None]:
    """(examples in the window, dataset name for records, task family or None)."""
    try:
        from langchain_rstar.eval import datasets as ds
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise CLIError(f"datasets are unavailable: {exc}") from exc
    if args.offset < 0:
        raise CLIError("--offset must be >= 0")
    if args.limit is not None and args.limit < 0:
        raise CLIError("--limit must be >= 0")
    path = Path(args.dataset)
    is_file = path.is_file()
    name = path.stem if is_file else args.dataset
    limit = None if args.limit is None else args.offset + args.limit
    try:
        kwargs: dict[str, Any] = {"limit": limit}
        if args.task:
            kwargs["task"] = args.task
        examples = list(ds.load_dataset(args.dataset, **kwargs))
    except (FileNotFoundError, KeyError, ValueError, OSError, ImportError) as exc:
        raise CLIError(f"cannot load dataset {args.dataset!r}: {exc}") from exc
    examples = examples[args.offset :]
    if args.limit is not None:
        examples = examples[: args.limit]
    task = None if is_file else (getattr(ds, "DATASETS", {}) or {}).get(args.dataset)
    if isinstance(task, dict):  # tolerate richer registry entries
        task = task.get("task")
    return examples, name, task if isinstance(task, str) else None


def cmd_eval(args: argparse.Namespace) -> int:
    from langchain_rstar.eval.harness import (
        OutputLockedError,
        SettingsMismatchError,
        build_method,
        run_evaluation,
    )
    from langchain_rstar.eval.report import wilson_interval

    if args.concurrency < 1:
        raise CLIError("--concurrency must be >= 1")
    if args.num_samples is not None and args.num_samples < 1:
        raise CLIError("--num-samples must be >= 1")
    if args.num_samples is not None and args.method != "sc":
        raise CLIError("--num-samples only applies to --method sc")
    examples, dataset, ds_task = _load_examples(args)
    first_task = args.task or ds_task or (getattr(examples[0], "task", None) if examples else None)
    config = build_config(args, task=first_task)
    llm, model_label = build_llm(args)
    method = build_method(args.method, llm, config=config, num_samples=args.num_samples)
    label = args.label or args.method
    out = args.out or str(Path("runs") / f"{dataset}-{label}.jsonl")
    if args.scripted:
        _err(f"model: {SCRIPTED_LABEL}")
    try:
        summary = run_evaluation(
            examples,
            method,
            out,
            dataset=dataset,
            task=args.task,
            model=model_label,
            label=label,
            concurrency=args.concurrency,
            progress=not args.no_progress,
        )
    except (SettingsMismatchError, OutputLockedError) as exc:
        raise CLIError(str(exc)) from exc
    lo, hi = wilson_interval(summary.correct, summary.finished)
    _err(
        f"{label} on {dataset}: {summary.finished}/{summary.total} finished "
        f"({summary.written} now, {summary.skipped} before), accuracy "
        f"{100 * summary.accuracy:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] -> {out}"
    )
    if summary.interrupted:
        _err("interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED
    if summary.dead:
        _err(f"the model backend is not working, run stopped: {summary.dead}")
        _err("fix the backend, then rerun the same command to resume")
        return EXIT_DEAD
    if summary.failed:
        _err(
            f"{len(summary.failed)} question(s) failed and were not saved "
            f"({', '.join(i for i, _ in summary.failed[:5])}"
            f"{', ...' if len(summary.failed) > 5 else ''}); rerun the same command to retry them"
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from langchain_rstar.eval.report import (
        load_records,
        markdown_table,
        plot_accuracy_vs_cost,
        summarize,
    )

    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise CLIError(f"no such file: {', '.join(missing)}")
    records = load_records(args.files, warn=lambda m: _err(f"warning: {m}"))
    if not records:
        raise CLIError("no records in the given files")
    rows = summarize(records)
    table = markdown_table(rows)
    print(table, end="")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table, encoding="utf-8")
        _err(f"table written to {args.markdown}")
    if args.plot:
        try:
            plot_accuracy_vs_cost(rows, args.plot, x=args.x)
        except ImportError as exc:
            raise CLIError(f"--plot needs matplotlib (pip install matplotlib): {exc}") from exc
        _err(f"plot written to {args.plot}")
    return EXIT_OK


def _print_result(result: Any, model_label: str) -> None:
    from langchain_rstar.eval.harness import render_trajectory

    print(f"Model: {model_label}")
    print(f"Question: {result.question}")
    v = result.verification
    how = (
        "verified by mutual consistency"
        if v.ran and not v.fell_back
        else "generator majority" + (f" ({v.reason})" if v.reason else "")
    )
    print(f"Answer: {result.answer} (confidence {result.confidence:.2f}; {how})")
    steps = render_trajectory(result.trajectory)
    if steps:
        print("Trajectory:")
        for step in steps:
            for i, line in enumerate(step.split("\n")):
                print(("  " if i == 0 else "    ") + line)
    counts: dict[str, int] = {}
    for cand in result.candidates:
        if cand.answer is not None:
            counts[cand.answer] = counts.get(cand.answer, 0) + 1
    if counts:
        listed = ", ".join(f"{a} x{n}" for a, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        print(f"Candidates: {listed}")
    u = result.usage
    est = "~" if u.tokens_estimated else ""
    print(
        f"Usage: {u.llm_calls} model calls, {u.samples} samples, {est}{u.prompt_tokens:,} prompt + "
        f"{est}{u.completion_tokens:,} generated tokens, {u.rollouts} rollouts, {u.nodes} nodes, "
        f"{u.wall_seconds:.2f} s"
    )
    if result.errors:
        first = result.errors[0].get("error")
        print(f"Errors: {len(result.errors)} model call(s) failed; first: {first}")
    if result.limits_hit:
        print(f"Limits hit: {', '.join(result.limits_hit)}")


def cmd_solve(args: argparse.Namespace) -> int:
    from langchain_rstar.chain import RStarChain, validate_question
    from langchain_rstar.result import RStarProgress, RStarResult

    question = sys.stdin.read() if args.question == "-" else args.question
    config = build_config(args, task=args.task)
    try:
        question = validate_question(question, config.max_question_chars)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    llm, model_label = build_llm(args)
    if args.scripted:
        model_label = SCRIPTED_LABEL
        _err(f"model: {SCRIPTED_LABEL}")
    chain = RStarChain(generator=llm, discriminator=None if args.no_verify else True, config=config)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(
            total=config.num_rollouts,
            desc="rollouts",
            unit="rollout",
            file=sys.stderr,
            dynamic_ncols=True,
        )
    result: RStarResult | None = None
    try:
        for event in chain.stream(question):
            if isinstance(event, RStarProgress) and bar is not None:
                if bar.n < (bar.total or 0):
                    bar.update(1)
                bar.set_postfix(
                    best=event.best_answer,
                    conf=f"{event.confidence:.2f}",
                    tok=event.completion_tokens,
                    refresh=False,
                )
            elif isinstance(event, RStarResult):
                result = event
    finally:
        if bar is not None:
            bar.close()
    assert result is not None
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result(result, model_label)
    status = EXIT_OK
    if args.tree:
        save_html = getattr(result, "save_html", None)
        if save_html is None:
            _err(
                "--tree: this version of RStarResult cannot write HTML (no save_html); "
                "use --json and keep the 'tree' field instead"
            )
            status = EXIT_FAILED
        else:
            save_html(args.tree)
            _err(f"tree written to {args.tree}")
    if result.stop_reason == "backend_dead":
        _err("the model backend stopped working during the search; the result is partial")
        return EXIT_DEAD
    return status


def served_name(args: argparse.Namespace) -> str:
    """``--served-model-name``, else ``rstar-<model>`` (the model's last path part)."""
    if getattr(args, "served_model_name", None):
        return str(args.served_model_name)
    if getattr(args, "scripted", False):
        return "rstar-scripted"
    model = getattr(args, "model", None) or "gemma-3-270m"
    return "rstar-" + (Path(model).name if Path(model).exists() else model)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from langchain_rstar.server import serve
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    from langchain_rstar.chain import RStarChain
    from langchain_rstar.chat_model import ChatRStar

    if not 0 <= args.port <= 65535:
        raise CLIError("--port must be between 0 and 65535")
    if args.max_num_rollouts < 1:
        raise CLIError("--max-num-rollouts must be >= 1")
    config = build_config(args, task=args.task)
    llm, model_label = build_llm(args)
    if args.scripted:
        _err(f"model: {SCRIPTED_LABEL}")
    chain = RStarChain(generator=llm, discriminator=None if args.no_verify else True, config=config)
    name = served_name(args)
    _err(f"serving {name} ({model_label}) on http://{args.host}:{args.port}/v1")
    serve(
        ChatRStar(chain=chain, model=name),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        max_num_rollouts=args.max_num_rollouts,
    )
    return EXIT_OK


#: Local engines this command opened (closed when it ends, also on SIGTERM).
_OPENED: list[Any] = []


def _close_opened() -> None:
    """Shut down the local engines this command opened, without finishing their queues.

    A vLLM engine runs in worker processes that outlive a killed parent: closing it here
    is what keeps ``kill <pid>`` of ``rstar eval`` from leaving them busy on the CPU.
    """
    while _OPENED:
        llm = _OPENED.pop()
        close = getattr(llm, "close", None)
        if not callable(close):
            continue
        try:
            try:
                close(wait=False)
            except TypeError:
                close()
        except Exception as exc:  # noqa: BLE001 - best effort at shutdown
            _err(f"warning: closing the model failed: {exc}")


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the same clean path as Ctrl-C: finished lines stay, resumable


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rstar`` command; returns the exit status.

    SIGTERM is handled like Ctrl-C (in the main thread): the run stops, every finished
    question is already on disk, local engines are shut down, and the exit status is 130.
    """
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handlers = {"eval": cmd_eval, "report": cmd_report, "solve": cmd_solve, "serve": cmd_serve}
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return handlers[args.command](args)
    except CLIError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `rstar report ... | head`
        return EXIT_OK
    finally:
        _close_opened()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run() -> None:
    """Console entry point: :func:`main`, then exit.

    After an interruption the process exits at once (``os._exit``): searches still
    blocked on the (now shut down) engine would otherwise hold the interpreter open.
    """
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
