"""The ``rstar`` command line: ``rstar eval``, ``rstar report``, ``rstar solve``, ``rstar serve``.

Examples::

    rstar solve "Tom has 3 apples and buys 5 more. How many now?"
    rstar eval --dataset svamp --method rstar --limit 50 --out runs/svamp-rstar.jsonl
    rstar report runs/*.jsonl --plot runs/accuracy.png --markdown runs/results.md
    rstar serve --backend openai --model google/gemma-3-270m --base-url http://127.0.0.1:8000/v1

Exit status: 0 done; 1 some questions failed (not saved; rerun the same command to retry
them); 2 bad arguments or setup; 3 the model backend died (the run stopped; rerun resumes);
130 interrupted.

Set-up problems (a bad label, duplicate dataset ids, an output that cannot be written, a
resume that would mix other settings into a file) are checked *before* any model is
loaded, because loading a local engine takes minutes: they end with a one-line message
and status 2, never after the work is done. Engine logs (vLLM, transformers) are quiet
unless ``--verbose``; instead one progress line per phase (model start, rollouts,
verification) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from langchain_rstar.config import PROFILES
from langchain_rstar.errors import CLIError

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
    otherwise :func:`langchain_rstar.llms.default_llm` (the embedded Gemma 3 270M unless
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
        from langchain_rstar.llms._session import openai_client

        if not model:
            raise CLIError("--backend openai needs --model (the served model name or path)")
        base_url = getattr(args, "base_url", None) or os.environ.get(
            "OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"
        )
        api_key = getattr(args, "api_key", None) or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # Session affinity is on (llms/_session.py); the sampler owns the retries, so the
        # HTTP client gets max_retries=0 and a finite timeout (docs/scaleout.md).
        try:
            client = openai_client(
                model=model,
                base_url=base_url,
                api_key=api_key,
                request_timeout=getattr(args, "request_timeout", None),
                sampler_retries=_sampler_retries(args),
            )
        except ImportError as exc:
            raise CLIError(str(exc)) from exc
        except ValueError as exc:
            raise CLIError(f"--request-timeout: {exc}") from exc
        return client, f"{model} (openai @ {base_url})"
    if getattr(args, "base_url", None):
        raise CLIError("--base-url only applies to --backend openai")
    from langchain_rstar.llms import default_llm

    try:
        llm = default_llm(backend=backend, model=model)  # type: ignore[arg-type]
    except (ImportError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load the model ({backend}): {exc}") from exc
    _OPENED.append(llm)
    return llm, _local_label(args)


def _local_label(args: argparse.Namespace) -> str:
    """The model label of a local engine (known without loading it)."""
    name = getattr(args, "model", None) or "gemma-3-270m"
    return f"{name} ({getattr(args, 'backend', 'auto') or 'auto'})"


def _sampler_retries(args: argparse.Namespace) -> int:
    """The sampler's retries of a failed call for this command line (``max_retries`` of
    ``--config``, else the config default): the HTTP client does not retry on top."""
    raw = getattr(args, "config", None)
    if raw:
        with contextlib.suppress(CLIError):
            value = _load_json_arg(raw).get("max_retries")
            if isinstance(value, int) and value >= 0:
                return value
    from langchain_rstar.config import RStarConfig

    return int(RStarConfig.model_fields["max_retries"].default)


def _profile_fields(profile: str | None, config_cls: Any) -> dict[str, Any]:
    """The fields a ``--profile`` sets (``RStarConfig.paper()`` / ``.fast()``); ``--config``
    and the explicit flags are applied on top of them."""
    if not profile:
        return {}
    factory = getattr(config_cls, profile, None)
    if not callable(factory):
        raise CLIError(
            f"--profile {profile}: this version of RStarConfig has no {profile}() profile"
        )
    try:
        base = factory()
    except Exception as exc:  # noqa: BLE001 - reported as a usage error
        raise CLIError(f"--profile {profile}: {exc}") from exc
    if not hasattr(base, "model_dump"):
        raise CLIError(f"--profile {profile}: RStarConfig.{profile}() did not return a config")
    return dict(base.model_dump(exclude_defaults=True))


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

    fields: dict[str, Any] = _profile_fields(getattr(args, "profile", None), RStarConfig)
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
    g.add_argument(
        "--verbose",
        action="store_true",
        help="show the model engine's own logs (vLLM, transformers); quiet by default",
    )


def _search_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search budget (override --config and --profile)")
    g.add_argument(
        "--profile",
        choices=PROFILES,
        help="the search algorithm: 'paper' (default: the authors' reference code, "
        "verification included; about 2.5x the samples of 'fast') or 'fast' (today's "
        "cheaper rules, no self-verification; README 'How it works' lists each "
        "difference); --config and the flags below change single fields of it",
    )
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


#: Answer families of ``--task``.
TASKS = ("arithmetic", "math", "yesno")
TASK_HELP = (
    "answer family: how answers are extracted and compared (arithmetic: numbers; math: "
    "LaTeX expressions; yesno: yes/no)"
)


def make_parser() -> argparse.ArgumentParser:
    from langchain_rstar import __version__
    from langchain_rstar.eval.harness import METHODS

    parser = argparse.ArgumentParser(
        prog="rstar",
        description="rStar: MCTS reasoning + mutual verification for small language models.",
        epilog="Exit status: 0 done; 1 some questions failed (rerun to retry them); 2 bad "
        "arguments or set-up; 3 the model backend died (rerun resumes); 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"rstar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "eval",
        help="evaluate a method on a dataset (resumable JSONL)",
        description="Run a method over a dataset, one JSON line per question. Rerunning "
        "the same command resumes: finished questions are skipped (a resume with another "
        "method, model or result-changing setting under the same label is refused).",
    )
    ev.add_argument(
        "--dataset",
        required=True,
        help="a bundled benchmark shipped with the package (gsm8k, gsm8khard a.k.a. "
        "gsm-hard, svamp, math, stg a.k.a. strategyqa), a JSON/JSONL file of "
        "{id, problem, solution}, or "
        "hf:<dataset id>[:<config>] to load from the Hugging Face hub (needs `pip install "
        "datasets` and network), e.g. hf:openai/gsm8k:main",
    )
    ev.add_argument(
        "--method",
        required=True,
        choices=METHODS,
        help="cot: greedy chain of thought; sc: self-consistency (majority of samples); "
        "rstar-gen: the rStar search, generator majority without verification; rstar: the "
        "search with mutual verification",
    )
    ev.add_argument("--limit", type=int, help="questions to run (after --offset); default all")
    ev.add_argument("--offset", type=int, default=0, help="skip this many questions first")
    ev.add_argument("--out", help="output JSONL (default runs/<dataset>-<label>.jsonl)")
    ev.add_argument(
        "--label",
        help="name of this run in reports and the default output file (letters, digits, "
        "'.', '_', '-'; default: the method)",
    )
    ev.add_argument(
        "--task",
        choices=TASKS,
        help=TASK_HELP + " (default: the dataset's)",
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
        help="questions in flight at once; >1 pays off with a server that batches requests; "
        "from 32 on, rstar searches run as asyncio tasks on one event loop",
    )
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    rg = ev.add_argument_group("ray (pip install 'langchain-rstar[ray]'; docs/scaleout.md)")
    rg.add_argument(
        "--ray-address",
        metavar="local|auto|ADDR",
        help="run the searches on Ray actors: local starts a private Ray instance, auto "
        "joins this machine's cluster, ADDR is HOST:PORT or ray://HOST:10001; this process "
        "still writes every record (resume works the same)",
    )
    rg.add_argument(
        "--ray-workers",
        type=int,
        help="Ray actors (default 2), each running up to --concurrency/W searches at once "
        "and building its own model client; with a local backend each starts an engine",
    )
    _search_options(ev)
    _model_options(ev)

    rp = sub.add_parser(
        "report",
        help="summarise result files: markdown table and plot",
        description="Accuracy (95% Wilson interval), coverage and cost per method and dataset. "
        "Records that do not have the result schema are skipped and counted.",
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
        description="Solve one question with the rStar search and mutual verification: "
        "prints the answer with its confidence, the winning trajectory, the candidate "
        "answers grouped by equivalence and the cost. Without --model it uses the embedded "
        "Gemma 3 270M (the first run prepares it); on a CPU start with a small budget "
        "(--num-rollouts 4; the README's quick start gives measured times).",
    )
    sv.add_argument("question", help="the question ('-' reads it from stdin)")
    sv.add_argument("--json", action="store_true", help="print the full RStarResult as JSON")
    sv.add_argument("--tree", help="write the search tree as an HTML page")
    sv.add_argument(
        "--task", choices=TASKS, default=None, help=TASK_HELP + " (default: arithmetic)"
    )
    sv.add_argument(
        "--no-verify",
        action="store_true",
        help="skip mutual verification (answer = generator majority); without it the "
        "generator verifies its own candidates (--profile fast: no verification)",
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
        "--no-verify",
        action="store_true",
        help="skip mutual verification (answer = generator majority); without it the "
        "generator verifies its own candidates (--profile fast: no verification)",
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


# --------------------------------------------------------------------------------------
# Set-up checks: everything that can be known wrong before a model is loaded
# --------------------------------------------------------------------------------------
_LABEL_RE = re.compile(r"[A-Za-z0-9._-]+")


def _check_label(label: str) -> str:
    """``--label``: a plain name (it goes into the default output path and reports)."""
    if not _LABEL_RE.fullmatch(label) or set(label) == {"."}:
        raise CLIError(
            f"--label {label!r}: use letters, digits, '.', '_' and '-' only "
            "(no path separators or spaces)"
        )
    return label


def _safe_name(name: str) -> str:
    """A dataset name made safe as part of a file name (``hf:org/set`` -> ``hf_org_set``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def _check_writable(path: str, flag: str) -> None:
    """Fail now, with one line, if ``path`` cannot be created or appended to.

    Parent folders that do not exist yet are fine when the nearest existing one is a
    writable folder (they are created when the output is written).
    """
    target = Path(path)
    if target.is_dir():
        raise CLIError(f"{flag} {path}: is a directory")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise CLIError(f"{flag} {path}: not writable")
        return
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path}: cannot create files in {parent}")


