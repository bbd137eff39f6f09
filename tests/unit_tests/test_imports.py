"""The package's import graph has no cycles, and its public API is pinned.

The graph is read from the source with :mod:`ast` (nothing is imported to build it): one
edge per intra-package import, at module level *and* inside functions, so a
function-local import that only hides a cycle still counts as the cycle it is. Importing
``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those implicit edges are left
out (every module would otherwise "import" the top-level package, which imports the
public modules): an edge goes to the module an import statement names.
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import langchain_rstar

ROOT = Path(langchain_rstar.__file__).resolve().parent

#: Function-local imports of package modules allowed outside ``cli.py`` (each one lazy for a
#: reason other than a cycle). ``cli.py`` imports lazily on purpose: ``rstar --help`` must
#: not pay for LangGraph, the evaluation harness or the server.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("langchain_rstar.llms.transformers_llm", "langchain_rstar.llms._shortlist"): (
        "imports torch at module level; needed only when the shortlist top-p is on"
    ),
    ("langchain_rstar.llms.vllm_engine", "langchain_rstar.llms._shortlist"): (
        "imports torch at module level; needed only when the shortlist top-p is on"
    ),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Intra-package imports: module -> the package modules it imports (anywhere in it)."""
    package = root.name
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, is_package)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:  # ``import a.b.c`` of a name in it
                    target = target.rpartition(".")[0]
                if target.startswith(package) and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_hidden_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n    return b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\nimport pkg.sub.c as c\n")
    (pkg / "sub" / "c.py").write_text("import os\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.a", "pkg.sub.c"}
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.sub.b"})]


def test_search_layers() -> None:
    graph = import_graph()
    # verify.py and the search modules below graph.py never import the wiring.
    for name in ("verify", "drive", "budget", "candidates", "rollouts", "actions", "state"):
        assert "langchain_rstar.search.graph" not in graph[f"langchain_rstar.search.{name}"]
    assert "langchain_rstar.search.verify" in graph["langchain_rstar.search.graph"]


def test_lower_layers_do_not_import_upper_ones() -> None:
    graph = import_graph()
    upper = ("langchain_rstar.search", "langchain_rstar.chain", "langchain_rstar.eval")
    for name, targets in graph.items():
        if name.startswith(("langchain_rstar.sampling", "langchain_rstar.llms")):
            assert not [t for t in targets if t.startswith(upper)], name


def test_no_import_cycles() -> None:
    found = [sorted(c) for c in cycles(import_graph())]
    assert not found, f"import cycles: {found}"


def function_local_imports(root: Path = ROOT) -> set[tuple[str, str]]:
    """(module, package module it imports) for every import inside a function body."""
    package = root.name
    modules = _modules(root)
    out: set[tuple[str, str]] = set()
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                targets: list[str] = []
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = _resolve(node, name, is_package)
                    targets = [
                        f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                        for a in node.names
                    ]
                for target in targets:
                    while target and target not in modules:
                        target = target.rpartition(".")[0]
                    if target.startswith(package):
                        out.add((name, target))
    return out


def test_no_function_local_package_imports() -> None:
    """A package module imported inside a function is either a hidden cycle (fix the
    layering) or a lazy load; only ``cli.py`` and the listed lazy loads may do it."""
    found = {
        pair
        for pair in function_local_imports()
        if pair[0] != "langchain_rstar.cli" and pair not in LAZY_IMPORTS
    }
    assert not found, f"function-local package imports: {sorted(found)}"
    stale = set(LAZY_IMPORTS) - function_local_imports()
    assert not stale, f"LAZY_IMPORTS lists imports that no longer exist: {sorted(stale)}"


def test_the_local_import_finder_sees_nested_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import os\nfrom pkg import b\n")
    (pkg / "b.py").write_text(
        "class C:\n    def m(self):\n        if 1:\n            from . import a\n"
    )
    assert function_local_imports(pkg) == {("pkg.b", "pkg.a")}


def test_public_api_is_pinned() -> None:
    assert sorted(langchain_rstar.__all__) == [
        "Candidate",
        "ChatRStar",
        "RStarBackendError",
        "RStarChain",
        "RStarConfig",
        "RStarProgress",
        "RStarResult",
        "RStarTool",
        "Step",
        "TaskSpec",
        "Usage",
        "validate_question",
        "verify_candidates",
    ]
    for name in langchain_rstar.__all__:
        assert getattr(langchain_rstar, name) is not None


def test_version_comes_from_package_metadata() -> None:
    assert langchain_rstar.__version__ == importlib.metadata.version("langchain-rstar")
