"""Migrations build the schema on both databases, match the models, and protect evidence."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gateway.cli import main
from gateway.db.engine import make_engine
from gateway.db.migrate import alembic_config, pending_revisions, upgrade
from gateway.db.models import Base
from tests.conftest import PostgresServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create(f"gw_empty_{uuid.uuid4().hex[:10]}")


# The migration helpers run their own event loop, as the CLI does: call them from a thread.
async def pending(url: str) -> list[str]:
    return await asyncio.to_thread(pending_revisions, url)


async def migrate(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def every_revision() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_revisions_form_one_line_from_0001() -> None:
    revisions = every_revision()
    assert revisions[0] == "0001"
    assert revisions == sorted(revisions)


async def test_upgrade_builds_exactly_the_models(empty_database: str) -> None:
    assert await pending(empty_database) == every_revision()
    await migrate(empty_database)
    assert await pending(empty_database) == []

    def diff(connection: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    engine = make_engine(empty_database)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back(empty_database: str) -> None:
    await migrate(empty_database)
    await asyncio.to_thread(command.downgrade, alembic_config(empty_database), "base")
    assert await pending(empty_database) == every_revision()
    await migrate(empty_database)
    assert await pending(empty_database) == []


async def test_evidence_is_append_only_in_the_database(empty_database: str) -> None:
    await migrate(empty_database)
    engine = make_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO evidence (at, kind, actor, data) VALUES (:at, 'x', 'test', '{}')"
                ),
                {"at": datetime.now(UTC)},
            )
        for statement in ("UPDATE evidence SET kind = 'rewritten'", "DELETE FROM evidence"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
        async with engine.connect() as connection:
            kinds = (await connection.execute(text("SELECT kind FROM evidence"))).scalars().all()
        assert kinds == ["x"]
    finally:
        await engine.dispose()


def test_serve_refuses_a_postgres_database_with_pending_migrations(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create(f"gw_pending_{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("GATEWAY_HOME", str(tmp_path))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["serve"], catch_exceptions=False)
    assert result.exit_code == 2
    revisions = every_revision()
    assert f"{len(revisions)} pending migration(s) ({', '.join(revisions)})" in result.output
    assert "gateway db upgrade" in result.output
    assert "--migrate" in result.output

    status = CliRunner().invoke(main, ["db", "status"], catch_exceptions=False)
    assert status.exit_code == 1
    applied = CliRunner().invoke(main, ["db", "upgrade"], catch_exceptions=False)
    assert applied.exit_code == 0
    assert f"Applied {len(revisions)} migration(s): {', '.join(revisions)}" in applied.output
    assert pending_revisions(url) == []


def test_the_plain_alembic_command_uses_the_gateway_settings(tmp_path: Path) -> None:
    env = {"GATEWAY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    root = Path(__file__).parents[1]
    for args in (["upgrade", "head"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "gateway.sqlite3").exists()
