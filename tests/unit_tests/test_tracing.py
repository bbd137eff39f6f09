"""Tracing: one readable run tree per search, with rStar metadata; checked locally.

Two views: the in-process run tree (``RunCollectorCallbackHandler``), and what a LangSmith
client would send over the wire, recorded by a fake HTTP session (nothing leaves the
process: every request is answered by the recorder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.tracers.schemas import Run

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar import prompts as P
from langchain_rstar.search.actions import ACTION_NODE_NAMES
from scripts import GOLD, QUESTION, apples_llm

ACTION_NAMES = set(ACTION_NODE_NAMES.values())
CONFIG = RStarConfig(num_rollouts=4, num_votes=3, num_masks=2)


def walk(run: Run, parent: Run | None = None) -> Iterator[tuple[Run, Run | None]]:
    yield run, parent
    for child in run.child_runs:
        yield from walk(child, run)


def meta(run: Run) -> dict[str, Any]:
    return dict((run.extra or {}).get("metadata") or {})


@pytest.fixture(scope="module")
def traced() -> tuple[Any, Run]:
    collector = RunCollectorCallbackHandler()
    chain = RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG)
    result = chain.invoke(QUESTION, {"callbacks": [collector]})
    assert len(collector.traced_runs) == 1, "one search, one root run"
    return result, collector.traced_runs[0]


def test_root_run_is_rstar_and_returns_the_trajectory(traced: tuple[Any, Run]) -> None:
    result, root = traced
    assert root.name == "RStar" and root.run_type == "chain" and root.parent_run_id is None
    assert root.inputs == {"input": QUESTION}
    out = root.outputs["output"]
    assert out.answer == GOLD == result.answer
    assert [s.node_id for s in out.trajectory] == [s.node_id for s in result.trajectory]


def test_action_runs_are_named_by_action_and_carry_tree_metadata(traced: tuple[Any, Run]) -> None:
    result, root = traced
    action_runs = [r for r, _ in walk(root) if r.name in ACTION_NAMES and r.run_type == "chain"]
    assert {r.name for r in action_runs} >= {"A1_one_step_thought", "A2_direct_answer"}
    described = [r for r in action_runs if "rstar_node_id" in meta(r)]
    assert described, "the action runs must say which tree node they expand"
    for run in described:
        m = meta(run)
        node = result.tree[m["rstar_node_id"]]
        assert m["rstar_parent_id"] == node["parent"]
        assert m["rstar_depth"] == node["depth"]
        assert ACTION_NODE_NAMES[m["rstar_action"]] == run.name
        assert {"rstar_q", "rstar_n", "rstar_rollout"} <= set(m)
    # expansions of the root and of deeper nodes both appear
    assert {meta(r)["rstar_depth"] for r in described} >= {0, 1}


def test_every_llm_call_sits_under_the_node_that_made_it(traced: tuple[Any, Run]) -> None:
    _, root = traced
    llm_runs = [(r, p) for r, p in walk(root) if r.run_type == "llm"]
    assert llm_runs
    for run, parent in llm_runs:
        assert parent is not None
        if run.name == "discriminator":
            assert parent.name == "discriminate"
        else:
            assert parent.name in ACTION_NAMES
            assert run.name.startswith(parent.name)
            assert meta(run)["rstar_node_id"] == meta(parent)["rstar_node_id"]


def test_verification_has_one_run_per_candidate_and_mask(traced: tuple[Any, Run]) -> None:
    result, root = traced
    verify = [r for r, _ in walk(root) if r.name == "verify"]
    assert verify
    # LangGraph traces a node and the runnable inside it: count the node runs only
    jobs = [r for r, p in walk(verify[0]) if r.name == "discriminate" and p.name != r.name]
    # Copies of one solution text are verified once (paper: verify_dedupe).
    distinct = {
        tuple(P.path_lines([s.model_dump() for s in c.trajectory])): c for c in result.candidates
    }
    assert len(jobs) == sum(len(c.masks) for c in distinct.values()) > 0


def test_one_run_per_rollout_with_its_answer(traced: tuple[Any, Run]) -> None:
    result, root = traced
    rollouts = [r for r, _ in walk(root) if r.name == "rollout"]
    assert sorted(meta(r)["rstar_rollout"] for r in rollouts) == list(range(CONFIG.num_rollouts))
    for run in rollouts:
        m = meta(run)
        leaf = result.tree[m["rstar_node_id"]]
        assert run.inputs["path"][-1]["id"] == leaf["id"]
        assert run.inputs["path"][0]["id"] == "0"
        assert {"Q", "N", "action"} <= set(run.inputs["path"][-1])
        assert m["rstar_answer"] == (leaf["answer"] if leaf.get("terminal") else None)
        assert run.outputs == {"answer": m["rstar_answer"], "reward": m["rstar_reward"]}
    assert any(meta(r)["rstar_answer"] == GOLD for r in rollouts)


# --------------------------------------------------------------------------------------
# What LangSmith would receive
# --------------------------------------------------------------------------------------
class RecordingSession(requests.Session):
    """A ``requests`` session that records every request and answers ``{}`` locally."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.headers["Content-Type"] = "application/json"
        response.request = request
        response.url = request.url or ""
        return response


