"""One unit of work per request, command and job: one session on one connection, a read
phase, then at most one short write phase, committed once at the boundary.

Rules:
- The boundary opens the unit (the `uow` dependency of gateway/web/unit.py; `run_unit`
  or `in_unit` for commands and jobs) and ends it: commit on success, roll back on
  any error, except the one error the work asked to keep (`raise uow.kept(exc)`: a
  refusal whose evidence must stand). Nothing is ever half-written.
- Services take the unit. They read through `uow.session`, enter the write phase with
  `await uow.write()` before they change a row, and never commit or roll back.
- SQLite has one writer, and a WAL reader that later writes fails at once
  (SQLITE_BUSY_SNAPSHOT, no busy wait) if another writer committed since its snapshot
  began. Entering the write phase therefore ends the read snapshot and takes the write
  lock (BEGIN IMMEDIATE) on the same connection, queueing behind the busy timeout, and
  the lock is held for the writes alone. On PostgreSQL the two phases are one
  transaction; `lock_wait_seconds` bounds its lock waits instead.
- After-commit hooks do best-effort work (noting when a key was last used): each runs
  once the unit has committed and given its connection back, and a hook that fails is
  logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.engine import BUSY_TIMEOUT_MS, WRITE, sqlite_begin

if TYPE_CHECKING:
    from gateway.runtime import Runtime

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
Hook = Callable[[], Awaitable[None]]
logger = logging.getLogger("gateway.db")


class UnitOfWorkError(RuntimeError):
    """A unit of work used against its rules: a bug in the caller, never bad input."""


class UnitOfWork:
    """The session of one request, command or job, and the phase it is in."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._session: AsyncSession | None = None
        self._writing = False
        self._ended = False
        self._kept: BaseException | None = None
        self._after_commit: list[Hook] = []

    @property
    def session(self) -> AsyncSession:
        """The unit's session, opened on first use; it takes a connection at its first
        statement and keeps it until the unit ends."""
        if self._ended:
            raise UnitOfWorkError("this unit of work has ended")
        if self._session is None:
            self._session = self.rt.sessionmaker()
        return self._session

    @property
    def writing(self) -> bool:
        return self._writing

    async def write(self, *, lock_wait_seconds: float | None = None) -> AsyncSession:
        """Enter the write phase (once; later calls return the same session).

        `lock_wait_seconds` bounds how long it waits for a lock (the SQLite write lock, a
        PostgreSQL row lock) before failing, for writes that may rather not happen.
        """
        session = self.session
        if self._writing:
            return session
        busy_ms = None if lock_wait_seconds is None else int(lock_wait_seconds * 1000)
        if self.rt.settings.is_sqlite:
            if session.in_transaction():
                # The read snapshot ends here and the write lock is taken, on the same
                # connection; rows already loaded stay loaded, changes not yet flushed
                # are flushed under the lock.
                connection = await session.connection()
                await connection.run_sync(_restart_for_writing, busy_ms or BUSY_TIMEOUT_MS)
            else:
                options: dict[str, Any] = dict(WRITE)
                if busy_ms is not None:
                    options["sqlite_busy_timeout_ms"] = busy_ms
                await session.connection(execution_options=options)
        elif busy_ms is not None:
            # SET LOCAL takes no bind parameters; the value is our own number.
            await session.execute(text(f"SET LOCAL lock_timeout = '{busy_ms}ms'"))
        self._writing = True
        return session

    async def end_read(self) -> None:
        """End the read phase and give the connection back, for a wait on something that
        takes a connection of its own (a rate-limit counter); the next statement begins a
        new read phase. Rows already loaded stay loaded."""
        if self._writing:
            raise UnitOfWorkError("the write phase ends only at the boundary")
        session = self._session
        if session is not None and session.in_transaction():
            _refuse_unflushed(session)
            await session.commit()

    def after_commit(self, hook: Hook) -> None:
        """Run `hook` once this unit has committed (not if it rolls back); best effort."""
        self._after_commit.append(hook)

    def kept(self, error: E) -> E:
        """Mark `error` as an answer that keeps this unit's work: the boundary commits
        what was recorded (a refusal's evidence), then the error goes on. Use as
        `raise uow.kept(Denied(...))`."""
        self._kept = error
        return error

    def keeps(self, error: BaseException) -> bool:
        return error is self._kept

    async def commit(self) -> None:
        """Commit the unit's work and run its hooks. The boundary's call, not a service's."""
        session = self._session
        self._ended = True
        if session is not None:
            try:
                if not self._writing:
                    _refuse_unflushed(session)
                await session.commit()
            finally:
                await session.close()
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            try:
                await hook()
            except Exception:
                logger.warning("an after-commit step failed", exc_info=True)

    async def rollback(self) -> None:
        """Undo the unit's work and give its connection back; its hooks never run."""
        session = self._session
        self._ended = True
        self._after_commit = []
        if session is not None:
            # Closing rolls back without expiring: rows already read stay readable.
            await session.close()


def _restart_for_writing(connection: Any, busy_ms: int) -> None:
    # The driver leaves transactions to us (gateway.db.engine), so this COMMIT ends the
    # deferred read transaction and the BEGIN IMMEDIATE that follows is the one the
    # session later commits or rolls back.
    connection.exec_driver_sql("COMMIT")
    sqlite_begin(connection, immediate=True, busy_ms=busy_ms)


def _refuse_unflushed(session: AsyncSession) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise UnitOfWorkError("rows changed outside the write phase: call `await uow.write()`")


@asynccontextmanager
async def unit_of_work(rt: Runtime) -> AsyncIterator[UnitOfWork]:
    """A unit that commits when the block ends, or rolls back on an error it was not
    asked to keep."""
    uow = UnitOfWork(rt)
    try:
        yield uow
    except BaseException as exc:
        if uow.keeps(exc):
            try:
                await uow.commit()
            except BaseException:
                await uow.rollback()
                raise
        else:
            await uow.rollback()
        raise
    try:
        await uow.commit()
    except BaseException:
        await uow.rollback()
        raise


async def run_unit(rt: Runtime, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in one unit of work of its own."""
    async with unit_of_work(rt) as uow:
        return await work(uow)


def in_unit(work: Callable[[UnitOfWork], Awaitable[T]]) -> Callable[[Runtime], Awaitable[T]]:
    """A command's call in one unit of work: `run(in_unit(call))` with gateway.cli.support."""

    async def call(rt: Runtime) -> T:
        return await run_unit(rt, work)

    return call
