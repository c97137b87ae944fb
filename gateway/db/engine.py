"""Engine and session factory. Created by the app factory or a CLI command, never at import."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.db.failures import CONNECT_TIMEOUT_SECONDS, watch_failures


def make_engine(database_url: str) -> AsyncEngine:
    """An engine for the URL; on SQLite with WAL, foreign keys and a busy timeout."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        watch_failures(engine)
        return engine
    engine = create_async_engine(
        database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )
    watch_failures(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, say when a transaction begins (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


WRITE = {"sqlite_begin_immediate": True}


def _sqlite_begin(connection: Any) -> None:
    # A WAL reader that later writes fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) if
    # another writer committed meanwhile. Write transactions therefore take the write lock
    # up front and queue behind the busy timeout; plain reads stay deferred and concurrent.
    immediate = connection.get_execution_options().get("sqlite_begin_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
