"""The hot paths' caches (gateway/db/changes.py): a warm manifest, /d/ and release JSON read
only what changes with every request; a change made through this process is seen at once;
a change made by another process is seen through PostgreSQL's notifications, or on SQLite
through the change journal (another gateway process) or within the time to live (anything
else); while the listener cannot hear, the caches are bypassed.

"Another process" is a connection of the database's own driver, outside every engine of
this process: nothing here can tell the caches but the database itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from gateway.app import create_app
from gateway.config import Settings
from gateway.db import changes
from gateway.enforcement import service as enforcement
from gateway.keys.service import revoke_key
from gateway.runtime import Runtime, build_runtime
from gateway.staging.recalls import recall
from stages.enforcement import EnforcementStep
from tests.backends import on_backends
from tests.grantees import MODEL, Grantee, grantee, open_release
from tests.units import ManualClock, within

pytestmark = pytest.mark.anyio
RELEASE = "/api/v1/models/acme/sample/releases/1.0"
MANIFEST = f"{RELEASE}/downloads"
# Long enough for any real notification or reconnection; a wait that ends early by design.
PATIENCE_SECONDS = 20.0


class Reads:
    """The tables each SELECT of the app's engine reads from, while recording."""

    def __init__(self, rt: Runtime) -> None:
        self.statements: list[str] = []
        self.recording = False
        event.listen(rt.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        if self.recording and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append(statement)

    @asynccontextmanager
    async def during(self) -> AsyncIterator[list[str]]:
        self.statements = []
        self.recording = True
        try:
            yield self.statements
        finally:
            self.recording = False

    @staticmethod
    def tables(statements: list[str]) -> set[str]:
        known = ("quota_usage", "downloads", "api_keys", "accounts", "grants", "releases")
        return {t for s in statements for t in known if f"FROM {t}" in s or f"JOIN {t}" in s}


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, Reads]]:
    """The app on a runtime of its own (another runtime of this process is the tests'),
    listening for changes as `gateway serve` does, once it hears."""
    rt = build_runtime(settings)
    # Time stands still in here, so that what a test counts does not depend on how fast
    # a loaded machine runs it: entries would age out between two requests. Tests about
    # the time to live move the caches' clock themselves.
    frozen = rt.clock()
    rt.clock = lambda: frozen
    rt.changes.monotonic = ManualClock()
    app = create_app(runtime=rt)
    rt.changes.listen()
    await until(lambda: rt.changes.enabled, "the caches to come on")
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, rt, Reads(rt)
    finally:
        await rt.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    while not condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


async def manifest(client: httpx.AsyncClient, who: Grantee) -> httpx.Response:
    return await client.post(MANIFEST, headers=who.auth)


def refused(answer: httpx.Response, code: str) -> bool:
    return answer.status_code == 403 and answer.json().get("error") == code


async def suspend_elsewhere(settings: Settings, account_id: str) -> None:
    """Suspend the account from outside this process's engines."""
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        assert url.database is not None
        with sqlite3.connect(url.database) as db:
            db.execute("UPDATE accounts SET status = 'suspended' WHERE id = ?", (account_id,))
        return
    async with outside(settings) as db:
        await db.execute("UPDATE accounts SET status = 'suspended' WHERE id = $1", account_id)


