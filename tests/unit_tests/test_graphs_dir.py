"""The deployable graph (``graphs/rstar.py``) and ``langgraph.json``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from langgraph.checkpoint.memory import InMemorySaver

ROOT = Path(__file__).resolve().parents[2]


def load_graph_module(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    monkeypatch.setenv("RSTAR_SCRIPTED", "1")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    name = "rstar_deploy_graph_under_test"
    spec = importlib.util.spec_from_file_location(name, ROOT / "graphs" / "rstar.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_langgraph_json_points_at_the_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    path, _, attr = config["graphs"]["rstar"].partition(":")
    assert (ROOT / path).resolve() == (ROOT / "graphs" / "rstar.py").resolve()
    assert attr == "graph"


def test_import_is_lazy_and_the_graph_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_graph_module(monkeypatch, RSTAR_NUM_ROLLOUTS="20")
    assert module._GRAPH is None  # importing built nothing
    graph = module.graph
    assert module.graph is graph
    assert type(graph).__name__ == "CompiledStateGraph"
    # 20 rollouts need far more supersteps than LangGraph's default limit of 25
    out = graph.invoke({"question": "What is 6 times 7?"})
    assert out["answer"] == "42" and out["confidence"] > 0.5
    assert out["result"]["usage"]["rollouts"] == 20
    assert out["trajectory"] and out["trajectory"][-1]["answer"] == "42"
    assert set(out) == {"answer", "confidence", "trajectory", "stop_reason", "result"}
    json.dumps(out)  # plain JSON, as LangGraph Server returns it


def test_budget_in_the_input_and_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_graph_module(monkeypatch, RSTAR_MAX_ROLLOUTS="8")
    graph = module.make_graph()
    out = graph.invoke({"question": "What is 6 times 7?", "num_rollouts": 3})
    assert out["result"]["usage"]["rollouts"] == 3
    with pytest.raises(ValueError, match="num_rollouts"):
        graph.invoke({"question": "What is 6 times 7?", "num_rollouts": 500})
    with pytest.raises(ValueError, match="empty"):
        graph.invoke({"question": "  "})


def test_studio_view_shows_the_controller_as_a_subgraph(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_graph_module(monkeypatch)
    drawing = module.make_graph().get_graph(xray=True)
    names = set(drawing.nodes)
    assert {"prepare", "report"} <= names
    assert any(n.endswith("A3_subquestion") for n in names)
    assert any(n.endswith("discriminate") for n in names)


def test_streams_subgraph_steps_and_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_graph_module(monkeypatch)
    from langchain_rstar import RStarChain, RStarConfig

    chain = RStarChain(
        generator=module.scripted_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=3),
    )
    compiled = module.make_graph(chain, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "deploy"}}
    steps = [
        ns_update
        for ns_update in compiled.stream(
            {"question": "What is 6 times 7?"}, thread, stream_mode="updates", subgraphs=True
        )
    ]
    namespaces = {ns for ns, _ in steps}
    assert () in namespaces and any(ns and ns[0].startswith("search") for ns in namespaces)
    nodes = {name for _, update in steps for name in update}
    assert {"prepare", "select", "A2_direct_answer", "backprop", "report"} <= nodes
    assert compiled.get_state(thread).values["answer"] == "42"
