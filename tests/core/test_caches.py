"""The caches' own rules (gateway/db/changes.py), without a database: the time to live is
a hard bound, a load that an invalidation overlaps is not kept, PostgreSQL's caches stay
off until the listener hears, and what a statement writes is read from the statement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from gateway.db import change_journal
from gateway.db.change_journal import Journal
from gateway.db.changes import EVERYTHING, WATCHED, Changes, written_tables
from tests.units import ManualClock

pytestmark = pytest.mark.anyio
SQLITE = "sqlite+aiosqlite:///unused.db"
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/unused"


class Loads:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        return self.count


async def test_an_entry_is_read_again_once_its_time_to_live_is_up() -> None:
    clock = ManualClock()
    cache = Changes(SQLITE, 1.0, monotonic=clock).cache("c", ("grants",))
    load = Loads()
    assert await cache.get("k", load) == 1
    clock.now += 0.999
    assert await cache.get("k", load) == 1
    clock.now += 0.001
    assert await cache.get("k", load) == 2


async def test_a_change_to_a_table_empties_only_the_caches_that_read_it() -> None:
    changes = Changes(SQLITE, 1.0, monotonic=ManualClock())
    grants, keys = changes.cache("g", ("grants",)), changes.cache("k", ("api_keys", "accounts"))
    load = Loads()
    await grants.get(1, load)
    await keys.get(1, load)
    changes.changed({"accounts"})
    assert (len(grants), len(keys)) == (1, 0)
    changes.changed({EVERYTHING})
    assert len(grants) == 0


async def test_a_load_that_an_invalidation_overlaps_is_not_kept() -> None:
    changes = Changes(SQLITE, 1.0, monotonic=ManualClock())
    cache = changes.cache("g", ("grants",))
    reading = asyncio.Event()
    go_on = asyncio.Event()

    async def slow() -> str:
        reading.set()
        await go_on.wait()
        return "read before the commit"

    task = asyncio.create_task(cache.get("k", slow))
    await reading.wait()
    changes.changed({"grants"})  # a commit lands while the old row is in flight
    go_on.set()
    assert await task == "read before the commit"
    assert len(cache) == 0


async def test_nothing_and_no_miss_is_kept() -> None:
    cache = Changes(SQLITE, 1.0, monotonic=ManualClock()).cache("g", ("grants",))

    async def missing() -> None:
        return None

    assert await cache.get("k", missing) is None
    assert len(cache) == 0


async def test_on_postgresql_the_caches_stay_off_until_the_listener_hears() -> None:
    changes = Changes(POSTGRES, 1.0, monotonic=ManualClock())
    cache = changes.cache("g", ("grants",))
    load = Loads()
    assert not changes.enabled
    assert [await cache.get("k", load) for _ in range(3)] == [1, 2, 3]
    assert len(cache) == 0


async def test_a_time_to_live_of_zero_turns_the_caches_off() -> None:
    cache = Changes(SQLITE, 0.0, monotonic=ManualClock()).cache("g", ("grants",))
    load = Loads()
    assert [await cache.get("k", load) for _ in range(2)] == [1, 2]


def test_a_cache_may_read_only_watched_tables() -> None:
    with pytest.raises(ValueError, match="evidence"):
        Changes(SQLITE, 1.0).cache("e", ("evidence",))


@pytest.mark.parametrize(
    ("statement", "tables"),
    [
        ("SELECT * FROM grants", None),
        ('UPDATE "grants" SET status = 1', {"grants"}),
        ("insert into api_keys (id) values (1)", {"api_keys"}),
        ("DELETE FROM recalls WHERE id = 1", {"recalls"}),
        ("INSERT INTO evidence (id) VALUES (1)", None),
        ("UPDATE rate_limits SET hits = hits + 1", None),
        ("TRUNCATE accounts", {EVERYTHING}),
        ("WITH x AS (SELECT 1) UPDATE grants SET status = 1", {EVERYTHING}),
        ("WITH x AS (SELECT 1) SELECT * FROM x", None),
    ],
)
def test_a_text_statement_names_the_table_it_writes(
    statement: str, tables: set[str] | None
) -> None:
    assert written_tables(None, statement) == tables


def test_cache_seconds_is_at_most_one_second(tmp_path: Path) -> None:
    env = {"GATEWAY_HOME": str(tmp_path)}
    assert load_settings(env).cache_seconds == 1.0
    assert load_settings({**env, "GATEWAY_CACHE_SECONDS": "0.25"}).cache_seconds == 0.25
    assert load_settings({**env, "GATEWAY_CACHE_SECONDS": "0"}).cache_seconds == 0.0
    for bad in ("1.5", "-1", "soon", "nan"):
        with pytest.raises(ConfigError, match="GATEWAY_CACHE_SECONDS"):
            load_settings({**env, "GATEWAY_CACHE_SECONDS": bad})


async def test_requests_that_miss_together_share_one_read() -> None:
    cache = Changes(SQLITE, 1.0, monotonic=ManualClock()).cache("g", ("grants",))
    go_on = asyncio.Event()
    reads = 0

    async def slow() -> str:
        nonlocal reads
        reads += 1
        await go_on.wait()
        return "row"

    waiting = [asyncio.create_task(cache.get("k", slow)) for _ in range(20)]
    await asyncio.sleep(0)
    go_on.set()
    assert await asyncio.gather(*waiting) == ["row"] * 20
    assert reads == 1


async def test_when_the_shared_read_fails_each_waiter_reads_for_itself() -> None:
    cache = Changes(SQLITE, 1.0, monotonic=ManualClock()).cache("g", ("grants",))
    go_on = asyncio.Event()
    reads = 0

    async def failing_first() -> str:
        nonlocal reads
        reads += 1
        if reads == 1:
            await go_on.wait()
            raise OSError("the database went away")
        return "row"

    first = asyncio.create_task(cache.get("k", failing_first))
    await asyncio.sleep(0)
    others = [asyncio.create_task(cache.get("k", failing_first)) for _ in range(3)]
    await asyncio.sleep(0)
    go_on.set()
    with pytest.raises(OSError, match="went away"):
        await first
    assert await asyncio.gather(*others) == ["row"] * 3
    assert reads == 4


async def test_a_request_after_an_invalidation_does_not_join_a_read_begun_before_it() -> None:
    changes = Changes(SQLITE, 1.0, monotonic=ManualClock())
    cache = changes.cache("g", ("grants",))
    go_on = asyncio.Event()

    async def before() -> str:
        await go_on.wait()
        return "read before the commit"

    async def after() -> str:
        return "read after the commit"

    early = asyncio.create_task(cache.get("k", before))
    await asyncio.sleep(0)
    changes.changed({"grants"})
    assert await cache.get("k", after) == "read after the commit"
    go_on.set()
    assert await early == "read before the commit"
    assert await cache.get("k", before) == "read after the commit"


async def test_a_value_made_of_cached_entries_is_as_old_as_the_oldest() -> None:
    clock = ManualClock()
    changes = Changes(SQLITE, 1.0, monotonic=clock)
    rows, decisions = changes.cache("rows", ("grants",)), changes.cache("decided", ("grants",))
    load = Loads()
    assert await rows.get("r", load) == 1  # read at 0.0
    clock.now += 0.7

    async def decide() -> int | None:
        return await rows.get("r", load)

    assert await decisions.get("d", decide) == 1  # made at 0.7 of the row read at 0.0
    clock.now += 0.3
    # At 1.0 the row is a second old, and so is the decision made of it.
    assert await decisions.get("d", decide) == 2
    assert load.count == 2


def test_the_journal_tells_each_process_what_the_others_committed(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3-changes"
    # Two processes on one database.
    server, command = Journal(path, WATCHED), Journal(path, WATCHED)
    assert server.news() is None
    command.append({"grants", "api_keys"})
    assert server.news() == {"grants", "api_keys"}
    assert server.news() is None
    assert command.news() is None, "a process has already forgotten what it wrote itself"
    # A line still being written is read once it is whole.
    with path.open("ab") as journal:
        journal.write(b"accounts")
    assert server.news() is None
    with path.open("ab") as journal:
        journal.write(b"\nsomething_new\n")
    assert server.news() == {"accounts", EVERYTHING}


def test_a_journal_that_starts_again_makes_its_readers_forget_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gateway.sqlite3-changes"
    server, command = Journal(path, WATCHED), Journal(path, WATCHED)
    monkeypatch.setattr(change_journal, "JOURNAL_MAX_BYTES", 30)
    command.append({"grants"})
    assert server.news() == {"grants"}
    command.append({"accounts", "api_keys", "releases"})  # past the limit: a new file
    assert path.stat().st_size == 0
    assert server.news() == {EVERYTHING}
    command.append({"recalls"})
    assert server.news() == {"recalls"}