@asynccontextmanager
async def outside(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A PostgreSQL connection of the driver's own, outside this process's engines."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    db = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        yield db
    finally:
        await db.close()


async def test_a_warm_manifest_reads_only_the_quota_and_release_json_reads_nothing(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    async with served(settings) as (client, _rt, reads):
        async with reads.during() as cold:
            assert (await client.get(RELEASE)).status_code == 200
        first = await manifest(client, alice)
        assert first.status_code == 200, first.text
        async with reads.during() as warm:
            again = await manifest(client, alice)
            assert again.status_code == 200, again.text
            assert (await client.get(RELEASE)).status_code == 200
        assert Reads.tables(cold) == {"releases"}, cold
        # The key, its account, the release, the grants and the recalls come from the
        # caches; the quota used changes with every download and is read each time.
        assert Reads.tables(warm) == {"quota_usage"}, warm
        assert len(warm) == 1, warm
        url = again.json()["artifacts"][0]["url"].removeprefix("http://testserver")
        assert (await client.get(url, headers={"range": "bytes=0-0"})).status_code in {206, 302}
        async with reads.during() as ranged:
            answer = await client.get(url, headers={"range": "bytes=0-0"})
            assert answer.status_code in {206, 302}, answer.text
        # A further range of a download already started: only the download is read.
        assert Reads.tables(ranged) == {"downloads"}, ranged


async def test_what_this_process_changes_is_seen_at_its_next_request(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """Revocation, suspension and recall, each committed by another runtime of this
    process (as a command run in it would), refuse the very next request."""
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    bob = await grantee(runtime, "bob@example.org")
    carol = await grantee(runtime, "carol@example.org")
    async with served(settings) as (client, _rt, _reads):
        for who in (alice, bob, carol):
            assert (await manifest(client, who)).status_code == 200
            assert (await manifest(client, who)).status_code == 200
        urls = (await manifest(client, carol)).json()["artifacts"]
        fetched = await client.get(urls[0]["url"].removeprefix("http://testserver"))
        assert fetched.status_code in {200, 302}

        key_id = (await client.get("/api/v1/keys", headers=alice.auth)).json()[0]["id"]
        await within(
            runtime,
            lambda uow: revoke_key(uow, account_id=alice.account_id, key_id=key_id, actor="t"),
        )
        revoked = await manifest(client, alice)
        assert refused(revoked, "key_revoked"), revoked.text

        await suspend_through(runtime, bob.email)
        assert refused(await manifest(client, bob), "account_suspended")

        await within(runtime, lambda uow: recall(uow, MODEL, "1.0", reason="leak", actor="t"))
        assert (await manifest(client, carol)).status_code in {403, 410}
        again = await client.get(urls[0]["url"].removeprefix("http://testserver"))
        assert again.status_code in {403, 410}, again.text


async def suspend_through(rt: Runtime, email: str) -> None:
    await within(
        rt,
        lambda uow: enforcement.enforce(
            uow,
            email=email,
            step=EnforcementStep.SUSPEND,
            reason="shared a link",
            days=None,
            incident_id=None,
            actor="op",
        ),
    )


@on_backends("postgres")
async def test_another_process_change_reaches_every_cache_by_notification(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    async with served(settings) as (client, rt, reads):
        assert (await manifest(client, alice)).status_code == 200
        async with reads.during() as warm:
            assert (await manifest(client, alice)).status_code == 200
        assert "accounts" not in Reads.tables(warm), "the account was not cached"
        heard = rt.changes.notices
        await suspend_elsewhere(settings, alice.account_id)
        await until(lambda: rt.changes.notices > heard, "the notification")
        assert refused(await manifest(client, alice), "account_suspended")


@on_backends("postgres")
async def test_while_the_listener_cannot_hear_the_caches_are_bypassed(
    settings: Settings, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    connect = changes.connect_listener
    blocked = False

    async def connecting(dsn: str) -> object:
        if blocked:
            raise OSError("the database is unreachable (test)")
        return await connect(dsn)

    monkeypatch.setattr(changes, "connect_listener", connecting)
    async with served(settings) as (client, rt, reads):
        assert (await manifest(client, alice)).status_code == 200
        blocked = True
        await end_listeners(settings)
        await until(lambda: not rt.changes.hearing, "the listener to notice it is cut off")
        async with reads.during() as deaf:
            assert (await manifest(client, alice)).status_code == 200
        assert "api_keys" in Reads.tables(deaf), "a cache answered while nothing could hear"
        # A change nobody can notify about is seen at once: nothing is cached.
        await suspend_elsewhere(settings, alice.account_id)
        assert refused(await manifest(client, alice), "account_suspended")
        blocked = False
        await until(lambda: rt.changes.hearing, "the listener to hear again")
        assert refused(await manifest(client, alice), "account_suspended")


async def end_listeners(settings: Settings) -> None:
    async with outside(settings) as db:
        ended = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            changes.LISTENER_NAME,
        )
    assert ended == 1, "the served runtime has one listener"


@on_backends("sqlite")
async def test_on_sqlite_another_process_change_is_seen_within_the_time_to_live(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    async with served(settings) as (client, rt, _reads):
        clock = ManualClock()
        rt.changes.monotonic = clock
        assert (await manifest(client, alice)).status_code == 200
        await suspend_elsewhere(settings, alice.account_id)
        # No notification on SQLite: the cached account answers until its time is up...
        clock.now += rt.changes.ttl / 2
        assert (await manifest(client, alice)).status_code == 200
        # ...and not a moment longer.
        clock.now += rt.changes.ttl / 2
        assert refused(await manifest(client, alice), "account_suspended")


# Another gateway process: its own engine on the same file, as `gateway grants revoke` has.
SUSPEND_IN_ANOTHER_PROCESS = """
import asyncio, sys
from sqlalchemy import text
from gateway.db.engine import make_engine

async def main(url, account):
    engine = make_engine(url)
    async with engine.begin() as db:
        await db.execute(
            text("UPDATE accounts SET status = 'suspended' WHERE id = :id"), {"id": account}
        )
    await engine.dispose()

asyncio.run(main(*sys.argv[1:]))
"""


@on_backends("sqlite")
async def test_on_sqlite_another_gateway_process_change_is_seen_at_the_next_request(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    async with served(settings) as (client, _rt, reads):
        assert (await manifest(client, alice)).status_code == 200
        async with reads.during() as warm:
            assert (await manifest(client, alice)).status_code == 200
        assert "accounts" not in Reads.tables(warm), "the account was not cached"
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-c",
                SUSPEND_IN_ANOTHER_PROCESS,
                settings.database_url,
                alice.account_id,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The served runtime's clock stands still: only the journal can have told it.
        assert refused(await manifest(client, alice), "account_suspended")
