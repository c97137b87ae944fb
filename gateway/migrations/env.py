"""Alembic environment: runs migrations on the gateway's configured database.

The URL comes from the alembic Config (set by `gateway db upgrade`) or, for the plain
`alembic` command, from the gateway's own settings (GATEWAY_DATABASE_URL / GATEWAY_HOME).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from gateway.db.engine import make_engine
from gateway.db.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from gateway.config import load_settings

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.database_url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table (copy, drop, rename); with foreign keys
        # enforced, the drop would cascade to, or be refused by, the rows that refer to
        # it. The pragma only takes effect outside a transaction, so it comes first; the
        # references are checked once the migrations are done. It goes straight to the
        # driver: a statement through SQLAlchemy would begin the transaction first.
        _pragma(connection, "PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migrations left broken references: {broken[:5]}")
    if sqlite:
        _pragma(connection, "PRAGMA foreign_keys=ON")


def _pragma(connection: Connection, statement: str) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


async def _run_async() -> None:
    engine = make_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
asyncio.run(_run_async())
