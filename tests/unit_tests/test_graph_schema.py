"""The controller graph as LangGraph sees it: declared input/output, result built inside."""

from __future__ import annotations

import pytest

from langchain_rstar import RStarChain, RStarConfig, RStarResult
from langchain_rstar.testing import APPLES_QUESTION, apples_llm

CONFIG = RStarConfig(num_rollouts=4, retry_backoff=0.0)


def test_the_graph_declares_its_input_and_output() -> None:
    graph = RStarChain(generator=apples_llm(), config=CONFIG).graph
    assert set(graph.get_input_jsonschema()["properties"]) == {"question", "config"}
    assert "result" in graph.get_output_jsonschema()["properties"]
    assert "finish" in graph.get_graph().nodes


def test_the_graph_builds_the_same_result_as_the_chain() -> None:
    chain = RStarChain(generator=apples_llm(), discriminator=True, config=CONFIG)
    out = chain.graph.invoke(
        {"question": f"  {APPLES_QUESTION}\n", "config": CONFIG.model_dump()},
        {"recursion_limit": 10_000},
    )
    direct = RStarResult.model_validate(out["result"])
    via_chain = chain.invoke(APPLES_QUESTION)
    assert direct.question == APPLES_QUESTION  # init checked and cleaned it
    assert direct.answer == via_chain.answer == "10"
    assert direct.tree == via_chain.tree
    assert direct.model_dump(exclude={"usage"}) == via_chain.model_dump(exclude={"usage"})


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b"])
def test_the_graph_rejects_a_bad_question_before_any_model_call(bad: str) -> None:
    llm = apples_llm()
    chain = RStarChain(generator=llm, config=CONFIG)
    with pytest.raises(ValueError, match="empty|control"):
        chain.graph.invoke({"question": bad, "config": CONFIG.model_dump()})
    assert llm.calls == []


@pytest.mark.parametrize("profile", ["paper", "fast"])
def test_the_config_is_hydrated_once_per_search(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RStarChain validates its config once and runs the graph with it as the LangGraph
    context: no node, route, Send task or the verify subgraph validates it again (#18), and
    there is no module-level cache. A graph run with only the state's dict still works."""
    import langchain_rstar.search.state as state_mod

    config = getattr(RStarConfig, profile)(num_rollouts=4, retry_backoff=0.0)
    chain = RStarChain(generator=apples_llm(), discriminator=True, config=config)
    validations: list[object] = []
    original = RStarConfig.model_validate

    def counting(data: object, *args: object, **kwargs: object) -> RStarConfig:
        validations.append(data)
        return original(data, *args, **kwargs)

    monkeypatch.setattr(state_mod.RStarConfig, "model_validate", counting)
    result = chain.invoke(APPLES_QUESTION)
    assert result.answer == "10" and result.verification.ran
    assert validations == []
    assert not [n for n, v in vars(state_mod).items() if isinstance(v, tuple | RStarConfig)]

    # without a context (LangGraph Server's graph, a user's own graph.invoke) the state's dict
    # is the config: read where needed, same answer
    out = chain.graph.invoke(
        {"question": APPLES_QUESTION, "config": config.model_dump()}, {"recursion_limit": 10_000}
    )
    assert out["result"]["answer"] == "10"
    assert validations and all(v == config.model_dump() for v in validations)
