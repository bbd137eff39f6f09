"""Pictures of an rStar search tree: Mermaid text and a self-contained HTML page.

* :func:`to_mermaid` returns a Mermaid ``flowchart`` (for Markdown, GitHub, notebooks).
* :func:`to_html` returns one HTML document with the tree drawn as inline SVG: no scripts
  or fonts from the network, so it opens offline and can be attached to a bug report.
  Nodes are coloured by action, edges are labelled with the child's ``Q`` and ``N``, the
  winning trajectory is highlighted, each node shows a short excerpt (hover for the whole
  text, click for every field in the side panel), and a legend explains the colours.
* :func:`save_html` writes that page to a file.

All three accept an :class:`~langchain_rstar.result.RStarResult` (or its dict form).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ACTION_STYLES", "to_mermaid", "to_html", "save_html"]

#: Label and colour of each action (the empty action is the root).
ACTION_STYLES: dict[str, tuple[str, str]] = {
    "": ("Question (root)", "#44546a"),
    "A1": ("A1 one-step thought", "#3b73b9"),
    "A2": ("A2 direct answer", "#2e8b57"),
    "A3": ("A3 sub-question", "#d9711c"),
    "A4": ("A4 re-answer", "#8e5ea2"),
    "A5": ("A5 rephrase", "#1a9a9a"),
}
WIN_COLOUR = "#e0a800"
_ROOT_ID = "0"


# --------------------------------------------------------------------------------------
# Reading the result
# --------------------------------------------------------------------------------------
@dataclass
class _View:
    question: str
    answer: str | None
    confidence: float
    tree: dict[str, dict[str, Any]]
    win: set[str]
    verified: dict[str, bool | None]
    stop_reason: str
    rollouts: int
    llm_calls: int
    completion_tokens: int


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _view(result: Any) -> _View:
    tree = {str(k): dict(v) for k, v in (_get(result, "tree") or {}).items()}
    win: set[str] = set()
    steps = _get(result, "trajectory") or []
    for step in steps:
        node_id = _get(step, "node_id")
        if node_id in tree:
            win.add(node_id)
    if win:
        # The whole root-to-leaf chain (the trajectory lists its steps, not the root).
        for node_id in list(win):
            current = tree.get(node_id, {}).get("parent")
            while current is not None and current in tree:
                win.add(current)
                current = tree[current].get("parent")
    verified: dict[str, bool | None] = {}
    for cand in _get(result, "candidates") or []:
        verified[str(_get(cand, "node_id"))] = _get(cand, "consistent")
    usage = _get(result, "usage") or {}
    return _View(
        question=str(_get(result, "question") or tree.get(_ROOT_ID, {}).get("text", "")),
        answer=_get(result, "answer"),
        confidence=float(_get(result, "confidence") or 0.0),
        tree=tree,
        win=win,
        verified=verified,
        stop_reason=str(_get(result, "stop_reason") or ""),
        rollouts=int(_get(usage, "rollouts", 0) or 0),
        llm_calls=int(_get(usage, "llm_calls", 0) or 0),
        completion_tokens=int(_get(usage, "completion_tokens", 0) or 0),
    )


def _child_key(node_id: str) -> tuple[str, int]:
    last = node_id.rsplit("/", 1)[-1]
    action, _, idx = last.partition(".")
    return action, int(idx) if idx.isdigit() else 0


def _children(tree: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {node_id: [] for node_id in tree}
    for node_id, record in tree.items():
        parent = record.get("parent")
        if parent is not None and parent in kids:
            kids[parent].append(node_id)
    for ids in kids.values():
        ids.sort(key=_child_key)
    return kids


def _roots(tree: Mapping[str, Mapping[str, Any]]) -> list[str]:
    roots = [i for i, r in tree.items() if r.get("parent") is None or r["parent"] not in tree]
    return sorted(roots, key=lambda i: (i != _ROOT_ID, i))


def _qn(record: Mapping[str, Any]) -> tuple[float, float]:
    def number(key: str) -> float:
        try:
            value = float(record.get(key, 0.0) or 0.0)
        except (TypeError, ValueError):
            return 0.0
        return value if math.isfinite(value) else 0.0

    return number("value"), number("visits")


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"


def _one_line(text: str) -> str:
    return " ".join(str(text or "").split())


def _short(text: str, limit: int) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


def _node_text(record: Mapping[str, Any]) -> str:
    """What a node says: the sub-question and its answer, or the step text."""
    sub = record.get("subquestion")
    if sub:
        return f"{sub} → {record.get('text', '')}"
    return str(record.get("text", ""))


# --------------------------------------------------------------------------------------
# Mermaid
# --------------------------------------------------------------------------------------
_MERMAID_ESCAPES = {
    "#": "#35;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    '"': "#quot;",
    "|": "#124;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "`": "#96;",
    "%": "#37;",
    ";": "#59;",
}


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: one line, entity codes for markup characters.

    ``%`` is escaped too: Mermaid looks for ``%%{init: ...}%%`` directives anywhere in the
    source, also inside labels.
    """
    text = _one_line(text)
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text if c.isprintable() or c == " ")


