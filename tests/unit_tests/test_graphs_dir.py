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
    """Load ``graphs/rstar.py`` the way LangGraph Server does: by file path, then read the
    graph from the module's ``__dict__`` (the server never calls a module ``__getattr__``)."""
    for key in ("RSTAR_BASE_URL", "RSTAR_MODEL", "RSTAR_API_KEY", "RSTAR_SCRIPTED"):
        monkeypatch.delenv(key, raising=False)
    if "RSTAR_BASE_URL" not in env:
        env = {"RSTAR_SCRIPTED": "1", **env}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    name = "rstar_deploy_graph_under_test"
    spec = importlib.util.spec_from_file_location(name, ROOT / "graphs" / "rstar.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def _langgraph_api_loader() -> object | None:
    try:
        from langgraph_api import graph as lg_graph  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lg_graph


def test_langgraph_json_points_at_the_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    path, _, attr = config["graphs"]["rstar"].partition(":")
    assert (ROOT / path).resolve() == (ROOT / "graphs" / "rstar.py").resolve()
    assert attr == "graph"


def test_graph_is_a_real_module_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_graph_module(monkeypatch, RSTAR_NUM_ROLLOUTS="20")
    assert "__getattr__" not in module.__dict__
    graph = module.__dict__["graph"]  # what langgraph_api's loader reads
    assert type(graph).__name__ in ("CompiledStateGraph", "RunnableBinding")
    assert type(getattr(graph, "bound", graph)).__name__ == "CompiledStateGraph"
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


@pytest.mark.parametrize("bad", [2.5, "3", 0, -1, True, 65])
def test_num_rollouts_input_is_validated(monkeypatch: pytest.MonkeyPatch, bad: object) -> None:
    module = load_graph_module(monkeypatch)
    with pytest.raises(ValueError, match="num_rollouts"):
        module.graph.invoke({"question": "What is 6 times 7?", "num_rollouts": bad})


def test_openai_backend_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    module = load_graph_module(
        monkeypatch,
        RSTAR_BASE_URL="http://127.0.0.1:9/v1",
        RSTAR_MODEL="served-model",
        RSTAR_API_KEY="k",
        RSTAR_REQUEST_TIMEOUT="7",
    )
    llm = module._llm_from_env()
    assert type(llm).__name__ == "OpenAI"
    assert llm.model_name == "served-model" and llm.openai_api_base == "http://127.0.0.1:9/v1"
    assert llm.max_retries == 0  # the sampler retries; the client must not multiply them
    assert llm.request_timeout == 7.0


def test_base_url_without_model_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="RSTAR_MODEL"):
        load_graph_module(monkeypatch, RSTAR_BASE_URL="http://127.0.0.1:9/v1")


def test_no_backend_fails_at_load_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util as iu

    real = iu.find_spec
    missing = {"vllm", "transformers", "torch"}
    monkeypatch.setattr(
        iu, "find_spec", lambda name, *a, **k: None if name in missing else real(name, *a, **k)
    )
    with pytest.raises(ImportError, match="pip install"):
        load_graph_module(monkeypatch, RSTAR_SCRIPTED="0")


def test_langgraph_api_loader_finds_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    lg_graph = _langgraph_api_loader()
    if lg_graph is None:
        pytest.skip("langgraph-api is not installed (pip install 'langgraph-cli[inmem]')")
    monkeypatch.setenv("RSTAR_SCRIPTED", "1")
    monkeypatch.chdir(ROOT)
    spec = lg_graph.GraphSpec(id="rstar", path="./graphs/rstar.py", variable="graph")  # type: ignore[attr-defined]
    loaded = lg_graph._graph_from_spec(spec)  # type: ignore[attr-defined]
    assert loaded is not None
