"""The pure MCTS core: UCT, selection, virtual loss, backpropagation."""

from __future__ import annotations

import math

import pytest

from langchain_rstar.search import mcts


def _tree() -> dict[str, dict]:
    return {
        "0": {"visits": 10, "value": 4.0, "children": ["a", "b", "c"], "expanded": True},
        "a": {"visits": 6, "value": 3.0, "children": [], "expanded": False},
        "b": {"visits": 3, "value": 0.3, "children": [], "expanded": False},
        "c": {"visits": 1, "value": 0.9, "children": [], "expanded": False},
    }


def test_uct_formula() -> None:
    got = mcts.uct_score(3.0, 6, 10, 2.0)
    assert got == pytest.approx(0.5 + 2.0 * math.sqrt(math.log(10) / 6))
    assert mcts.uct_score(0.0, 0, 10, 2.0) == math.inf
    # exploration weight 0: pure exploitation
    assert mcts.uct_score(3.0, 6, 10, 0.0) == pytest.approx(0.5)


def test_select_child_takes_highest_uct() -> None:
    tree = _tree()
    rng = mcts.rng_for(0)
    scores = {
        c: mcts.uct_score(tree[c]["value"], tree[c]["visits"], 10, 2.0) for c in ("a", "b", "c")
    }
    assert mcts.select_child(tree, "0", 2.0, rng) == max(scores, key=scores.__getitem__) == "c"
    # with c = 0 the best mean wins (c: 0.9)
    assert mcts.select_child(tree, "0", 0.0, rng) == "c"
    tree["c"]["value"] = 0.1
    assert mcts.select_child(tree, "0", 0.0, rng) == "a"


def test_unvisited_children_first() -> None:
    tree = _tree()
    tree["d"] = {"visits": 0, "value": 0.0, "children": []}
    tree["0"]["children"].append("d")
    for seed in range(5):
        assert mcts.select_child(tree, "0", 2.0, mcts.rng_for(seed)) == "d"


def test_select_path_stops_at_unexpanded_or_terminal() -> None:
    tree = _tree()
    assert mcts.select_path(tree, "0", 2.0, mcts.rng_for(1)) == ["0", "c"]
    tree["c"].update(expanded=True, children=["c1"])
    tree["c1"] = {"visits": 0, "value": 0.0, "terminal": True}
    assert mcts.select_path(tree, "0", 2.0, mcts.rng_for(1)) == ["0", "c", "c1"]


def test_virtual_loss_spreads_a_wave() -> None:
    tree = {
        "0": {"visits": 0, "value": 0.0, "children": ["a", "b"], "expanded": True},
        "a": {"visits": 0, "value": 0.0},
        "b": {"visits": 0, "value": 0.0},
    }
    virtual: dict[str, float] = {}
    first = mcts.select_path(tree, "0", 2.0, mcts.rng_for(0), virtual)
    mcts.apply_virtual_loss(virtual, first, 1.0)
    second = mcts.select_path(tree, "0", 2.0, mcts.rng_for(0), virtual)
    assert first[-1] != second[-1]
    assert virtual == {"0": 1.0, first[-1]: 1.0}


def test_backpropagate_adds_reward_and_visit() -> None:
    tree = _tree()
    updates = mcts.backpropagate(tree, ["0", "b"], 0.7)
    assert updates == {"0": {"visits": 11.0, "value": 4.7}, "b": {"visits": 4.0, "value": 1.0}}
    # inputs untouched
    assert tree["0"]["visits"] == 10


def test_random_child_is_seeded() -> None:
    tree = _tree()
    picks = {mcts.random_child(tree, "0", mcts.rng_for("x", i)) for i in range(30)}
    assert picks == {"a", "b", "c"}
    assert mcts.random_child(tree, "0", mcts.rng_for("x", 1)) == mcts.random_child(
        tree, "0", mcts.rng_for("x", 1)
    )
    assert mcts.random_child(tree, "a", mcts.rng_for(0)) is None