def _mermaid_class(action: str) -> str:
    """The Mermaid class of an action: only known actions name a class (a crafted
    ``action`` could otherwise write its own statements after ``class ...``)."""
    if action in ACTION_STYLES:
        return action.lower() or "root"
    return "other"


_DIRECTIONS = ("LR", "RL", "TD", "TB", "BT")


def to_mermaid(result: Any, *, max_label: int = 48, direction: str = "LR") -> str:
    """The search tree as a Mermaid ``flowchart``.

    Args:
        result: an :class:`~langchain_rstar.result.RStarResult` or its dict form.
        max_label: characters of node text shown in each box.
        direction: ``LR`` (left to right, the default) or ``TD``.

    Returns:
        Mermaid source: one box per tree node (class ``a1``..``a5``/``root`` for the
        action, ``win`` on the winning trajectory, ``dead`` for dead ends), edges labelled
        ``Q=… N=…`` of the child, winning edges drawn thick.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}; got {direction!r}")
    view = _view(result)
    tree = view.tree
    kids = _children(tree)
    ids = {node_id: f"n{i}" for i, node_id in enumerate(_ordered(tree, kids))}
    lines = [f"flowchart {direction}"]
    classes: dict[str, list[str]] = {}
    for node_id, mid in ids.items():
        record = tree[node_id]
        action = str(record.get("action") or "")
        head = _short(action, 16) if action else "Question"
        label = _mermaid_text(f"{head}: {_short(_node_text(record), max_label)}")
        if record.get("terminal") and record.get("answer") is not None:
            label += "<br/>answer: " + _mermaid_text(_short(str(record.get("answer")), 24))
        lines.append(f'    {mid}["{label}"]')
        classes.setdefault(_mermaid_class(action), []).append(mid)
        if node_id in view.win:
            classes.setdefault("win", []).append(mid)
        if record.get("dead"):
            classes.setdefault("dead", []).append(mid)
    edge_index = 0
    win_edges: list[int] = []
    for node_id, mid in ids.items():
        for child in kids[node_id]:
            q, n = _qn(tree[child])
            lines.append(f'    {mid} -->|"Q={_num(q)} N={_num(n)}"| {ids[child]}')
            if node_id in view.win and child in view.win:
                win_edges.append(edge_index)
            edge_index += 1
    for action, (_, colour) in ACTION_STYLES.items():
        name = action.lower() or "root"
        lines.append(f"    classDef {name} fill:{colour},stroke:#222,color:#fff")
    if "other" in classes:
        lines.append("    classDef other fill:#666666,stroke:#222,color:#fff")
    lines.append(f"    classDef win stroke:{WIN_COLOUR},stroke-width:4px")
    lines.append("    classDef dead fill:#bbbbbb,stroke:#777,stroke-dasharray:4 3,color:#333")
    # Action colours first, then dead ends and the winning outline (later classes win).
    for name in sorted(classes, key=lambda c: (c == "dead", c == "win", c)):
        lines.append(f"    class {','.join(classes[name])} {name}")
    if win_edges:
        joined = ",".join(map(str, win_edges))
        lines.append(f"    linkStyle {joined} stroke:{WIN_COLOUR},stroke-width:4px")
    return "\n".join(lines) + "\n"


def _ordered(tree: Mapping[str, Mapping[str, Any]], kids: Mapping[str, list[str]]) -> list[str]:
    """Node ids depth first, children in action order (every node once)."""
    out: list[str] = []
    seen: set[str] = set()
    stack = list(reversed(_roots(tree)))
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        out.append(node_id)
        stack.extend(reversed(kids.get(node_id, [])))
    out.extend(i for i in tree if i not in seen)
    return out


# --------------------------------------------------------------------------------------
# HTML / SVG
# --------------------------------------------------------------------------------------
_BOX_W = 290
_BOX_H = 90
_COL_W = 400
_ROW_H = 106
_CHARS = 36  # characters per body line at 13 px in a 290 px box
_PAD_X = 24
_PAD_Y = 24


def _layout(
    tree: Mapping[str, Mapping[str, Any]], kids: Mapping[str, list[str]]
) -> dict[str, tuple[float, float]]:
    """Left-to-right outline layout: depth is the column, leaves take consecutive rows and
    a parent sits level with its first child (so the root is at the top left)."""
    pos: dict[str, tuple[float, float]] = {}
    row = 0
    depth_of: dict[str, int] = {}

    def place(root: str) -> None:
        nonlocal row
        # Iterative post-order (trees can be deeper than Python's recursion limit allows).
        stack: list[tuple[str, int, bool]] = [(root, 0, False)]
        while stack:
            node_id, depth, done = stack.pop()
            if node_id in pos:
                continue
            if not done:
                depth_of[node_id] = depth
                stack.append((node_id, depth, True))
                for child in reversed(kids.get(node_id, [])):
                    if child not in pos and child not in depth_of:
                        stack.append((child, depth + 1, False))
                continue
            placed = [pos[c][1] for c in kids.get(node_id, []) if c in pos]
            if placed:
                y = min(placed)
            else:
                y = float(row)
                row += 1
            pos[node_id] = (float(depth), y)

    for root in _roots(tree):
        place(root)
    for node_id in tree:  # anything unreachable (should not happen): its own row
        if node_id not in pos:
            pos[node_id] = (float(tree[node_id].get("depth", 0) or 0), float(row))
            row += 1
    return {
        node_id: (_PAD_X + col * _COL_W, _PAD_Y + y * _ROW_H) for node_id, (col, y) in pos.items()
    }


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Greedy word wrap into at most ``lines`` lines (the last one ends with … if cut)."""
    words = _one_line(text).split(" ")
    out: list[str] = []
    current = ""
    for i, word in enumerate(words):
        if len(word) > width:
            word = word[: width - 1] + "…"
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width:
            current = candidate
            continue
        out.append(current)
        current = word
        if len(out) == lines:
            out[-1] = _short(out[-1] + " " + " ".join(words[i:]), width)
            return out
    if current:
        out.append(current)
    return out[:lines]


