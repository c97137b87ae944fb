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

from gateway.db.changes import watch_writes
from gateway.db.failures import CONNECT_TIMEOUT_SECONDS, watch_failures

POOL_SIZE = 10
MAX_OVERFLOW = 10
POOL_TIMEOUT_SECONDS = 30.0
BUSY_TIMEOUT_MS = 30000


def make_engine(
    database_url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """An engine for the URL; on SQLite with WAL, foreign keys and a busy timeout.

    Every request, command and job uses one pooled connection at a time, so the pool
    bounds concurrency and never deadlocks; the sizes are parameters for the tests that
    prove it with a pool deliberately small.
    """
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        watch_failures(engine)
        watch_writes(engine, database_url)
        return engine
    engine = create_async_engine(
        database_url,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        **pool,
    )
    watch_failures(engine)
    watch_writes(engine, database_url)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, say when a transaction begins (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


WRITE = {"sqlite_begin_immediate": True}


def _sqlite_begin(connection: Any) -> None:
    # A WAL reader that later writes fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) if
    # another writer committed meanwhile. Write transactions therefore take the write lock
    # up front and queue behind the busy timeout; plain reads stay deferred and concurrent.
    options = connection.get_execution_options()
    immediate = options.get("sqlite_begin_immediate", False)
    # A best-effort write waits less for the lock than real work does; the timeout is a
    # setting of the connection, so each transaction says its own.
    busy = int(options.get("sqlite_busy_timeout_ms", BUSY_TIMEOUT_MS))
    sqlite_begin(connection, immediate=immediate, busy_ms=busy)


def sqlite_begin(connection: Any, *, immediate: bool, busy_ms: int) -> None:
    """Begin a transaction on a SQLite connection: a write takes the lock up front."""
    connection.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
