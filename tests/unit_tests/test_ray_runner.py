"""The Ray runner's pieces that need no Ray cluster (fast): the actor's ``solve`` turns every
outcome into a value, the driver maps values back to what the harness expects, and the CLI
checks its Ray options before any work. The runs on a real local Ray instance (actor killed,
driver killed) are in tests/integration_tests/test_ray_eval.py."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import cli
from langchain_rstar.errors import BackendDeadError, QuestionFailed, RayWorkerError
from langchain_rstar.eval.baselines import MethodOutput
from langchain_rstar.eval.ray_runner import RayRunner, _outcome, _SearchActor
from langchain_rstar.llms._session import current_session


class _Method:
    name = "fake"

    def __init__(self, raises: BaseException | None = None) -> None:
        self.raises = raises
        self.seen: list[tuple[str, str | None, str | None]] = []

    def settings(self) -> dict[str, Any]:
        return {}

    def solve(self, question: str, task: str | None = None) -> MethodOutput:
        self.seen.append((question, task, current_session()))
        if self.raises is not None:
            raise self.raises
        return MethodOutput(prediction="7", confidence=1.0, answers={"7": 1})


def _solve(actor: _SearchActor, question: str = "q?", key: str | None = "run/q1") -> Any:
    return asyncio.run(actor.solve(question, "arithmetic", key))


def test_a_solved_question_comes_back_with_its_seconds_and_session_key() -> None:
    method = _Method()
    actor = _SearchActor(lambda: method, threads=2)
    kind, out, seconds = _solve(actor)
    assert kind == "ok" and out.prediction == "7" and seconds >= 0
    # the requests of the question carry <label>/<id> (vllm-router keeps it on one replica)
    assert method.seen == [("q?", "arithmetic", "run/q1")]
    assert _outcome(("ok", out, seconds)) == (out, seconds)


@pytest.mark.parametrize(
    ("exc", "kind", "mapped"),
    [
        (BackendDeadError("connection refused"), "dead", BackendDeadError),
        (QuestionFailed("2 model calls failed"), "failed", QuestionFailed),
        (ValueError("boom"), "error", RayWorkerError),
        (KeyError("x"), "error", RayWorkerError),
    ],
)
def test_every_exception_comes_back_as_a_value(
    exc: BaseException, kind: str, mapped: type[BaseException]
) -> None:
    method = _Method(raises=exc)
    value = _solve(_SearchActor(lambda: method, threads=1))
    assert value[0] == kind and len(method.seen) == 1
    back = _outcome(value)
    assert isinstance(back, mapped)
    assert type(exc).__name__ in str(back) or str(exc) in str(back)


def test_a_model_that_cannot_be_built_is_a_dead_backend_every_time() -> None:
    calls = []

    def factory() -> Any:
        calls.append(1)
        raise OSError("no such model folder")

    actor = _SearchActor(factory, threads=1)
    for _ in range(3):
        kind, message = _solve(actor)
        assert kind == "dead" and "cannot build the model on a Ray worker" in message
        assert "no such model folder" in message
    assert calls == [1]  # built (tried) once per actor process


def test_an_async_method_is_awaited_on_the_actor_loop() -> None:
    class _Async(_Method):
        async def asolve(self, question: str, task: str | None = None) -> MethodOutput:
            await asyncio.sleep(0)
            self.seen.append((question, task, current_session()))
            return MethodOutput(prediction="8")

    method = _Async()
    kind, out, _ = _solve(_SearchActor(lambda: method, threads=1), key="lbl/9")
    assert kind == "ok" and out.prediction == "8" and method.seen == [("q?", "arithmetic", "lbl/9")]


def test_a_value_of_the_wrong_shape_is_an_error_not_a_record() -> None:
    assert isinstance(_outcome(None), RayWorkerError)
    assert isinstance(_outcome(("ok", {"prediction": "1"}, 0.1)), RayWorkerError)


def test_runner_arguments_are_bounded() -> None:
    with pytest.raises(ValueError, match="ray-workers"):
        RayRunner(lambda: None, label="x", workers=0)
    with pytest.raises(ValueError, match="bounded"):
        RayRunner(lambda: None, label="x", max_task_retries=-1)
    # at least one question in flight per actor
    assert RayRunner(lambda: None, label="x", workers=4, concurrency=1).concurrency == 4


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"id": "a", "problem": "1+1?", "solution": "2"}) + "\n")
    return path


def test_cli_ray_workers_needs_an_address(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["eval", "--scripted", "--dataset", str(_dataset(tmp_path)), "--method", "cot"]
    out = str(tmp_path / "o.jsonl")
    assert cli.main([*args, "--out", out, "--ray-workers", "2"]) == cli.EXIT_USAGE
    assert "--ray-workers needs --ray-address" in capsys.readouterr().err
    code = cli.main([*args, "--out", out, "--ray-address", "local", "--ray-workers", "0"])
    assert code == cli.EXIT_USAGE
    assert not Path(out).exists()


def test_cli_without_ray_installed_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    out = tmp_path / "o.jsonl"
    code = cli.main(
        [
            "eval",
            "--scripted",
            "--dataset",
            str(_dataset(tmp_path)),
            "--method",
            "cot",
            "--out",
            str(out),
            "--ray-address",
            "local",
            "--no-progress",
        ]
    )
    assert code == cli.EXIT_USAGE
    assert "pip install 'langchain-rstar[ray]'" in capsys.readouterr().err
    assert not out.exists() or out.read_text() == ""
