"""Tree pictures: Mermaid text and the self-contained HTML page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from langchain_rstar import RStarChain, RStarConfig, RStarResult
from langchain_rstar.visualize import ACTION_STYLES, _num, save_html, to_html, to_mermaid
from scripts import GOLD, QUESTION, apples_llm

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def result() -> RStarResult:
    chain = RStarChain(
        generator=apples_llm(),
        discriminator=True,
        config=RStarConfig(num_rollouts=8, num_votes=3, num_masks=2),
    )
    out = chain.invoke(QUESTION)
    assert out.answer == GOLD and out.trajectory
    return out


def winning_ids(result: RStarResult) -> set[str]:
    return {"0", *(step.node_id for step in result.trajectory)}


def svg_of(page: str) -> ET.Element:
    match = re.search(r"<svg .*</svg>", page, re.DOTALL)
    assert match, "the tree is drawn as inline SVG"
    return ET.fromstring(match.group(0))  # well-formed XML


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained(result: RStarResult) -> None:
    page = result.to_html()
    assert page.startswith("<!DOCTYPE html>")
    parser = Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert "src" not in attrs, f"<{tag}> loads {attrs['src']}"
        assert tag not in ("link", "iframe", "img", "object", "embed")
    assert "@import" not in page and "url(" not in page
    # the only URL is the SVG namespace name, which is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_every_node_and_edge_is_drawn_with_q_and_n(result: RStarResult) -> None:
    svg = svg_of(result.to_html())
    nodes = [g for g in svg.iter(f"{SVG_NS}g") if "node" in g.get("class", "").split()]
    assert sorted(g.get("data-id") for g in nodes) == sorted(result.tree)
    edges = list(svg.iter(f"{SVG_NS}path"))
    assert len(edges) == len(result.tree) - 1
    labels = [t.text for t in svg.iter(f"{SVG_NS}text") if "e-label" in t.get("class", "").split()]
    assert len(labels) == len(edges)
    expected = [
        f"Q {_num(r['value'])} / N {_num(r['visits'])}"
        for r in result.tree.values()
        if r.get("parent") is not None
    ]
    assert sorted(labels) == sorted(expected)
    # each node shows its Q and N, and a terminal node its answer
    facts = {
        g.get("data-id"): "".join(
            t.text or "" for t in g.iter(f"{SVG_NS}text") if t.get("class") == "t-facts"
        )
        for g in nodes
    }
    for node_id, text in facts.items():
        record = result.tree[node_id]
        assert text.startswith("Q=") and " N=" in text
        if record.get("terminal") and record.get("answer") is not None:
            assert f"⇒ {record['answer']}" in text


def test_colours_follow_the_action_and_the_winning_path_stands_out(result: RStarResult) -> None:
    svg = svg_of(result.to_html())
    colour_of = {action: colour for action, (_, colour) in ACTION_STYLES.items()}
    win = winning_ids(result)
    for g in svg.iter(f"{SVG_NS}g"):
        classes = g.get("class", "").split()
        if "node" not in classes:
            continue
        record = result.tree[g.get("data-id")]
        rect = next(g.iter(f"{SVG_NS}rect"))
        if not record.get("dead"):
            assert rect.get("fill") == colour_of[record.get("action") or ""]
        assert ("win" in classes) == (g.get("data-id") in win)
        if "win" in classes:
            assert float(rect.get("stroke-width")) > 3
    thick = [p for p in svg.iter(f"{SVG_NS}path") if float(p.get("stroke-width")) > 3]
    assert len(thick) == len(win) - 1


def test_full_text_is_available_and_legend_explains_colours(result: RStarResult) -> None:
    page = result.to_html()
    svg = svg_of(page)
    titles = [t.text for t in svg.iter(f"{SVG_NS}title")]
    assert len(titles) == len(result.tree)
    longest = max(result.tree.values(), key=lambda r: len(r.get("text", "")))
    assert any(longest["text"] in t for t in titles), "hover shows the whole text"
    data = re.search(r'<script type="application/json" id="rstar-data">(.*?)</script>', page, re.S)
    details = json.loads(data.group(1))
    assert len(details) == len(result.tree)
    assert {d["text"] for d in details} == {r["text"] for r in result.tree.values()}
    for label, colour in ACTION_STYLES.values():
        assert label in page and colour in page
    assert "winning trajectory" in page.lower()
    assert f"Answer <b>{GOLD}</b>" in page


def test_text_is_escaped(result: RStarResult) -> None:
    tree = {k: dict(v) for k, v in result.tree.items()}
    leaf = result.trajectory[-1].node_id
    evil = '</script><script>alert(1)</script> & <b>bold</b> "quoted" [x] |y| {z}'
    tree[leaf]["text"] = evil
    hostile = result.model_copy(update={"tree": tree, "question": evil})
    page = hostile.to_html()
    assert "<script>alert(1)" not in page and "<b>bold</b>" not in page
    svg_of(page)  # still well-formed
    mermaid = hostile.to_mermaid()
    assert "<script>" not in mermaid and '"quoted"' not in mermaid
    node_lines = [line for line in mermaid.splitlines() if re.match(r"\s+n\d+\[", line)]
    assert all(line.count('"') == 2 for line in node_lines)


def test_mermaid_structure(result: RStarResult) -> None:
    text = result.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = [line for line in lines if re.match(r"\s+n\d+\[", line)]
    edges = [line for line in lines if "-->" in line]
    assert len(nodes) == len(result.tree) and len(edges) == len(result.tree) - 1
    assert all(re.search(r'-->\|"Q=[\d.]+ N=[\d.]+"\|', e) for e in edges)
    for action in ("a1", "a2", "a3", "a5", "root", "win"):
        assert f"classDef {action} " in text
    # class lines: the win outline comes after the action colours so it is not overridden
    class_lines = [line.split()[-1] for line in lines if line.strip().startswith("class ")]
    assert class_lines[-1] == "win"
    win_line = next(
        line for line in lines if line.strip().startswith("class ") and line.endswith(" win")
    )
    assert len(win_line.split()[1].split(",")) == len(winning_ids(result))
    link = next(line for line in lines if line.strip().startswith("linkStyle"))
    assert len(link.split()[1].split(",")) == len(result.trajectory)
    assert to_mermaid(result.model_dump(), direction="TD").startswith("flowchart TD")


def test_save_html_and_dict_input(result: RStarResult, tmp_path: Path) -> None:
    path = result.save_html(tmp_path / "sub" / "tree.html")
    assert path.read_text(encoding="utf-8") == result.to_html()
    assert to_html(json.loads(result.model_dump_json())) == result.to_html()
    assert (
        save_html(result, tmp_path / "t2.html", title="My tree").read_text().count("My tree") == 2
    )


def test_empty_and_single_node_trees_render() -> None:
    empty = RStarResult(question="q", answer=None)
    assert "No winning trajectory" in empty.to_html()
    assert empty.to_mermaid().startswith("flowchart LR")
    root_only = RStarResult(
        question="q",
        answer=None,
        tree={"0": {"id": "0", "parent": None, "type": "root", "action": "", "text": "q"}},
    )
    assert len(list(svg_of(root_only.to_html()).iter(f"{SVG_NS}rect"))) == 1


def test_deep_trees_do_not_hit_the_recursion_limit() -> None:
    tree = {"0": {"id": "0", "parent": None, "action": "", "text": "q"}}
    parent = "0"
    for i in range(3000):
        node = f"{parent}/A1.0" if i < 3 else f"n{i}"
        tree[node] = {"id": node, "parent": parent, "action": "A1", "text": f"step {i}"}
        parent = node
    page = RStarResult(question="q", answer=None, tree=tree).to_html()
    assert len(re.findall(r'class="node[ "]', page)) == 3001


def test_crafted_action_cannot_inject_mermaid_statements(result: RStarResult) -> None:
    """#19.9: a result dict is data; its ``action`` must not become Mermaid source."""
    data = result.model_dump()
    node_id = next(i for i, rec in data["tree"].items() if rec.get("action"))
    evil = 'A1 a1\n    click n0 call alert(1)\n%%{init: {"securityLevel": "loose"}}%%'
    data["tree"][node_id]["action"] = evil
    data["tree"][node_id]["text"] = 'x"]\nclick n1 href "javascript:alert(1)"\n%%{init:{}}%%'
    data["tree"][node_id]["value"] = "not a number"
    text = to_mermaid(data)
    assert "click" not in "\n".join(
        ln for ln in text.splitlines() if not re.match(r'\s+n\d+\["', ln)
    )
    assert "%%" not in text  # Mermaid reads %%{init}%% directives anywhere
    for line in text.splitlines()[1:]:
        assert re.match(r'\s+(n\d+\["[^"\n]*"\]|n\d+ -->|classDef |class |linkStyle )', line), line
    assert "    classDef other " in text
    with pytest.raises(ValueError, match="direction"):
        to_mermaid(data, direction="LR\nclick n0 call x()")
