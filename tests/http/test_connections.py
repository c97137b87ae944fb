"""One pooled connection at a time: the download manifest, /d/, key authentication and the
signing-key cache never wait for a second connection while they hold one, so a burst of
requests cannot deadlock the pool; noting a key's use is best effort and never fails or
stalls a request.

The app runs on a pool deliberately small, and requests are sent concurrently through
httpx's ASGI transport (Litestar's test client would send them one at a time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from gateway.config import Settings
from gateway.credentials.api_key_format import key_digest
from gateway.credentials.url_tokens import KeyCache
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import ApiKey
from gateway.keys.service import LAST_USED_LOCK_WAIT_SECONDS, create_key
from gateway.runtime import Runtime, build_runtime
from tests.accounts import create_account
from tests.grantees import Grantee, grantee, open_release
from tests.units import within, writing

pytestmark = pytest.mark.anyio
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"
# Long enough for any real wait on a tiny pool, far shorter than a deadlock's 30 s.
POOL_TIMEOUT = 5.0


@asynccontextmanager
async def app_on_a_pool(
    settings: Settings, size: int, checkouts: list[object] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app on a pool of `size` connections and no overflow, with a client;
    every connection taken from the pool is appended to `checkouts`, if given."""
    engine = make_engine(
        settings.database_url, pool_size=size, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )
    if checkouts is not None:
        event.listen(engine.sync_engine, "checkout", lambda dbapi, *_: checkouts.append(dbapi))
    built = build_runtime(settings)
    await built.engine.dispose()
    rt = replace(built, engine=engine, sessionmaker=make_sessionmaker(engine), url_keys=KeyCache())
    transport = httpx.ASGITransport(app=create_app(runtime=rt))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await rt.close()


class Held:
    """How many pooled connections are out at once, at the most."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.now = self.most = 0
        event.listen(engine.sync_engine, "checkout", self._out)
        event.listen(engine.sync_engine, "checkin", self._back)

    def _out(self, *_: object) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def _back(self, *_: object) -> None:
        self.now -= 1


def client_engine(client: httpx.AsyncClient) -> AsyncEngine:
    app = client._transport.app  # type: ignore[attr-defined]
    engine: AsyncEngine = app.state.runtime.engine
    return engine


async def new_keys(runtime: Runtime, count: int) -> list[Grantee]:
    return [await grantee(runtime, f"user{n}@example.org") for n in range(count)]


async def last_used(runtime: Runtime, *secrets: str) -> list[bool]:
    async with runtime.sessionmaker() as session:
        found = (
            await session.scalars(
                select(ApiKey).where(ApiKey.secret_sha256.in_([key_digest(s) for s in secrets]))
            )
        ).all()
    return [k.last_used_at is not None for k in found]


async def test_one_request_needs_one_connection_at_a_time(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """On a pool of one, any step that held a connection while asking for another would
    wait for itself: a first request with a new key, with the signing-key cache empty."""
    await open_release(runtime, tmp_path)
    (alice,) = await new_keys(runtime, 1)
    async with app_on_a_pool(settings, 1) as client:
        manifest = await client.post(MANIFEST, headers=alice.auth)
        assert manifest.status_code == 200, manifest.text
        url = manifest.json()["artifacts"][0]["url"].removeprefix("http://testserver")
        fetched = await client.get(url)
        assert fetched.status_code in {200, 302}, fetched.text
        keys = await client.get("/api/v1/keys", headers=alice.auth)
        assert keys.status_code == 200, keys.text
        assert (await client.get("/.well-known/jwks.json")).status_code == 200
    assert await last_used(runtime, alice.key) == [True]


async def test_a_download_request_holds_one_connection_at_a_time(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """/d/ reads the token's live state in one unit of work, gives its connection back,
    then waits for its evidence's group commit, which takes one: never two at once, and
    never more than those two."""
    await open_release(runtime, tmp_path)
    (alice,) = await new_keys(runtime, 1)
    checkouts: list[object] = []
    async with app_on_a_pool(settings, 2, checkouts) as client:
        held = Held(client_engine(client))
        manifest = await client.post(MANIFEST, headers=alice.auth)
        assert manifest.status_code == 200, manifest.text
        url = manifest.json()["artifacts"][0]["url"].removeprefix("http://testserver")
        assert (await client.get(url)).status_code in {200, 302}
        for headers in ({}, {"range": "bytes=999999999-"}):  # a range, then a refusal
            checkouts.clear()
            held.most = 0
            answer = await client.get(url, headers=headers)
            assert answer.status_code in ({200, 302} if not headers else {416}), answer.text
            assert held.most == 1
            assert len(checkouts) == 2


async def test_a_burst_of_first_requests_from_new_keys_all_answer_200(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    callers = await new_keys(runtime, 12)
    async with app_on_a_pool(settings, 2) as client:
        answers = await asyncio.gather(
            *(client.post(MANIFEST, headers=who.auth) for who in callers)
        )
        assert [a.status_code for a in answers] == [200] * len(callers), [
            a.text for a in answers if a.status_code != 200
        ]
        urls = [a.json()["artifacts"][0]["url"].removeprefix("http://testserver") for a in answers]
        fetched = await asyncio.gather(*(client.get(url) for url in urls))
        assert {f.status_code for f in fetched} <= {200, 302}
    assert await last_used(runtime, *(c.key for c in callers)) == [True] * len(callers)


async def test_a_key_use_that_cannot_be_recorded_neither_fails_nor_stalls_the_request(
    settings: Settings, runtime: Runtime
) -> None:
    bob = await grantee_without_grant(runtime)
    async with app_on_a_pool(settings, 4) as client:
        # Another transaction holds the lock the write needs: on SQLite the database's
        # write lock, on PostgreSQL the key's row.
        async with writing(runtime) as blocker:
            if not settings.is_sqlite:
                await blocker.execute(
                    text("SELECT 1 FROM api_keys WHERE account_id = :a FOR UPDATE"),
                    {"a": bob.account_id},
                )
            began = time.monotonic()
            answer = await asyncio.wait_for(
                client.get("/api/v1/keys", headers=bob.auth), timeout=15
            )
            waited = time.monotonic() - began
        assert answer.status_code == 200, answer.text
        assert waited < LAST_USED_LOCK_WAIT_SECONDS + 3
        assert await last_used(runtime, bob.key) == [False]
        # The twin: with the lock free, the same request records the use.
        assert (await client.get("/api/v1/keys", headers=bob.auth)).status_code == 200
    assert await last_used(runtime, bob.key) == [True]


async def grantee_without_grant(runtime: Runtime) -> Grantee:
    account = await create_account(runtime, "bob@example.org", operator=False, actor="test")
    created = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=["keys"], days=None, name="", actor="test"
        ),
    )
    return Grantee(account.id, "bob@example.org", "", created.secret)
