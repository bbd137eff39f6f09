"""The rStar controller: MCTS over the five actions as a LangGraph ``StateGraph`` (wiring only).

Graph shape::

    init -> select --Send per (leaf, legal action)--> A1..A5 -> advance --Send--> A1..A5 ...
                 \\                                            \\-> collect (budget spent)
                  \\-> backprop (a wave that needs no expansion) --Send--> A1..A5 | collect
    collect -> verify (subgraph, when a discriminator is set) -> finish -> END

Input is :class:`~langchain_rstar.search.state.SearchInput` (question and config; ``init``
checks the question and resets the rest of the state), output
:class:`~langchain_rstar.search.state.SearchOutput`, whose ``result`` the last node,
``finish`` (:mod:`~langchain_rstar.search.finish`), builds from the final state.

Where each piece lives: the controller nodes (init, select, advance, backprop) in
:mod:`~langchain_rstar.search.rollouts`, the action nodes in
:mod:`~langchain_rstar.search.drive` (the actions themselves and their table in
:mod:`~langchain_rstar.search.actions`), budget and early stop in
:mod:`~langchain_rstar.search.budget`, ``collect`` and the final-answer rule in
:mod:`~langchain_rstar.search.candidates`, verification in
:mod:`~langchain_rstar.search.verify`. State is plain, id-keyed records
(:mod:`~langchain_rstar.search.state`).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from langchain_rstar.config import RStarConfig
from langchain_rstar.sampling.sampler import Sampler
from langchain_rstar.search._untraced import InlineRoute, control_node
from langchain_rstar.search.actions import ACTION_SPECS
from langchain_rstar.search.budget import recursion_limit
from langchain_rstar.search.candidates import collect
from langchain_rstar.search.drive import action_node
from langchain_rstar.search.finish import finish
from langchain_rstar.search.rollouts import (
    advance,
    backprop,
    init,
    make_select,
    route_after_collect,
    route_expansions,
)
from langchain_rstar.search.state import ROOT_ID, RStarState, SearchInput, SearchOutput
from langchain_rstar.search.verify import build_verify_graph

# ``ROOT_ID`` and ``recursion_limit`` are re-exported: ``graphs/rstar.py`` and older code
# import them from here.
__all__ = ["ROOT_ID", "build_graph", "recursion_limit"]


def build_graph(
    generator: Sampler,
    discriminator: Sampler | None = None,
    *,
    checkpointer: Any = None,
    name: str = "rstar",
    verifier: str = "discriminator",
    verifier_model: str | None = None,
) -> Any:
    """Compile the controller graph.

    Args:
        generator: sampler of the generator model.
        discriminator: sampler of the discriminator model; None skips mutual verification
            (the answer is the generator's weighted majority).
        checkpointer: optional LangGraph checkpointer.
        name: the compiled graph's name.
        verifier: ``"generator"`` when ``discriminator`` samples the generator model, else
            ``"discriminator"`` (reported in the result's ``verification``).
        verifier_model: the verifying model's name (reported likewise).

    Returns:
        The compiled graph (a LangGraph ``CompiledStateGraph``).
    """
    # context_schema: RStarChain passes its validated RStarConfig as the run's context, so the
    # config is hydrated once per search (search/state.py config_from_state)
    builder = StateGraph(
        RStarState,
        context_schema=RStarConfig,
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    builder.add_node("init", control_node(init, "init"))
    builder.add_node("select", control_node(make_select(), "select"))
    for spec in ACTION_SPECS.values():
        builder.add_node(spec.node_name, action_node(spec.name, generator))
    builder.add_node("advance", control_node(advance, "advance"))
    builder.add_node("backprop", control_node(backprop, "backprop"))
    builder.add_node("collect", control_node(collect, "collect"))
    builder.add_node("finish", control_node(finish, "finish"))
    action_names = [spec.node_name for spec in ACTION_SPECS.values()]
    route = InlineRoute(route_expansions)
    builder.add_edge(START, "init")
    builder.add_edge("init", "select")
    builder.add_conditional_edges("select", route, [*action_names, "backprop", "collect"])
    for node in action_names:
        builder.add_edge(node, "advance")
    builder.add_conditional_edges("advance", route, [*action_names, "backprop", "collect"])
    builder.add_conditional_edges("backprop", route, [*action_names, "backprop", "collect"])
    if discriminator is not None:
        builder.add_node(
            "verify",
            build_verify_graph(discriminator, verifier=verifier, verifier_model=verifier_model),
        )
        builder.add_conditional_edges(
            "collect", InlineRoute(route_after_collect), ["verify", "finish"]
        )
        builder.add_edge("verify", "finish")
    else:
        builder.add_edge("collect", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer, name=name)
