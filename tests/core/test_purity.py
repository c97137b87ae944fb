"""The core stays pure: no shell, framework or I/O imports, no clocks, no file reads.

An AST walk rather than an import-time check, so a forbidden import inside a function or
an `if TYPE_CHECKING` block is caught too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_PACKAGES = ("stages", "policies")

FORBIDDEN_MODULES = frozenset(
    {
        "gateway",
        "sqlalchemy",
        "alembic",
        "litestar",
        "boto3",
        "botocore",
        "httpx",
        "httpx2",
        "aiosqlite",
        "asyncpg",
        "apscheduler",
        "requests",
        "socket",
        "subprocess",
        "urllib.request",
    }
)
# Fully qualified names, after resolving the module's own import aliases.
FORBIDDEN_CALLS = frozenset(
    {
        "open",
        "io.open",
        "__import__",
        "importlib.import_module",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.perf_counter",
    }
)
# Methods that read or write files whatever object they are called on (Path and friends).
FORBIDDEN_METHODS = frozenset({"open", "read_text", "read_bytes", "write_text", "write_bytes"})


def _forbidden_module(module: str) -> bool:
    return any(module == bad or module.startswith(f"{bad}.") for bad in FORBIDDEN_MODULES)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)) is not None:
        return f"{base}.{node.attr}"
    return None


def find_violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import or call in `source`, as "file:line: what"."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}  # local name -> qualified name
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # "import a.b" binds "a"; "import a.b as c" binds "c" to a.b.
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
                if _forbidden_module(alias.name):
                    found.append(f"{filename}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if _forbidden_module(node.module) or _forbidden_module(
                    f"{node.module}.{alias.name}"
                ):
                    found.append(f"{filename}:{node.lineno}: imports {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name is not None:
            head, _, rest = name.partition(".")
            qualified = ".".join(filter(None, (aliases.get(head, head), rest)))
            if qualified in FORBIDDEN_CALLS:
                found.append(f"{filename}:{node.lineno}: calls {qualified}")
                continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN_METHODS:
            found.append(f"{filename}:{node.lineno}: calls .{node.func.attr}()")
    return found


def core_files() -> list[Path]:
    return sorted(path for package in CORE_PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_the_checker_sees_the_core() -> None:
    # Guards against a wrong ROOT making the purity test pass on no files at all.
    names = {path.relative_to(ROOT).as_posix() for path in core_files()}
    assert {"stages/release.py", "stages/tiers.py", "policies/loader.py"} <= names


def test_core_is_pure() -> None:
    violations = [
        violation
        for path in core_files()
        for violation in find_violations(path.read_text(), path.relative_to(ROOT).as_posix())
    ]
    assert violations == []


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("import gateway", "imports gateway"),
        ("import gateway.db.models as m", "imports gateway.db.models"),
        ("from gateway.runtime import Runtime", "imports gateway.runtime.Runtime"),
        ("from sqlalchemy.orm import Session", "imports sqlalchemy.orm.Session"),
        ("def f():\n    import boto3", "imports boto3"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import litestar",
            "imports litestar",
        ),
        ("import botocore.exceptions", "imports botocore.exceptions"),
        ("import httpx", "imports httpx"),
        ("import httpx2", "imports httpx2"),
        ("import aiosqlite", "imports aiosqlite"),
        ("import asyncpg", "imports asyncpg"),
        ("from apscheduler.schedulers.asyncio import AsyncIOScheduler", "imports apscheduler"),
        ("from urllib import request", "imports urllib.request"),
        ("text = open('policy.toml').read()", "calls open"),
        ("import io\nio.open('x')", "calls io.open"),
        ("from datetime import datetime\nnow = datetime.now()", "calls datetime.datetime.now"),
        ("import datetime\nnow = datetime.datetime.utcnow()", "calls datetime.datetime.utcnow"),
        ("import datetime as dt\nnow = dt.datetime.now(dt.UTC)", "calls datetime.datetime.now"),
        ("from datetime import date\ntoday = date.today()", "calls datetime.date.today"),
        ("import time\nt = time.time()", "calls time.time"),
        ("from time import time as clock\nt = clock()", "calls time.time"),
        ("from pathlib import Path\ntext = Path('p').read_text()", "calls .read_text()"),
        ("import importlib\nimportlib.import_module('gateway')", "calls importlib.import_module"),
    ],
)
def test_checker_reports_forbidden_code(source: str, reported: str) -> None:
    violations = find_violations(source, "synthetic.py")
    assert violations, f"nothing reported for {source!r}"
    assert any(reported in violation for violation in violations), violations
    assert all(violation.startswith("synthetic.py:") for violation in violations)


@pytest.mark.parametrize(
    "source",
    [
        "import tomllib\npolicy = tomllib.loads(text)",
        "from stages.tiers import TierLadder",
        "from datetime import datetime, timedelta\nend = start + timedelta(days=1)",
        "def expires(now: datetime) -> datetime:\n    return now.replace(microsecond=0)",
        "import fnmatch\nfnmatch.fnmatchcase('a.py', '*.py')",
        "from policies.gateway_rules import x",  # a name that merely contains "gateway"
    ],
)
def test_checker_accepts_pure_code(source: str) -> None:
    assert find_violations(source) == []