def _body(request: requests.PreparedRequest) -> bytes:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    if request.headers.get("Content-Encoding") == "zstd":  # pragma: no cover - compression on
        import zstandard

        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return body


def posted_runs(session: RecordingSession) -> dict[str, dict[str, Any]]:
    """Runs as the server would assemble them from the recorded posts and patches."""
    runs: dict[str, dict[str, Any]] = {}

    def add(run: dict[str, Any]) -> None:
        runs.setdefault(str(run["id"]), {}).update(run)

    for request in session.sent:
        url = request.url or ""
        ctype = request.headers.get("Content-Type", "")
        if request.method == "GET":
            continue
        body = _body(request)
        if "multipart" in ctype:
            boundary = re.search(r"boundary=([^;]+)", ctype).group(1).encode()
            for part in body.split(b"--" + boundary):
                head, _, content = part.partition(b"\r\n\r\n")
                name = re.search(rb'name="([^"]+)"', head)
                if not name:
                    continue
                _, run_id, *field = name.group(1).decode().split(".")
                value = json.loads(content.rstrip(b"\r\n"))
                if field:
                    runs.setdefault(run_id, {})[field[0]] = value
                else:
                    runs.setdefault(run_id, {}).update(value)
        elif url.endswith("/runs/batch"):
            data = json.loads(body)
            for run in data.get("post", []) + data.get("patch", []):
                add(run)
        elif "/runs" in url:
            run = json.loads(body)
            if request.method == "PATCH":
                run["id"] = url.rsplit("/", 1)[-1]
            add(run)
    return runs


def test_langsmith_receives_the_run_tree_when_tracing_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_core.tracers.langchain import wait_for_all_tracers
    from langsmith import Client
    from langsmith.run_helpers import tracing_context

    # LANGSMITH_TRACING=true as a user would set it; the endpoint is unreachable anyway,
    # and every request goes to the recording session instead.
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "test-key")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", "http://localhost:1")
    session = RecordingSession()
    client = Client(api_url="http://localhost:1", api_key="test-key", session=session)
    chain = RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG)
    with tracing_context(client=client, project_name="rstar-unit", enabled=True):
        result = chain.invoke(QUESTION)
    wait_for_all_tracers()
    client.flush()

    assert session.sent and all(r.url.startswith("http://localhost:1/") for r in session.sent)
    runs = posted_runs(session)
    roots = [r for r in runs.values() if not r.get("parent_run_id")]
    assert [r["name"] for r in roots] == ["RStar"]
    root = roots[0]
    output = root["outputs"]["output"]  # the RStarResult, as JSON
    assert output["answer"] == result.answer == GOLD
    assert [s["node_id"] for s in output["trajectory"]] == [s.node_id for s in result.trajectory]
    names = {r.get("name") for r in runs.values()}
    assert {"A1_one_step_thought", "A2_direct_answer", "verify", "discriminate", "rollout"} <= names
    described = [
        r
        for r in runs.values()
        if r.get("name") in ACTION_NAMES
        and "rstar_node_id" in ((r.get("extra") or {}).get("metadata") or {})
    ]
    assert described
    assert all(r.get("trace_id") == root["id"] for r in runs.values())


def _all_runs(roots: list[Run]) -> list[Run]:
    return [run for root in roots for run, _ in walk(root)]


@pytest.mark.parametrize("listen", ["collect_runs", "handler"])
def test_one_root_and_every_node_traced_once(listen: str) -> None:
    """``RStar`` is the first and only root, and no node run wraps an identical run."""
    from langchain_core.tracers.context import collect_runs

    chain = RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG)
    if listen == "collect_runs":
        with collect_runs() as cb:
            chain.invoke(QUESTION)
        roots = list(cb.traced_runs)
    else:
        collector = RunCollectorCallbackHandler()
        chain.invoke(QUESTION, {"callbacks": [collector]})
        roots = list(collector.traced_runs)
    assert [r.name for r in roots] == ["RStar"]
    runs = _all_runs(roots)
    wrapped = [
        r.name
        for r in runs
        if r.run_type == "chain"
        and len(r.child_runs) == 1
        and (r.child_runs[0].name, r.child_runs[0].run_type) == (r.name, "chain")
    ]
    # the only node whose run holds a run of its own name is the verification subgraph
    # (the node run, then the subgraph's graph run with plan/discriminate/judge inside)
    assert wrapped == ["verify"]
    graph_run = roots[0].child_runs[0]
    node_names = [r.name for r in graph_run.child_runs]
    assert node_names[:2] == ["init", "select"] and "collect" in node_names
    # each model call sits directly under its action node's run
    for run, parent in walk(roots[0]):
        if run.run_type == "llm" and run.name in ACTION_NAMES:
            assert parent is not None and parent.run_type == "chain"
            assert parent.name in ACTION_NAMES
            assert meta(parent)["rstar_node_id"] == meta(run)["rstar_node_id"]
