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
from sqlalchemy import Enum, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

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


def _status_columns() -> list[tuple[str, str, frozenset[str]]]:
    """Every column typed with a stages/ enum: (table, column, its statuses)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Enum):
                found.append((table.name, column.name, frozenset(column.type.enums)))
    return found


def test_every_status_like_column_is_a_stages_enum() -> None:
    typed = {(table, column) for table, column, _ in _status_columns()}
    untyped = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("status") and (table.name, column.name) not in typed
    }
    assert untyped == set()
    assert ("grants", "status") in typed
    assert ("notifications", "email_status") in typed


async def test_every_status_column_has_its_check_constraint(empty_database: str) -> None:
    await migrate(empty_database)

    def constraints(connection: Connection) -> dict[str, set[str]]:
        inspector = inspect(connection)
        return {
            table: {c["name"] for c in inspector.get_check_constraints(table)}
            for table in {table for table, _, _ in _status_columns()}
        }

    engine = make_engine(empty_database)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(constraints)
    finally:
        await engine.dispose()
    for table, column, _ in _status_columns():
        assert f"ck_{table}_{column}" in found[table], (table, column)


_ACCOUNT = (
    "INSERT INTO accounts (id, email, display_name, is_operator, status, created_at, affiliation)"
    " VALUES (:id, :email, '', :no, :status, :at, '')"
)
_MODEL = "INSERT INTO models (id, org, name, created_at) VALUES (1, 'acme', 'm', :at)"
_GRANT = (
    "INSERT INTO grants (id, account_id, model_id, tier, status, starts_at, expires_at,"
    " download_quota, quota_period_days, created_at, created_by, status_changed_at)"
    " VALUES (:id, 'a1', 1, 'public', :status, :at, :at, 5, 30, :at, 'op', :at)"
)


async def test_a_status_outside_the_enum_is_refused_by_the_database(empty_database: str) -> None:
    await migrate(empty_database)
    now = datetime.now(UTC)
    engine = make_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(_ACCOUNT),
                {"id": "a1", "email": "a@x", "no": False, "status": "active", "at": now},
            )
            await connection.execute(text(_MODEL), {"at": now})
            await connection.execute(text(_GRANT), {"id": "g1", "status": "active", "at": now})
        refused = [
            (_ACCOUNT, {"id": "a2", "email": "b@x", "no": False, "status": "hacked", "at": now}),
            (_GRANT, {"id": "g2", "status": "reopened", "at": now}),
            (_GRANT, {"id": "g3", "status": "ACTIVE", "at": now}),
            ("UPDATE grants SET status = 'renewed' WHERE id = 'g1'", {}),
            ("UPDATE accounts SET status = '' WHERE id = 'a1'", {}),
        ]
        for statement, values in refused:
            with pytest.raises(IntegrityError, match=r"ck_grants_status|ck_accounts_status|CHECK"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement), values)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, status FROM grants"))).all()
        assert [tuple(row) for row in rows] == [("g1", "active")]
    finally:
        await engine.dispose()


async def test_the_state_migration_keeps_and_maps_the_rows(empty_database: str) -> None:
    before = "0009_key_encryption"
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), before)
    now = datetime.now(UTC)
    engine = make_engine(empty_database)
    try:
        async with engine.begin() as connection:
            for account, status in [("a1", "active"), ("a2", " Banned"), ("a3", "weird")]:
                await connection.execute(
                    text(_ACCOUNT),
                    {
                        "id": account,
                        "email": f"{account}@x",
                        "no": False,
                        "status": status,
                        "at": now,
                    },
                )
            await connection.execute(text(_MODEL), {"at": now})
            for grant, status in [
                ("g1", "active"),
                ("g2", "Ended"),
                ("g3", "zzz"),
                ("g4", "revoked"),
            ]:
                await connection.execute(text(_GRANT), {"id": grant, "status": status, "at": now})
            # A row that refers to a grant, with ON DELETE CASCADE: rebuilding the grants
            # table must not take it away.
            await connection.execute(
                text(
                    "INSERT INTO grant_notices (grant_id, notice, sent_at)"
                    " VALUES ('g1', 'ended', :at)"
                ),
                {"at": now},
            )
        await migrate(empty_database)
        async with engine.connect() as connection:
            accounts = dict(
                (await connection.execute(text("SELECT id, status FROM accounts"))).all()
            )
            grants = dict((await connection.execute(text("SELECT id, status FROM grants"))).all())
            notices = (
                await connection.execute(text("SELECT grant_id FROM grant_notices"))
            ).scalars()
            notices_left = notices.all()
    finally:
        await engine.dispose()
    assert accounts == {"a1": "active", "a2": "terminated", "a3": "suspended"}
    assert grants == {"g1": "active", "g2": "expired", "g3": "suspended", "g4": "revoked"}
    assert notices_left == ["g1"]
