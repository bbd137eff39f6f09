"""SIGTERM to the ``rstar`` command: same clean path as Ctrl-C, local engines shut down."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from langchain_rstar import cli


class _Engine:
    def __init__(self) -> None:
        self.closed: list[bool] = []

    def close(self, wait: bool = True) -> None:
        self.closed.append(wait)


def test_sigterm_interrupts_and_closes_opened_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _Engine()
    before = signal.getsignal(signal.SIGTERM)

    def fake_eval(args: Any) -> int:
        cli._OPENED.append(engine)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler long before this ends
        return cli.EXIT_OK

    monkeypatch.setattr(cli, "cmd_eval", fake_eval)
    start = time.monotonic()
    code = cli.main(["eval", "--dataset", "svamp", "--method", "cot", "--scripted"])
    assert code == cli.EXIT_INTERRUPTED
    assert time.monotonic() - start < 4
    assert engine.closed == [False]  # shut down at once, queue not drained
    assert cli._OPENED == []
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored


def test_engines_are_closed_after_a_normal_run(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _Engine()

    def fake_eval(args: Any) -> int:
        cli._OPENED.append(engine)
        return cli.EXIT_OK

    monkeypatch.setattr(cli, "cmd_eval", fake_eval)
    assert cli.main(["eval", "--dataset", "svamp", "--method", "cot", "--scripted"]) == 0
    assert engine.closed == [False]


def test_close_without_wait_argument_is_tolerated(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Plain:
        def close(self) -> None:
            calls.append("closed")

    def fake_eval(args: Any) -> int:
        cli._OPENED.append(Plain())
        return cli.EXIT_OK

    monkeypatch.setattr(cli, "cmd_eval", fake_eval)
    cli.main(["eval", "--dataset", "svamp", "--method", "cot", "--scripted"])
    assert calls == ["closed"]
