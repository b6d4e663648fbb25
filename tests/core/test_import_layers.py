"""Do the package's modules import each other in layers, without circles?

The graph is read from the source with ``ast``, not by importing it: every ``import`` and ``from … import``
of ``matchmaker`` modules, relative or absolute, at module level or inside a function (a deferred import is
still a dependency, only a hidden one). Imports under ``if TYPE_CHECKING:`` never run and are left out.

How a name resolves: ``from matchmaker.x import y`` is an edge to the module ``matchmaker.x.y`` when there is
one, otherwise to ``matchmaker.x`` (``y`` is a name defined there). A package's ``__init__.py`` is the module
named after the package and counts by its own imports only: importing ``matchmaker.x.y`` is not also counted
as an edge to ``matchmaker.x`` or ``matchmaker``, or the app factory in ``matchmaker/__init__.py`` (which
imports every blueprint inside ``create_app``) would put every module in one circle with itself.

The ground floor is ``matchmaker.core`` together with ``matchmaker.extensions`` (the Flask extension objects)
and ``matchmaker.config`` (settings): core may import those and nothing else of the package — no domain
package (accounts, listings, pairings, …), no ``matching_service``, not the app factory.
"""
from __future__ import annotations

import ast
from pathlib import Path

import matchmaker

PACKAGE = Path(matchmaker.__file__).resolve().parent
ROOT = "matchmaker"
GROUND_FLOOR = ("matchmaker.core", "matchmaker.extensions", "matchmaker.config")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _on_ground_floor(module: str) -> bool:
    return any(module == g or module.startswith(g + ".") for g in GROUND_FLOOR)


def test_the_graph_is_read_from_the_source():
    """Does the parser see the imports it must judge (relative, absolute, inside functions)?"""
    graph = import_graph()
    assert "matchmaker.extensions" in graph["matchmaker.core.audit"]  # from ..extensions import db
    assert "matchmaker.create_app" not in graph["matchmaker.cli"]     # a name, not a module
    assert "matchmaker" in graph["matchmaker.cli"]                    # from . import create_app
    assert "matchmaker.models" in graph["matchmaker"]                 # inside create_app
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_round_a_circle():
    """Can every module of matchmaker be imported without importing, directly or not, itself?"""
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_core_imports_no_domain_package():
    """Does the ground floor (core, extensions, config) stand without the floors above it?"""
    graph = import_graph()
    wrong = sorted(f"{m} → {t}" for m in graph if _on_ground_floor(m) for t in graph[m] if not _on_ground_floor(t))
    assert not wrong, "core imports from above the ground floor:\n" + "\n".join(wrong)