def _node_svg(
    node_id: str,
    record: Mapping[str, Any],
    x: float,
    y: float,
    win: bool,
    verified: bool | None,
    index: int,
) -> str:
    action = str(record.get("action") or "")
    label, colour = ACTION_STYLES.get(action, (action or "?", "#666666"))
    dead = bool(record.get("dead"))
    fill = "#8d9299" if dead else colour
    q, n = _qn(record)
    head = "Question" if not action else label
    body = _wrap(_node_text(record), _CHARS, 2)
    facts = f"Q={_num(q)}  N={_num(n)}"
    if n:
        facts += f"  Q/N={q / n:.2f}"
    answer = record.get("answer")
    if record.get("terminal") and answer is not None:
        mark = " ✓" if verified else " ✗" if verified is False else ""
        facts += f"  ⇒ {_short(str(answer), 14)}{mark}"
    elif dead:
        facts += "  dead end"
    elif record.get("terminal"):
        facts += "  depth limit"
    stroke = WIN_COLOUR if win else "#1f1f1f"
    width = 6 if win else 1
    tip = f"{node_id} — {head}\n{_node_text(record)}"
    if answer is not None:
        tip += f"\nanswer: {answer}"
    classes = "node" + (" win" if win else "") + (" dead" if dead else "")
    dash = ' stroke-dasharray="6 4"' if dead else ""
    lines = "".join(
        f'<text x="10" y="{38 + 16 * i}" class="t-body">{_esc(line)}</text>'
        for i, line in enumerate(body)
    )
    # A nested <svg> clips everything to the box, so no text ever spills out of it.
    return (
        f'<g class="{classes}" data-i="{index}" data-id="{_esc(node_id)}" tabindex="0">'
        f"<title>{_esc(tip)}</title>"
        f'<svg x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" overflow="hidden">'
        f'<rect x="1" y="1" width="{_BOX_W - 2}" height="{_BOX_H - 2}" rx="9" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>'
        f'<text x="10" y="19" class="t-head">{_esc(head)}</text>'
        f"{lines}"
        f'<text x="10" y="{_BOX_H - 10}" class="t-facts">{_esc(facts)}</text>'
        "</svg></g>"
    )


