"""The shell's layout: no import cycle among gateway modules, commands never import pages,
and the edges of each feature (its pages, JSON API and commands) reach the database only
through the feature's service: they import no SQLAlchemy and nothing of `gateway.db`.

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


EDGE_NAMES = ("pages.py", "api.py", "cli.py")
# Persistence, which only services and repositories may import.
PERSISTENCE = ("sqlalchemy", "gateway.db")


def _runtime_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: anywhere in the module, in functions too, except under
    `if TYPE_CHECKING` (type hints only)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _runtime_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _runtime_imports([n for n in inner if isinstance(n, ast.AST)])


def is_edge(path: Path) -> bool:
    """A feature's pages (`pages.py`, `*_pages.py`), JSON API (`api.py`, `*_api.py`) or
    commands."""
    return path.name in EDGE_NAMES or path.name.endswith(("_pages.py", "_api.py"))


def persistence_imports(root: Path, package: str) -> list[str]:
    """Every edge module's import of SQLAlchemy or gateway.db that can run."""
    found = []
    for module, path in modules_of(root, package).items():
        if not is_edge(path):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_imports(tree.body):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                top = name.replace(f"{package}.", "gateway.", 1) if package != "gateway" else name
                if any(top == p or top.startswith(f"{p}.") for p in PERSISTENCE):
                    found.append(f"{module} imports {name} (line {node.lineno})")
    return found


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


def test_pages_apis_and_commands_import_no_persistence() -> None:
    edges = [m for m, path in modules_of(ROOT, "gateway").items() if is_edge(path)]
    # A wrong ROOT or name rule would make the check pass on nothing.
    assert {
        "gateway.keys.api",
        "gateway.keys.secret_scanning_api",
        "gateway.applications.ops_api",
        "gateway.applications.pages",
        "gateway.identity.cli",
    } <= set(edges)
    assert persistence_imports(ROOT, "gateway") == []


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


def test_an_edge_importing_persistence_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "pkg/keys/__init__.py": "",
            "pkg/keys/api.py": "from sqlalchemy import select\n",
            "pkg/keys/pages.py": "def page():\n    from pkg.db.models import ApiKey\n",
            "pkg/keys/review_pages.py": "import sqlalchemy.orm\n",
            "pkg/keys/found_api.py": "from pkg.db import uow\n",
            "pkg/keys/cli.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.db.models import ApiKey\n"
            ),
            "pkg/keys/service.py": "from sqlalchemy import select\n",
            "pkg/keys/repository.py": "from pkg.db.models import ApiKey\n",
        },
    )
    assert sorted(persistence_imports(root, "pkg")) == [
        "pkg.keys.api imports sqlalchemy (line 1)",
        "pkg.keys.found_api imports pkg.db (line 1)",
        "pkg.keys.pages imports pkg.db.models (line 2)",
        "pkg.keys.review_pages imports sqlalchemy.orm (line 1)",
    ]
