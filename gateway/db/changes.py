"""Per-process caches of what the hot paths read, and how each process learns that a row
they hold has changed.

Rules:
- An entry is never older than the time to live (`cache_seconds`, at most one second),
  whatever else happens: a lost notification costs at most that long.
- A commit in this process invalidates the tables it wrote once it has committed, in
  every runtime of this process on the same database (the engine's own events: a row
  written by the ORM, by Core or by text SQL).
- On PostgreSQL, statement triggers (migration 0011) send `NOTIFY gateway_changes` with
  the table's name, and every process listens on a connection of its own, so a change
  made on one replica empties the caches of every other at once. Until that connection
  is up, and whenever it drops, the caches are emptied and bypassed: a process that
  cannot hear of changes reads the database.
- On SQLite (a database file), every process's commits append the tables they wrote to
  a journal next to the database (`<file>-changes`, gateway/db/change_journal.py), and
  each cache lookup first reads
  what was appended since it last looked (a `stat`, and a read when the file grew): a
  command's revocation reaches a running server's next request. A write from outside
  every gateway process (the `sqlite3` shell) reaches the caches through the time to
  live alone.
- A load that an invalidation overlaps is not kept (each cache counts its
  invalidations), so a row read just before a commit never outlives it.
- Cached values are rows detached from their session, shared by every request of the
  process: read them, never change or re-attach them.
- A value read through other caches (a decision made of cached rows) is as old as the
  oldest entry it was made of, and ages from then.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.change_journal import EVERYTHING, journal_of

K = TypeVar("K")
V = TypeVar("V")
logger = logging.getLogger("gateway.db.changes")

CHANNEL = "gateway_changes"
# The tables the caches read; migration 0011 puts its trigger on each.
WATCHED = frozenset(
    {
        "models",
        "releases",
        "components",
        "artifacts",
        "grants",
        "api_keys",
        "accounts",
        "recalls",
        "url_signing_keys",
    }
)
# An execution option for a write of columns no cache reads (when a key was last used):
# `.execution_options(**WRITES_NOTHING_CACHED)`. The trigger leaves them out too.
NOTHING_CACHED = "gateway_writes_nothing_cached"
WRITES_NOTHING_CACHED = {NOTHING_CACHED: True}
# How often the listener makes sure its connection still answers, and how long it waits.
# A closed connection is noticed at once (asyncpg's termination callback); the heartbeat
# is for one that went silent. It is patient: a worker busy at full load answers its own
# event loop late, and a listener that gave up then would empty every cache for nothing
# (the time to live bounds every entry meanwhile).
HEARTBEAT_SECONDS = 1.0
HEARTBEAT_TIMEOUT_SECONDS = 5.0
RECONNECT_FIRST_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_ENTRIES = 50_000
# The listener's application_name, as pg_stat_activity shows it.
LISTENER_NAME = "gateway-changes"


# While a cache reads a value: since when the rows it is made of were read (the oldest
# cache entry the read used, or when the read began).
_READ_SINCE: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "gateway_cache_read_since", default=None
)


def _used(since: float) -> None:
    """An entry read at `since` went into the value being read now, if one is."""
    reading = _READ_SINCE.get()
    if reading is not None and since < reading[0]:
        reading[0] = since


class Cache(Generic[K, V]):
    """One kind of cached read, keyed, depending on some watched tables.

    One read per key at a time: when an entry is missing or has aged out, the first
    request reads it and the others asking meanwhile wait for that read (a few
    milliseconds) instead of all reading the same rows at once. A request that asks
    after an invalidation never waits for a read begun before it.
    """

    def __init__(self, changes: Changes, tables: frozenset[str], name: str) -> None:
        # Here, not at the top: `gateway serve`'s own process loads this module before it
        # says where metrics live (gateway/metrics/registry.py).
        from gateway.metrics.registry import CACHE_LOOKUPS

        self._changes = changes
        self.tables = tables
        self._hits = CACHE_LOOKUPS.labels(name, "hit")
        self._misses = CACHE_LOOKUPS.labels(name, "miss")
        self._bypassed = CACHE_LOOKUPS.labels(name, "bypass")
        self._entries: dict[K, tuple[V, float]] = {}
        self._reading: dict[K, asyncio.Future[tuple[bool, V | None]]] = {}
        self._invalidations = 0

    def peek(self, key: K) -> V | None:
        """The cached value of `key` if one is fresh; reads nothing. For a caller that must
        check its input before it may read for it (a key's checksum), and only then."""
        changes = self._changes
        if not changes.enabled:
            return None
        changes.catch_up()
        hit = self._entries.get(key)
        if hit is not None and changes.monotonic() - hit[1] < changes.ttl:
            self._hits.inc()
            _used(hit[1])
            return hit[0]
        return None

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value of `key`, or what `load` reads now (kept when it is not None and
        nothing changed meanwhile)."""
        changes = self._changes
        if not changes.enabled:
            self._bypassed.inc()
            return await load()
        changes.catch_up()
        started = changes.monotonic()
        hit = self._entries.get(key)
        if hit is not None and started - hit[1] < changes.ttl:
            self._hits.inc()
            _used(hit[1])
            return hit[0]
        # Joining another request's read counts as a miss too: it waits for the database.
        self._misses.inc()
        loop = asyncio.get_running_loop()
        reading = self._reading.get(key)
        if reading is not None and reading.get_loop() is loop:
            read, value = await asyncio.shield(reading)
            if read:
                _used(started)  # the shared read began before this request asked
                return value
            # That read failed: this request reads for itself (and meets the error itself).
            return await load()
        invalidations = self._invalidations
        mine: asyncio.Future[tuple[bool, V | None]] = loop.create_future()
        self._reading[key] = mine
        since = [started]
        token = _READ_SINCE.set(since)
        try:
            value = await load()
        except BaseException:
            mine.set_result((False, None))
            raise
        finally:
            _READ_SINCE.reset(token)
            if self._reading.get(key) is mine:
                del self._reading[key]
        mine.set_result((True, value))
        _used(since[0])  # a read within another cache's read ages that one too
        if value is not None and invalidations == self._invalidations and changes.enabled:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            # Aged from before the read began, or from the oldest entry it used: its rows
            # can only be older than that.
            self._entries[key] = (value, since[0])
        return value

    def clear(self) -> None:
        self._invalidations += 1
        self._entries.clear()
        # Reads begun before the change are not joined by requests that come after it.
        self._reading.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Changes:
    """The caches of one runtime and what keeps them true."""

    def __init__(
        self,
        database_url: str,
        ttl: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database_url = database_url
        self.ttl = ttl
        self.monotonic = monotonic
        self._postgres = not database_url.startswith("sqlite")
        self._journal = None if self._postgres else journal_of(database_url, WATCHED)
        self._caches: dict[str, Cache[Any, Any]] = {}
        self._hooks: list[tuple[frozenset[str], Callable[[], None]]] = []
        self._hearing = False
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False
        self.notices = 0
        _runtimes_of(database_url).add(self)

    @property
    def enabled(self) -> bool:
        """Whether the caches may answer: on PostgreSQL only while the listener hears."""
        return self.ttl > 0 and (self._hearing or not self._postgres)

    @property
    def hearing(self) -> bool:
        return self._hearing

    def cache(self, name: str, tables: Iterable[str]) -> Cache[Any, Any]:
        """The cache called `name` (made on first use) over `tables`."""
        found = self._caches.get(name)
        if found is None:
            watched = frozenset(tables)
            unknown = watched - WATCHED
            if unknown:
                raise ValueError(f"cache {name} reads tables nothing watches: {sorted(unknown)}")
            found = self._caches[name] = Cache(self, watched, name)
        return found

    def on_change(self, tables: Iterable[str], forget: Callable[[], None]) -> None:
        """Call `forget` whenever `tables` change, for a cache kept elsewhere (the URL
        signing keys')."""
        self._hooks.append((frozenset(tables), forget))

    def catch_up(self) -> None:
        """Forget what other processes' commits changed since this process last looked
        (SQLite's journal; on PostgreSQL the listener does it as notifications come)."""
        journal = self._journal
        if journal is not None:
            news = journal.news()
            if news:
                committed(self.database_url, news)

    def changed(self, tables: Iterable[str]) -> None:
        """Forget what was read from `tables` (EVERYTHING: from any table)."""
        names = set(tables)
        everything = EVERYTHING in names
        for cache in self._caches.values():
            if everything or not cache.tables.isdisjoint(names):
                cache.clear()
        for watched, forget in self._hooks:
            if everything or not watched.isdisjoint(names):
                forget()

    def clear(self) -> None:
        for cache in self._caches.values():
            cache.clear()
        for _watched, forget in self._hooks:
            forget()

    # The listener (PostgreSQL).

    def listen(self) -> None:
        """Start listening for other processes' changes (PostgreSQL; idempotent). Until
        the listener is connected the caches are bypassed."""
        if not self._postgres or self.ttl <= 0 or self._listener is not None:
            return
        self._stopping = False
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(), name="gateway-changes-listener"
        )

    async def stop(self) -> None:
        task, self._listener = self._listener, None
        self._stopping = True
        self._deaf()
        if task is None:
            return
        loop = task.get_loop()
        if loop is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif not loop.is_closed():
            # Started on another loop (a test client's, or a server's that is ending):
            # cancelled there, where it runs.
            loop.call_soon_threadsafe(task.cancel)

    async def _listen(self) -> None:
        dsn = make_url(self.database_url).set(drivername="postgresql")
        wait = RECONNECT_FIRST_SECONDS
        warned = False
        while not self._stopping:
            connection = None
            try:
                connection = await connect_listener(dsn.render_as_string(hide_password=False))
                await connection.add_listener(CHANNEL, self._notified)
                connection.add_termination_listener(lambda _c: self._deaf())
                # Whatever changed while nobody listened is forgotten before anything is
                # cached again.
                self.clear()
                self._hearing = True
                if warned:
                    logger.warning("listening for changes again; the caches are back on")
                warned = False
                wait = RECONNECT_FIRST_SECONDS
                while not connection.is_closed():
                    await asyncio.sleep(HEARTBEAT_SECONDS)
                    await asyncio.wait_for(
                        connection.execute("SELECT 1"), HEARTBEAT_TIMEOUT_SECONDS
                    )
            except asyncio.CancelledError:
                raise
            except Exception:  # any failure means: not hearing; retry
                if not warned:
                    logger.warning(
                        "cannot listen for changes; the caches are bypassed until it can",
                        exc_info=True,
                    )
                warned = True
            finally:
                self._deaf()
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_MAX_SECONDS)

    def _notified(self, _connection: object, _pid: int, _channel: str, table: str) -> None:
        self.notices += 1
        self.changed({table} if table in WATCHED else {EVERYTHING})

    def _deaf(self) -> None:
        self._hearing = False
        self.clear()