def _edge_svg(
    parent: tuple[float, float], child: tuple[float, float], record: Mapping[str, Any], win: bool
) -> str:
    x1, y1 = parent[0] + _BOX_W, parent[1] + _BOX_H / 2
    x2, y2 = child[0], child[1] + _BOX_H / 2
    trunk = x1 + 22
    q, n = _qn(record)
    colour = WIN_COLOUR if win else "#8a8f98"
    width = 4 if win else 1.4
    label = f"Q {_num(q)} / N {_num(n)}"
    # Elbow: out of the parent, down a shared trunk, then across to the child.
    if abs(y2 - y1) < 1:
        d = f"M{x1:.1f},{y1:.1f} H{x2:.1f}"
    else:
        r = 8.0
        d = (
            f"M{x1:.1f},{y1:.1f} H{trunk - r:.1f} Q{trunk:.1f},{y1:.1f} {trunk:.1f},{y1 + r:.1f} "
            f"V{y2 - r:.1f} Q{trunk:.1f},{y2:.1f} {trunk + r:.1f},{y2:.1f} H{x2:.1f}"
        )
    return (
        f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"/>'
        f'<text x="{x2 - 8:.1f}" y="{y2 - 6:.1f}" text-anchor="end" '
        f'class="e-label{" win" if win else ""}">{_esc(label)}</text>'
    )


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
  Arial, sans-serif; color: #1d232b; background: #f4f5f7; }
