"""The shell's layout: no import cycle among gateway modules, and commands never import pages.

An AST walk, so nothing is imported to check it. For cycles only module-level imports
count (an import inside a function runs after both modules are loaded); `if TYPE_CHECKING`
blocks do not count either, as they never run. Commands must not depend on the portal at
all, so for that rule an import anywhere in the module counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root`, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)


def _anywhere(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Mapping[str, Path]
) -> Iterator[tuple[str, int]]:
    """The known modules an import statement loads, with its line."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            anchor = here[: len(here) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from a import b` loads a.b when b is a module, and a itself in any case.
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    for name in names:
        if name in known:
            yield name, node.lineno


def import_graph(
    root: Path, package: str, *, module_level_only: bool = True
) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same package: line of the first such import}."""
    known = modules_of(root, package)
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        imports = _module_level(tree.body) if module_level_only else _anywhere(tree)
        edges: dict[str, int] = {}
        for node in imports:
            for target, line in _targets(node, module, path.name == "__init__.py", known):
                if target != module:
                    edges.setdefault(target, line)
        graph[module] = edges
    return graph


def import_cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def upward_imports(root: Path, package: str, lower: str, upper: str) -> list[str]:
    """Every import, anywhere in a module under `lower`, of a module under `upper`."""
    graph = import_graph(root, package, module_level_only=False)
    return [
        f"{module} imports {target} (line {line})"
        for module, edges in sorted(graph.items())
        if module == lower or module.startswith(f"{lower}.")
        for target, line in sorted(edges.items())
        if target == upper or target.startswith(f"{upper}.")
    ]


# --- the gateway itself ------------------------------------------------------------------


def test_the_checker_sees_the_gateway() -> None:
    # A wrong ROOT would make both rules pass on no modules at all.
    graph = import_graph(ROOT, "gateway")
    assert {
        "gateway.app",
        "gateway.cli",
        "gateway.cli.serve",
        "gateway.applications.review_pages",
    } <= set(graph)
    assert "gateway.config" in graph["gateway.app"]


def test_no_import_cycle_among_gateway_modules() -> None:
    assert import_cycles(import_graph(ROOT, "gateway")) == []


def test_commands_do_not_import_the_portal() -> None:
    assert upward_imports(ROOT, "gateway", "gateway.cli", "gateway.portal") == []


# --- each rule fails on a planted violation ------------------------------------------------


def _package(root: Path, files: Mapping[str, str]) -> Path:
    for name, source in {"pkg/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or source:
            path.write_text(source)
    return root


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "pkg/config.py": "from pkg.mail import parse\n",
            "pkg/mail.py": "import pkg.store\n",
            "pkg/store.py": "from pkg import config\n",
            "pkg/other.py": "from pkg.config import x\n",
        },
    )
    assert import_cycles(import_graph(root, "pkg")) == [["pkg.config", "pkg.mail", "pkg.store"]]


def test_a_relative_import_cycle_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "pkg/notify/__init__.py": "from .mail import send\n",
            "pkg/notify/mail.py": "from ..config import Settings\n",
            "pkg/config.py": (
                "try:\n    from pkg.notify import mail\nexcept ImportError:\n    pass\n"
            ),
        },
    )
    assert import_cycles(import_graph(root, "pkg")) == [
        ["pkg.config", "pkg.notify", "pkg.notify.mail"]
    ]


def test_imports_that_cannot_loop_are_not_a_cycle(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            # Inside a function: runs after both modules are loaded.
            "pkg/config.py": "def load():\n    from pkg.mail import parse\n",
            # For the type checker only.
            "pkg/store.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import mail\n"
            ),
            "pkg/mail.py": "from pkg.config import load\nfrom pkg.store import x\n",
        },
    )
    assert import_cycles(import_graph(root, "pkg")) == []


def test_a_command_importing_a_page_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "pkg/cli/__init__.py": "",
            "pkg/cli/applications.py": "from pkg.portal.ops_pages import answer_rows\n",
            "pkg/cli/serve.py": "def serve():\n    import pkg.portal\n",
            "pkg/cli/grants.py": "from pkg.grants import service\n",
            "pkg/portal/__init__.py": "",
            "pkg/portal/ops_pages.py": "from pkg.grants import service\n",
            "pkg/grants/__init__.py": "",
            "pkg/grants/service.py": "",
        },
    )
    assert upward_imports(root, "pkg", "pkg.cli", "pkg.portal") == [
        "pkg.cli.applications imports pkg.portal.ops_pages (line 1)",
        "pkg.cli.serve imports pkg.portal (line 2)",
    ]
