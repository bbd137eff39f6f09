"""Pure Monte Carlo Tree Search over flat, id-keyed node records.

Nothing here knows about prompts, models or LangGraph. A tree is a mapping from node id to a
record with at least the keys ``visits`` (N), ``value`` (Q, the sum of rewards), ``children``
(list of child ids, empty until expanded), ``expanded`` and ``terminal``. Functions never
mutate their inputs: they return the ids they chose or the record updates to apply, so a
LangGraph reducer (or anything else) can merge them.

The rollout scheme follows the classic minimal MCTS used by rStar: *select* descends by UCT
(unvisited children first) until it reaches a node that is terminal or not yet expanded;
that node is *expanded*; *simulate* then picks random children (expanding as it goes) until
a terminal node; *backpropagate* adds the terminal reward to Q and one visit to N of every
node on the path.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "uct_score",
    "select_child",
    "select_path",
    "apply_virtual_loss",
    "backpropagate",
    "random_child",
    "rng_for",
]

Tree = Mapping[str, Mapping[str, Any]]


def uct_score(
    value: float, visits: float, parent_visits: float, exploration_weight: float
) -> float:
    """UCT of a child: ``Q/N + c * sqrt(ln(N_parent) / N)``; unvisited children score inf.

    Args:
        value: Q, the sum of rewards backpropagated through the child.
        visits: N of the child (virtual visits included).
        parent_visits: N of the parent.
        exploration_weight: the constant c.

    Returns:
        The score; ``math.inf`` when the child was never visited.
    """
    if visits <= 0:
        return math.inf
    exploit = value / visits
    if parent_visits <= 1:
        return exploit
    return exploit + exploration_weight * math.sqrt(math.log(parent_visits) / visits)


def rng_for(*parts: object) -> random.Random:
    """A random generator seeded from the given parts (stable across processes)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _visits(tree: Tree, node_id: str, extra: Mapping[str, float]) -> float:
    return float(tree[node_id].get("visits", 0)) + extra.get(node_id, 0.0)


def select_child(
    tree: Tree,
    node_id: str,
    exploration_weight: float,
    rng: random.Random,
    virtual_visits: Mapping[str, float] | None = None,
) -> str:
    """Choose the child of ``node_id`` to descend into.

    Unvisited children come first (a random one among them); otherwise the child with the
    highest UCT score, ties broken by child order.

    Args:
        tree: the node records.
        node_id: an expanded node with at least one child.
        exploration_weight: UCT constant c.
        rng: source of randomness for the unvisited-child choice.
        virtual_visits: extra visits per node (virtual loss of rollouts in flight).

    Returns:
        The chosen child's id.
    """
    extra = virtual_visits or {}
    children: Sequence[str] = tree[node_id].get("children", [])
    if not children:
        raise ValueError(f"node {node_id!r} has no children to select from")
    unvisited = [c for c in children if _visits(tree, c, extra) <= 0]
    if unvisited:
        return rng.choice(unvisited)
    parent_n = _visits(tree, node_id, extra)
    best_id, best = children[0], -math.inf
    for child in children:
        score = uct_score(
            float(tree[child].get("value", 0.0)),
            _visits(tree, child, extra),
            parent_n,
            exploration_weight,
        )
        if score > best:
            best_id, best = child, score
    return best_id


def select_path(
    tree: Tree,
    root_id: str,
    exploration_weight: float,
    rng: random.Random,
    virtual_visits: Mapping[str, float] | None = None,
) -> list[str]:
    """Descend from the root by UCT to the first node that is terminal or unexpanded.

    A node that was expanded but got no children is treated as a leaf (its rollout ends
    there with reward 0 unless it is terminal).

    Returns:
        The path of node ids, root first, leaf last.
    """
    path = [root_id]
    node = root_id
    while True:
        record = tree[node]
        if record.get("terminal") or not record.get("expanded") or not record.get("children"):
            return path
        node = select_child(tree, node, exploration_weight, rng, virtual_visits)
        path.append(node)


def apply_virtual_loss(
    virtual_visits: dict[str, float], path: Sequence[str], amount: float
) -> None:
    """Add ``amount`` virtual visits (with zero reward) to every node on ``path`` in place."""
    if amount <= 0:
        return
    for node_id in path:
        virtual_visits[node_id] = virtual_visits.get(node_id, 0.0) + amount


def random_child(tree: Tree, node_id: str, rng: random.Random) -> str | None:
    """A uniformly random child of an expanded node (the simulation policy), or None."""
    children: Sequence[str] = tree[node_id].get("children", [])
    if not children:
        return None
    return rng.choice(list(children))


def backpropagate(tree: Tree, path: Sequence[str], reward: float) -> dict[str, dict[str, float]]:
    """Updates that add ``reward`` to Q and one visit to N of every node on ``path``.

    A node that occurs twice on the path is counted once.

    Returns:
        ``{node_id: {"visits": new_N, "value": new_Q}}`` for the nodes of the path.
    """
    updates: dict[str, dict[str, float]] = {}
    for node_id in dict.fromkeys(path):
        record = tree[node_id]
        updates[node_id] = {
            "visits": float(record.get("visits", 0)) + 1,
            "value": float(record.get("value", 0.0)) + reward,
        }
    return updates