def _precheck_eval(
    args: argparse.Namespace, examples: list[Any], dataset: str, config: Any, out: str
) -> None:
    """Duplicate ids, the output file and the resume compatibility, before the model loads.

    The resume check here compares method and settings (they do not depend on the model);
    the model itself is compared by :func:`run_evaluation` once its label is known.
    """
    from langchain_rstar.eval.harness import (
        SettingsMismatchError,
        build_method,
        check_resume,
        duplicate_ids,
        read_records,
    )
    from langchain_rstar.testing import ScriptedLLM

    dups = duplicate_ids(
        getattr(ex, "id", None) if not isinstance(ex, dict) else ex.get("id") for ex in examples
    )
    if dups:
        shown = ", ".join(map(repr, dups[:5])) + (", ..." if len(dups) > 5 else "")
        raise CLIError(f"dataset {args.dataset!r} has duplicate ids: {shown}")
    _check_writable(out, "--out")
    if not Path(out).is_file():
        return
    try:
        records = read_records(out)
    except OSError as exc:
        raise CLIError(f"--out {out}: cannot read it: {exc}") from exc
    # settings() depends on the configuration only: a placeholder model is enough here
    probe = build_method(args.method, ScriptedLLM(), config=config, num_samples=args.num_samples)
    try:
        check_resume(
            records,
            method=probe.name,
            dataset=dataset,
            label=args.label or args.method,
            settings=probe.settings(),
            model=None,
            out=out,
        )
    except SettingsMismatchError as exc:
        raise CLIError(str(exc)) from exc


