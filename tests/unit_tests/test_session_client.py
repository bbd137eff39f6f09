"""``rstar eval --backend openai`` builds a bounded client with session affinity on.

The sampler owns the retries (``RStarConfig.max_retries``), so the HTTP client must not
retry on top of it, and every request needs a finite timeout (docs/scaleout.md).
"""

from __future__ import annotations

import argparse
import json

import pytest

from langchain_rstar import cli
from langchain_rstar.llms import _session

pytest.importorskip("langchain_openai")


def args(**kw: object) -> argparse.Namespace:
    base = {"backend": "openai", "model": "sim", "base_url": "http://127.0.0.1:9/v1"}
    base.update(kw)
    return argparse.Namespace(**base)


def test_openai_backend_client_does_not_retry_and_has_a_timeout() -> None:
    llm, label = cli.build_llm(args())
    assert llm.max_retries == 0  # the sampler retries (default max_retries 2)
    assert llm.request_timeout == _session.DEFAULT_REQUEST_TIMEOUT
    assert label == "sim (openai @ http://127.0.0.1:9/v1)"
    llm, _ = cli.build_llm(args(request_timeout=42.0))
    assert llm.request_timeout == 42.0


def test_client_retries_once_only_when_the_sampler_does_not() -> None:
    llm, _ = cli.build_llm(args(config=json.dumps({"max_retries": 0})))
    assert llm.max_retries == 1
    llm, _ = cli.build_llm(args(config=json.dumps({"max_retries": 4})))
    assert llm.max_retries == 0


def test_bad_timeout_is_a_usage_error_before_any_call() -> None:
    with pytest.raises(cli.CLIError, match="request-timeout"):
        cli.build_llm(args(request_timeout=-1.0))


def test_session_keys_are_on_by_default_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _session.session("rstar/q1"):
        kw = _session.session_kwargs("openai", "scope-x")
    assert kw == {"user": "rstar/q1", "extra_headers": {"x-session-id": "rstar/q1"}}
    assert _session.session_kwargs("openai", "scope-x")["user"] == "scope-x"  # search id
    assert _session.session_kwargs("native", "scope-x") == {}
    monkeypatch.setenv("RSTAR_SESSION_AFFINITY", "0")
    with _session.session("rstar/q1"):
        assert _session.session_kwargs("openai", "scope-x") == {}
