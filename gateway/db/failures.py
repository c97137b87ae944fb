"""The database boundary: driver errors that are not bugs become the gateway's own errors.

Rules of this module:
- A database that cannot be reached, refuses connections, was dropped, shuts down, is
  locked past the busy timeout or cannot be opened raises DatabaseUnavailable (HTTP 503
  with Retry-After, CLI exit code 5), never a bare driver error (HTTP 500).
- Text the database cannot store (a NUL character; PostgreSQL refuses it) raises
  InvalidInput: it is the caller's input, not the gateway's fault.
- Everything else is left alone: a failing query is a bug and must stay loud.
- SQLAlchemy still invalidates dead connections before these errors are raised, so the
  pool reconnects by itself once the database is back.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import DatabaseUnavailable, InvalidInput

# PostgreSQL error classes and codes that say "the server is not there for you right now":
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57P admin/crash shutdown or cannot connect now, 3D000 the database does not exist,
# 28 authentication refused (a password rotated under the gateway's feet).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "3D000", "28")
# 22021 character not in repertoire (NUL), 22P05 untranslatable character.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
# SQLite primary result codes with the same meaning: the file cannot be opened, read or
# written, is not a database, or stays locked past the busy timeout.
_UNAVAILABLE_SQLITE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_PERM,
    }
)
# Connecting to PostgreSQL gives up after this long (asyncpg waits a minute by default).
CONNECT_TIMEOUT_SECONDS = 10


def watch_failures(engine: AsyncEngine) -> None:
    """Install the boundary on an engine (make_engine does it for every engine)."""
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _translate)


def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    # Socket-level failures (refused, unreachable, timed out) come out of asyncpg as plain
    # OSError or TimeoutError, which SQLAlchemy does not wrap or pass to handle_error.
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(_describe(exc)) from exc


def _translate(context: ExceptionContext) -> None:
    original = context.original_exception
    if isinstance(original, DatabaseUnavailable | InvalidInput):
        return
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _UNSTORABLE_TEXT_SQLSTATES:
        raise InvalidInput(
            "the request holds a character the database cannot store (a NUL character?)",
            code="invalid_request",
        )
    if (
        context.is_disconnect
        or context.connection is None  # failed while connecting
        or (isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES))
        or _sqlite_unavailable(original)
        or isinstance(original, OSError | TimeoutError)
    ):
        raise DatabaseUnavailable(_describe(original))


def _sqlite_unavailable(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.Error)
        and isinstance(code, int)
        and (code & 0xFF in _UNAVAILABLE_SQLITE_CODES)
    )


def _describe(error: BaseException) -> str:
    """The error's own words, or its kind when it has none (a bare timeout)."""
    text = str(error).strip()
    if isinstance(error, TimeoutError) and not text:
        return "no answer in time"
    return text or type(error).__name__
