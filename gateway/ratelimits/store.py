"""Where the counts live: one small interface, and its database implementation.

Every attempt is counted by one atomic statement in the shared store, never read and
then written: `INSERT ... ON CONFLICT DO UPDATE ... WHERE <guard> RETURNING`. The guard
lets the update through only while the rule allows it, so of N concurrent attempts over a
limit of L exactly L see a row come back. SQLite and PostgreSQL both run that statement as
written; a Redis store would do the same with `INCR` (and a script for pacing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, ColumnElement, delete, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import case
from sqlalchemy.sql.dml import Insert

from gateway.db.engine import WRITE
from gateway.db.models import RateLimitCounter

_KEY = ("scope", "subject", "period")


@dataclass(frozen=True)
class Counter:
    """One rule's count for one subject in one window."""

    scope: str
    subject: str
    period: int


class RateLimitStore(Protocol):
    """Counts shared by every process and replica. Times are epoch milliseconds."""

    async def take(self, counter: Counter, *, limit: int, expires_at: int) -> bool:
        """Count one attempt if fewer than `limit` are counted; whether it was."""
        ...

    async def give_back(self, counter: Counter) -> None:
        """Uncount one attempt taken earlier (it turned out not to count)."""
        ...

    async def spend(
        self, counter: Counter, *, amount: int, limit: int, expires_at: int
    ) -> int | None:
        """Count `amount` if the total stays within `limit`: the total after, or None
        (nothing counted) when it would not."""
        ...

    async def count(self, counter: Counter) -> int:
        """What is counted now (0 for a window not yet used)."""
        ...

    async def take_paced(
        self, counter: Counter, *, now: int, free: int, delays: Sequence[int], expires_at: int
    ) -> int | None:
        """Count one attempt if the pace allows it now: None if counted, else the time
        from which the next one is allowed. After `free` attempts each one sets the next
        allowed time `delays[k]` ahead (k counting from 0, the last delay repeating)."""
        ...

    async def forget(self, scope: str, subject: str) -> None:
        """Drop every count of `subject` under `scope`."""
        ...

    async def sweep(self, now: int) -> int:
        """Drop the counts of windows that are over; how many."""
        ...


class DatabaseRateLimitStore:
    """Counts in the `rate_limits` table, each in a short write transaction of its own.

    Callers hold no other connection while they count (the request's own read is ended
    first), so counting never waits on the pool for a second one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            if self._sqlite:
                # Take the write lock up front and queue behind the busy timeout (see
                # gateway.db.engine); a deferred transaction could fail at once instead.
                await connection.execution_options(**WRITE)
            async with connection.begin():
                if not self._sqlite:
                    # A count need not wait for its WAL flush: the counter row is locked
                    # until the commit, and every request of one key or address counts on
                    # the same row, so a flush per count would queue them behind the disk.
                    # A crash of the database can forget the last fraction of a second of
                    # counts (PostgreSQL's wal_writer_delay), never a row half-written.
                    await connection.execute(text("SET LOCAL synchronous_commit = off"))
                yield connection

    def _upsert(
        self, values: dict[str, Any], set_: dict[str, Any], where: ColumnElement[bool]
    ) -> Insert:
        if self._sqlite:
            lite = sqlite_insert(RateLimitCounter).values(**values)
            return lite.on_conflict_do_update(index_elements=_KEY, set_=set_, where=where)
        pg = postgresql_insert(RateLimitCounter).values(**values)
        return pg.on_conflict_do_update(index_elements=_KEY, set_=set_, where=where)

    async def take(self, counter: Counter, *, limit: int, expires_at: int) -> bool:
        statement = self._upsert(
            {**_values(counter), "hits": 1, "not_before": 0, "expires_at": expires_at},
            {"hits": RateLimitCounter.hits + 1},
            RateLimitCounter.hits < limit,
        ).returning(RateLimitCounter.hits)
        async with self._write() as connection:
            taken = (await connection.execute(statement)).first()
        return taken is not None

    async def spend(
        self, counter: Counter, *, amount: int, limit: int, expires_at: int
    ) -> int | None:
        if amount > limit:
            return None
        statement = self._upsert(
            {**_values(counter), "hits": amount, "not_before": 0, "expires_at": expires_at},
            {"hits": RateLimitCounter.hits + amount},
            RateLimitCounter.hits + amount <= limit,
        ).returning(RateLimitCounter.hits)
        async with self._write() as connection:
            total = (await connection.execute(statement)).scalar()
        return None if total is None else int(total)

    async def count(self, counter: Counter) -> int:
        async with self.engine.connect() as connection:
            hits = await connection.scalar(select(RateLimitCounter.hits).where(*_is(counter)))
        return int(hits or 0)

    async def give_back(self, counter: Counter) -> None:
        async with self._write() as connection:
            await connection.execute(
                update(RateLimitCounter)
                .where(*_is(counter), RateLimitCounter.hits > 0)
                .values(hits=RateLimitCounter.hits - 1)
            )

    async def take_paced(
        self, counter: Counter, *, now: int, free: int, delays: Sequence[int], expires_at: int
    ) -> int | None:
        hits = RateLimitCounter.hits

        def at(delay: int) -> ColumnElement[int]:
            return literal(now + delay, BigInteger())

        # The next allowed time after this attempt, computed from the stored count in the
        # same statement; as a ladder of constants rather than a power, which SQLite lacks.
        next_allowed = case(
            (hits + 1 < free, literal(0, BigInteger())),
            *((hits + 1 - free == step, at(delay)) for step, delay in enumerate(delays[:-1])),
            else_=at(delays[-1]),
        )
        first = 0 if free > 1 else now + delays[0]
        statement = self._upsert(
            {**_values(counter), "hits": 1, "not_before": first, "expires_at": expires_at},
            {"hits": hits + 1, "not_before": next_allowed},
            or_(hits < free, RateLimitCounter.not_before <= now),
        ).returning(hits)
        async with self._write() as connection:
            if (await connection.execute(statement)).first() is not None:
                return None
            # Refused: read when to come back, only to say so in Retry-After.
            not_before = await connection.scalar(
                select(RateLimitCounter.not_before).where(*_is(counter))
            )
        return int(not_before or now)

    async def forget(self, scope: str, subject: str) -> None:
        async with self._write() as connection:
            await connection.execute(
                delete(RateLimitCounter).where(
                    RateLimitCounter.scope == scope, RateLimitCounter.subject == subject
                )
            )

    async def sweep(self, now: int) -> int:
        async with self._write() as connection:
            result = await connection.execute(
                delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now)
            )
        return int(result.rowcount)


def _values(counter: Counter) -> dict[str, Any]:
    return {"scope": counter.scope, "subject": counter.subject, "period": counter.period}


def _is(counter: Counter) -> tuple[ColumnElement[bool], ...]:
    return (
        RateLimitCounter.scope == counter.scope,
        RateLimitCounter.subject == counter.subject,
        RateLimitCounter.period == counter.period,
    )