async def connect_listener(dsn: str) -> Any:
    """The listener's own connection (asyncpg's, outside the pool)."""
    import asyncpg  # type: ignore[import-untyped]  # present with PostgreSQL

    return await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={"application_name": LISTENER_NAME},
    )


# Every runtime of this process, by database: a commit through any of them (a command's,
# the server's) invalidates them all.
_RUNTIMES: dict[str, weakref.WeakSet[Changes]] = {}
_PENDING = "gateway_changes_pending"
_COMMITTED = "gateway_changes_committed"
# The table of a text INSERT, UPDATE or DELETE (anything else written in text: all of them).
_TARGET = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?(?:\s|\(|$)', re.I)
_ANY_WRITE = re.compile(r"\b(?:INSERT|UPDATE|DELETE)\b", re.I)
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "TRUNCATE", "ALTER", "DROP", "CREATE")


def _runtimes_of(database_url: str) -> weakref.WeakSet[Changes]:
    return _RUNTIMES.setdefault(database_url, weakref.WeakSet())


def committed(database_url: str, tables: Iterable[str]) -> None:
    """Tell every runtime of this process on `database_url` that `tables` changed."""
    names = frozenset(tables)
    for changes in list(_runtimes_of(database_url)):
        changes.changed(names)


def watch_writes(engine: AsyncEngine, database_url: str) -> None:
    """Note which watched tables each transaction writes; tell the caches once it has
    committed and its connection is back in the pool."""
    sync = engine.sync_engine

    def noted(
        conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        tables = written_tables(context, statement)
        if tables:
            conn.info.setdefault(_PENDING, set()).update(tables)

    def committing(conn: Any) -> None:
        pending = conn.info.pop(_PENDING, None)
        if pending:
            conn.info.setdefault(_COMMITTED, set()).update(pending)

    def rolled_back(conn: Any) -> None:
        conn.info.pop(_PENDING, None)

    journal = journal_of(database_url, WATCHED) if database_url.startswith("sqlite") else None

    def returned(_dbapi_connection: Any, record: Any) -> None:
        done = record.info.pop(_COMMITTED, None)
        if done:
            committed(database_url, done)
            if journal is not None:
                journal.append(done)

    event.listen(sync, "after_cursor_execute", noted)
    event.listen(sync, "commit", committing)
    event.listen(sync, "rollback", rolled_back)
    event.listen(sync.pool, "checkin", returned)


def written_tables(context: Any, statement: str) -> set[str] | None:
    """The watched tables a statement writes (EVERYTHING when it cannot tell), or None."""
    if context is not None and context.execution_options.get(NOTHING_CACHED):
        return None
    compiled = getattr(context, "compiled", None)
    if compiled is not None and (context.isinsert or context.isupdate or context.isdelete):
        table = getattr(getattr(compiled, "statement", None), "table", None)
        return _watched(getattr(table, "name", None))
    return _text_writes(statement)


def _text_writes(statement: str) -> set[str] | None:
    head = statement.lstrip()[:9].upper()
    if head.startswith("WITH"):
        # A common table expression may write anywhere: if it writes, assume everything.
        return {EVERYTHING} if _ANY_WRITE.search(statement) else None
    if not head.startswith(_WRITES):
        return None
    named = _TARGET.match(statement)
    return _watched(named.group(1).lower() if named is not None else None)


def _watched(table: str | None) -> set[str] | None:
    if table is None:
        return {EVERYTHING}
    return {table} if table in WATCHED else None


def detached(session: Any, *rows: Any) -> None:
    """Take `rows` out of the session so a cache may share them between requests; their
    loaded columns stay readable (the session does not expire rows on commit)."""
    for row in rows:
        if row in session:
            session.expunge(row)