def _quiet_engines(verbose: bool) -> None:
    """Keep engine log floods off the terminal unless ``--verbose``.

    vLLM reads ``VLLM_LOGGING_LEVEL`` when it is imported (also in its worker processes,
    which inherit the environment), transformers ``TRANSFORMERS_VERBOSITY``; both are set
    only when the user has not set them. ``--verbose`` also shows this package's INFO logs.
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        return
    # ERROR, not WARNING: on CPU each engine start logged ~13 advisory WARNING lines
    # (Triton absent, LD_PRELOAD hints, OMP threads) from its worker processes.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    # The engine's worker processes inherit this: no deprecation/future warnings from
    # third-party modules on the user's terminal.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("vllm", "transformers", "torch"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _load_model(args: argparse.Namespace, show: bool) -> tuple[Any, str]:
    """:func:`build_llm` with a progress line for the model start (it can take minutes)."""
    local = not getattr(args, "scripted", False) and getattr(args, "backend", "auto") != "openai"
    if show and local:
        _err("starting the model engine (the first start takes a few minutes)...")
    start = time.perf_counter()
    llm, label = build_llm(args)
    begin = getattr(llm, "start", None)
    if local and callable(begin):
        # engines start lazily on the first call; start now so that this phase is visible
        # and timed, and a broken engine fails here rather than inside the first rollout
        try:
            begin()
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback
            raise CLIError(f"the model engine did not start: {exc}") from exc
    if show and local:
        _err(f"model ready: {label} ({time.perf_counter() - start:.0f} s)")
    return llm, label


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
    if args.ray_workers is not None and not args.ray_address:
        raise CLIError("--ray-workers needs --ray-address (local, auto or HOST:PORT)")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise CLIError("--ray-workers must be >= 1")
    if args.num_samples is not None and args.num_samples < 1:
        raise CLIError("--num-samples must be >= 1")
    if args.num_samples is not None and args.method != "sc":
        raise CLIError("--num-samples only applies to --method sc")
    label = _check_label(args.label) if args.label is not None else args.method
    examples, dataset, ds_task = _load_examples(args)
    first_task = args.task or ds_task or (getattr(examples[0], "task", None) if examples else None)
    config = build_config(args, task=first_task)
    out = args.out or str(Path("runs") / f"{_safe_name(dataset)}-{label}.jsonl")
    _precheck_eval(args, examples, dataset, config, out)
    _quiet_engines(args.verbose)
    runner: Any = contextlib.nullcontext()
    if args.ray_address:
        # the actors build the model; this process only needs the method's settings and
        # the model's label for the records
        runner, method, model_label = _ray_runner(args, config, label)
    else:
        llm, model_label = _load_model(args, show=not args.no_progress)
        method = build_method(args.method, llm, config=config, num_samples=args.num_samples)
    if args.scripted:
        _err(f"model: {SCRIPTED_LABEL}")
    try:
        with runner:
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
                runner=runner if args.ray_address else None,
            )
    except (SettingsMismatchError, OutputLockedError) as exc:
        raise CLIError(str(exc)) from exc
    except ValueError as exc:  # e.g. duplicate ids in examples loaded some other way
        raise CLIError(str(exc)) from exc
    except OSError as exc:  # the output could not be opened or written
        raise CLIError(f"--out {out}: {exc}") from exc
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


def _ray_method(model_args: dict[str, Any], name: str, config: Any, num_samples: Any) -> Any:
    """Build the evaluation method inside a Ray actor (the factory :func:`_ray_runner`
    ships; it must be importable there, hence a module-level function)."""
    from langchain_rstar.eval.harness import build_method

    args = argparse.Namespace(**model_args)
    _quiet_engines(bool(getattr(args, "verbose", False)))
    llm, _ = build_llm(args)
    return build_method(name, llm, config=config, num_samples=num_samples)


def _ray_runner(args: argparse.Namespace, config: Any, label: str) -> tuple[Any, Any, str]:
    """(started :class:`~langchain_rstar.eval.ray_runner.RayRunner`, the method as the
    driver sees it, the model label), or a :class:`CLIError` before any work starts."""
    import functools

    from langchain_rstar.eval.harness import build_method
    from langchain_rstar.testing import ScriptedLLM

    try:
        from langchain_rstar.eval.ray_runner import RayRunner
    except ImportError as exc:  # pragma: no cover - the module itself needs no ray
        raise CLIError(str(exc)) from exc
    local = not args.scripted and args.backend != "openai" and _provider_of(args.model) is None
    if local:
        model_label = _local_label(args)
    else:
        # remote clients and the scripted model connect to nothing until called
        model_label = build_llm(args)[1]
    # settings() depends on the configuration only: a placeholder model is enough here
    method = build_method(args.method, ScriptedLLM(), config=config, num_samples=args.num_samples)
    factory = functools.partial(
        _ray_method, dict(vars(args)), args.method, config, args.num_samples
    )
    runner = RayRunner(
        factory,
        label=label,
        address=args.ray_address,
        workers=args.ray_workers or 2,
        concurrency=args.concurrency,
    )
    if not args.no_progress:
        _err(f"connecting to Ray ({args.ray_address})...")
    try:
        runner.start()
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    except ConnectionError as exc:
        raise CLIError(str(exc)) from exc
    return runner, method, model_label


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


def group_answers(answers: list[str], task: str | None = None) -> list[tuple[str, int]]:
    """Candidate answers grouped by equivalence under the task's checker, most votes first.

    "1 dollar" and "1" are one answer, and an answer written as an expression ("4 dollars -
    4 = 1 dollar") is shown as its normalised value ("1"). Each group is shown by the
    normal form of its first member (the raw text when normalising gives nothing).
    """
    from langchain_rstar.answers import get_checker

    try:
        checker: Any = get_checker(task or "arithmetic")
    except Exception:  # noqa: BLE001 - an unknown task still lists raw answers
        checker = None
    reps: list[str] = []
    shown: list[str] = []
    counts: list[int] = []
    for ans in answers:
        for i, rep in enumerate(reps):
            same = ans == rep
            if not same and checker is not None:
                try:
                    same = bool(checker.equivalent(rep, ans))
                except Exception:  # noqa: BLE001 - a checker failure is "not the same"
                    same = False
            if same:
                counts[i] += 1
                break
        else:
            reps.append(ans)
            text = ans
            if checker is not None:
                try:
                    text = str(checker.normalize(ans) or ans)
                except Exception:  # noqa: BLE001
                    text = ans
            shown.append(text)
            counts.append(1)
    order = sorted(range(len(reps)), key=lambda i: -counts[i])  # stable: first seen wins ties
    return [(shown[i], counts[i]) for i in order]


def _print_result(result: Any, model_label: str, task: str | None = None) -> None:
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
    groups = group_answers([c.answer for c in result.candidates if c.answer is not None], task)
    if groups:
        print(f"Candidates: {', '.join(f'{a} x{n}' for a, n in groups)}")
    u = result.usage
    est = "~" if u.tokens_estimated else ""
    print(
        f"Usage: {u.llm_calls} model calls, {u.samples} samples, {est}{u.prompt_tokens:,} prompt + "
        f"{est}{u.completion_tokens:,} generated tokens, {u.rollouts} rollouts, {u.nodes} nodes, "
        f"{u.wall_seconds:.2f} s"
    )
    failed = [e for e in result.errors if not e.get("warning")]
    if failed:
        first = failed[0].get("error")
        print(f"Errors: {len(failed)} model call(s) failed; first: {first}")
    for warning in (e for e in result.errors if e.get("warning")):
        print(f"Warning: {warning.get('error')}")
    if result.limits_hit:
        print(f"Limits hit: {', '.join(result.limits_hit)}")


def _solve_progress_base() -> type:
    from langchain_core.callbacks import BaseCallbackHandler

    return BaseCallbackHandler


class _SolveProgress(_solve_progress_base()):  # type: ignore[misc]
    """Progress of ``rstar solve`` on stderr, one bar per phase: rollouts, then verification.

    Rollouts come from the chain's progress events. Verification (the discriminator's
    completions, often the longer phase on a CPU) emits none, so this is also a callback
    handler that counts the model calls named ``discriminator`` as they end.
    """

    raise_error = False
    run_inline = True

    def __init__(self, num_rollouts: int) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._rollouts = tqdm(
            total=num_rollouts, desc="rollouts", unit="rollout", file=sys.stderr, dynamic_ncols=True
        )
        self._verify: Any = None
        self._lock = threading.Lock()

    def rollout(self, event: Any) -> None:
        bar = self._rollouts
        if bar is None:
            return
        if bar.n < (bar.total or 0):
            bar.update(1)
        bar.set_postfix(
            best=event.best_answer,
            conf=f"{event.confidence:.2f}",
            tok=event.completion_tokens,
            refresh=False,
        )

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        return None

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        if kwargs.get("name") != "discriminator":
            return
        with self._lock:
            if self._verify is None:
                if self._rollouts is not None:
                    self._rollouts.close()
                    self._rollouts = None
                self._verify = self._tqdm(
                    desc="verification", unit="call", file=sys.stderr, dynamic_ncols=True
                )
            self._verify.update(1)

    def close(self) -> None:
        with self._lock:
            for bar in (self._rollouts, self._verify):
                if bar is not None:
                    bar.close()
            self._rollouts = self._verify = None


def cmd_solve(args: argparse.Namespace) -> int:
    from langchain_rstar.chain import RStarChain, validate_question
    from langchain_rstar.errors import RStarBackendError
    from langchain_rstar.result import RStarProgress, RStarResult

    question = sys.stdin.read() if args.question == "-" else args.question
    config = build_config(args, task=args.task)
    try:
        question = validate_question(question, config.max_question_chars)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if args.tree:
        _check_writable(args.tree, "--tree")  # before minutes of model start and search
    _quiet_engines(args.verbose)
    llm, model_label = _load_model(args, show=not args.quiet)
    if args.scripted:
        model_label = SCRIPTED_LABEL
        _err(f"model: {SCRIPTED_LABEL}")
    chain = RStarChain(
        generator=llm, discriminator=False if args.no_verify else None, config=config
    )
    result: RStarResult | None = None
    progress = None if args.quiet else _SolveProgress(config.num_rollouts)
    try:
        stream_config = {"callbacks": [progress]} if progress is not None else None
        for event in chain.stream(question, config=stream_config):  # type: ignore[arg-type]
            if isinstance(event, RStarProgress) and progress is not None:
                progress.rollout(event)
            elif isinstance(event, RStarResult):
                result = event
    except RStarBackendError as exc:
        if progress is not None:
            progress.close()
        _err(f"the model backend stopped working during the search: {exc}")
        partial = exc.partial
        if partial is not None and not args.json:
            _print_result(partial, model_label, config.task)
        elif partial is not None:
            print(partial.model_dump_json(indent=2))
        return EXIT_DEAD
    finally:
        if progress is not None:
            progress.close()
    assert result is not None
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result(result, model_label, config.task)
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
            try:
                save_html(args.tree)
            except OSError as exc:
                _err(f"--tree {args.tree}: {exc}")
                return EXIT_USAGE
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
    chain = RStarChain(
        generator=llm, discriminator=False if args.no_verify else None, config=config
    )
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