header { padding: 14px 20px 10px; background: #fff; border-bottom: 1px solid #d8dbe0; }
header h1 { font-size: 18px; margin: 0 0 6px; }
.question { font-size: 15px; margin: 0 0 6px; max-width: 1200px; }
.summary { color: #3d4652; margin: 0; }
.summary b { color: #111; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 16px; margin-top: 8px; font-size: 13px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { width: 16px; height: 16px; border-radius: 4px; border: 1px solid #222;
  display: inline-block; }
.sw.win { background: #fff; border: 4px solid #e0a800; }
.sw.dead { background: #9a9a9a; border: 1px dashed #555; }
main { display: flex; height: calc(100vh - 150px); min-height: 420px; }
#canvas { flex: 1; overflow: auto; background: #fff; border-right: 1px solid #d8dbe0; }
aside { width: 340px; overflow: auto; padding: 14px 16px; background: #fbfbfc; }
aside h2 { font-size: 15px; margin: 0 0 8px; }
aside dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0 0 10px; }
aside dt { color: #5a6472; }
aside dd { margin: 0; word-break: break-word; }
aside pre { white-space: pre-wrap; word-break: break-word; background: #fff; margin: 0 0 10px;
  border: 1px solid #e0e3e8; border-radius: 6px; padding: 8px; font: 13px/1.45 ui-monospace,
  SFMono-Regular, Menlo, Consolas, monospace; }
aside ol { padding-left: 20px; margin: 0; }
aside li { margin-bottom: 6px; }
.hint { color: #6b7480; font-size: 12px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; }
.node { cursor: pointer; }
.node:hover rect, .node:focus rect, .node.sel rect { stroke: #000; stroke-width: 3; }
.node.win:hover rect, .node.win:focus rect, .node.win.sel rect { stroke: #b98b00; stroke-width: 7; }
.t-head { font-size: 12.5px; font-weight: 700; fill: #fff; }
.t-body { font-size: 13px; fill: #fff; }
.t-facts { font-size: 12px; fill: #f1f4f8; }
.e-label { font-size: 11px; fill: #4a525e; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; }
.e-label.win { fill: #8a6500; font-weight: 700; }
"""

_JS = """
(function () {
  var data = JSON.parse(document.getElementById("rstar-data").textContent);
  var panel = document.getElementById("details");
  var intro = panel.innerHTML;
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }
  function show(i, el) {
    var n = data[i];
    document.querySelectorAll(".node.sel").forEach(function (g) { g.classList.remove("sel"); });
    if (el) { el.classList.add("sel"); }
    var rows = "";
    n.fields.forEach(function (f) {
      rows += "<dt>" + esc(f[0]) + "</dt><dd>" + esc(f[1]) + "</dd>";
    });
    var html = "<h2>" + esc(n.title) + "</h2><dl>" + rows + "</dl>";
    if (n.subquestion) { html += "<b>Sub-question</b><pre>" + esc(n.subquestion) + "</pre>"; }
    html += "<b>Text</b><pre>" + esc(n.text) + "</pre>";
    html += '<p><a href="#" id="back">Back to the winning trajectory</a></p>';
    panel.innerHTML = html;
    document.getElementById("back").onclick = function (e) {
      e.preventDefault(); panel.innerHTML = intro; wire();
    };
  }
  document.querySelectorAll(".node").forEach(function (g) {
    var i = +g.getAttribute("data-i");
    g.addEventListener("click", function () { show(i, g); });
    g.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(i, g); }
    });
  });
  function wire() {
    var link = document.getElementById("goto-win");
    if (!link) { return; }
    link.onclick = function (e) {
      e.preventDefault();
      var wins = document.querySelectorAll(".node.win");
      if (!wins.length) { return; }
      var leaf = wins[wins.length - 1];
      leaf.scrollIntoView({block: "center", inline: "center"});
      show(+leaf.getAttribute("data-i"), leaf);
    };
  }
  wire();
})();
"""


def _details(node_id: str, record: Mapping[str, Any], win: bool, verified: bool | None) -> dict:
    action = str(record.get("action") or "")
    q, n = _qn(record)
    fields: list[list[str]] = [
        ["id", node_id],
        ["parent", str(record.get("parent"))],
        ["action", ACTION_STYLES.get(action, (action, ""))[0]],
        ["type", str(record.get("type", ""))],
        ["depth", str(record.get("depth", ""))],
        ["Q (value)", f"{q:.4g}"],
        ["N (visits)", _num(n)],
        ["Q/N", f"{q / n:.4g}" if n else "–"],
        ["reward", f"{float(record.get('reward', 0.0) or 0.0):.4g}"],
        ["confidence", f"{float(record.get('confidence', 0.0) or 0.0):.3g}"],
        ["samples", str(record.get("samples", ""))],
        ["rollout", str(record.get("rollout", ""))],
        ["terminal", "yes" if record.get("terminal") else "no"],
    ]
    if record.get("answer") is not None:
        fields.append(["answer", str(record.get("answer"))])
    if verified is not None:
        fields.append(["mutually consistent", "yes" if verified else "no"])
    if record.get("dead"):
        fields.append(["dead end", "yes"])
    if win:
        fields.append(["on winning path", "yes"])
    return {
        "title": f"{node_id} · " + ("Question" if not action else action),
        "fields": fields,
        "text": str(record.get("text", "")),
        "subquestion": record.get("subquestion") or "",
    }


def to_html(result: Any, *, title: str = "rStar search tree") -> str:
    """A self-contained HTML page drawing the search tree (inline SVG, no network).

    Args:
        result: an :class:`~langchain_rstar.result.RStarResult` or its dict form.
        title: page title.

    Returns:
        The HTML document as a string.
    """
    view = _view(result)
    tree = view.tree
    kids = _children(tree)
    order = _ordered(tree, kids)
    pos = _layout(tree, kids)
    index = {node_id: i for i, node_id in enumerate(order)}

    edges: list[str] = []
    win_edges: list[str] = []
    for node_id in order:
        for child in kids[node_id]:
            win = node_id in view.win and child in view.win
            (win_edges if win else edges).append(
                _edge_svg(pos[node_id], pos[child], tree[child], win)
            )
    nodes_svg = [
        _node_svg(
            node_id,
            tree[node_id],
            *pos[node_id],
            win=node_id in view.win,
            verified=view.verified.get(node_id),
            index=index[node_id],
        )
        for node_id in order
    ]
    width = max((x for x, _ in pos.values()), default=0) + _BOX_W + _PAD_X
    height = max((y for _, y in pos.values()), default=0) + _BOX_H + _PAD_Y
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="rStar search tree">'
        f'<g class="edges">{"".join(edges)}{"".join(win_edges)}</g>'
        f'<g class="nodes">{"".join(nodes_svg)}</g></svg>'
    )
    details = [_details(i, tree[i], i in view.win, view.verified.get(i)) for i in order]
    data = json.dumps(details, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")

    legend = "".join(
        f'<span><i class="sw" style="background:{colour}"></i>{_esc(label)}</span>'
        for label, colour in ACTION_STYLES.values()
    )
    legend += '<span><i class="sw win"></i>winning trajectory</span>'
    legend += '<span><i class="sw dead"></i>dead end</span>'
    legend += "<span>edge label: Q (summed reward) / N (visits) of the child</span>"
    legend += (
        "<span>⇒ answer of a terminal node; ✓ / ✗ the discriminator agreed / disagreed "
        "(mutual verification)</span>"
    )

    answer = "none" if view.answer is None else view.answer
    summary = (
        f"Answer <b>{_esc(answer)}</b> · confidence {view.confidence:.2f} · "
        f"{len(tree)} nodes · {view.rollouts} rollouts · {view.llm_calls} model calls · "
        f"{view.completion_tokens} completion tokens · stop: {_esc(view.stop_reason or '–')}"
    )
    steps = []
    for node_id in order:
        if node_id in view.win and node_id in tree and tree[node_id].get("action"):
            record = tree[node_id]
            text = _esc(_one_line(_node_text(record)))
            steps.append(f"<li><b>{_esc(record.get('action'))}</b> {text}</li>")
    trajectory = f"<ol>{''.join(steps)}</ol>" if steps else "<p>No winning trajectory.</p>"
    intro = (
        "<h2>Winning trajectory</h2>"
        f"{trajectory}"
        + (
            '<p><a href="#" id="goto-win">Show the winning answer in the tree</a></p>'
            if steps
            else ""
        )
        + '<p class="hint">Hover a node for its full text; click it (or focus it and press '
        "Enter) to see every field here.</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1>"
        f'<p class="question"><b>Question:</b> {_esc(view.question)}</p>'
        f'<p class="summary">{summary}</p>'
        f'<div class="legend">{legend}</div></header>'
        f'<main><div id="canvas">{svg}</div>'
        f'<aside id="details">{intro}</aside></main>'
        f'<script type="application/json" id="rstar-data">{data}</script>'
        f"<script>{_JS}</script>"
        "</body></html>\n"
    )


def save_html(
    result: Any, path: str | os.PathLike[str], *, title: str = "rStar search tree"
) -> Path:
    """Write :func:`to_html` to ``path`` (UTF-8) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(result, title=title), encoding="utf-8")
    return out
