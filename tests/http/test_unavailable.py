"""A database or a store that goes away answers 503 with Retry-After and a code, never
500; /readyz names the cause; and the gateway recovers by itself once the part is back."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient

from gateway import health
from gateway.app import create_app
from gateway.config import Settings
from gateway.runtime import Runtime
from tests.conftest import PostgresServer
from tests.fixtures.faulty_proxy import FaultyProxy, Mode
from tests.grantees import grantee, open_release
from tests.http.portal import HTML, Http, csrf_token
from tests.http.test_ops_pages import sign_in_operator

pytestmark = pytest.mark.anyio
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"


def assert_unavailable(answer: Any, code: str) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    body = answer.json()
    assert body["error"] == code
    assert body["status"] == 503
    assert "not answering" in body["message"]


def database_switch(
    settings: Settings, request: pytest.FixtureRequest
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(take the database away, bring it back) for this backend."""
    if settings.is_sqlite:
        path = Path(settings.database_url.split("///", 1)[1])
        aside = path.with_suffix(".aside")

        def gone() -> None:
            path.rename(aside)
            path.mkdir()  # a folder where the file was: SQLite cannot open it

        def back() -> None:
            path.rmdir()
            aside.rename(path)

        return gone, back
    server: PostgresServer = request.getfixturevalue("postgres")
    name = settings.database_url.rsplit("/", 1)[1]

    def rename_away() -> None:
        # Its connections end, and new ones find no such database, as after a failover.
        server._execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608 - a name the test made
        )
        server._execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_aside"')

    def rename_back() -> None:
        server._execute(f'ALTER DATABASE "{name}_aside" RENAME TO "{name}"')

    return rename_away, rename_back


async def test_a_database_that_goes_away_answers_503_and_recovers_by_itself(
    settings: Settings, runtime: Runtime, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    await runtime.close()  # the test's own connections must not keep SQLite's file open
    gone, back = database_switch(settings, request)
    async with AsyncTestClient(app=create_app(settings=settings)) as client:
        if not settings.is_sqlite:
            # PostgreSQL: connections are pooled already when the database is dropped.
            assert (await client.post(MANIFEST, headers=alice.auth)).status_code == 200
        await asyncio.to_thread(gone)
        try:
            assert_unavailable(
                await client.post(MANIFEST, headers=alice.auth), "database_unavailable"
            )
            assert_unavailable(await client.get("/api/v1/models"), "database_unavailable")
            page = await client.get("/models/acme/sample", headers=HTML)
            assert page.status_code == 503
            assert page.headers["retry-after"] == "5"
            assert "the database is not answering" in page.text
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            cause = ready.json()["database"]
            expected = "unable to open database file" if settings.is_sqlite else "does not exist"
            assert cause.startswith("unreachable: ")
            assert expected in cause
        finally:
            await asyncio.to_thread(back)
        assert (await client.post(MANIFEST, headers=alice.auth)).status_code == 200
        assert (await client.get("/readyz")).json()["database"] == "ok"


async def attach_report(client: Http) -> Any:
    page = "/ops/releases/acme/sample/1.0"
    token = await csrf_token(client, page)
    return await client.post(
        f"{page}/evidence",
        data={"kind": "evaluation", "name": "red-team", "result": "pass", "_csrf_token": token},
        files={"file": ("report.txt", b"red-team: pass\n", "text/plain")},
        headers=HTML,
    )


async def test_a_store_that_goes_away_answers_503_and_recovers_by_itself(
    settings: Settings,
    runtime: Runtime,
    tmp_path: Path,
    faulty_proxy: type[FaultyProxy],
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    if settings.s3_endpoint_url:
        # S3: the gateway reaches the store through a proxy that can refuse connections.
        endpoint = urlsplit(settings.s3_endpoint_url)
        proxy = faulty_proxy((endpoint.hostname or "", endpoint.port or 80))
        served = replace(settings, s3_endpoint_url=proxy.url, storage_timeout_seconds=3)

        def gone() -> None:
            proxy.switch(Mode.REFUSE)

        def back() -> None:
            proxy.switch(Mode.PASS)

    else:
        # Local: the store's folder goes away, as an unmounted volume does.
        root = settings.home / "objects"
        aside = root.with_name("objects.aside")
        served = settings

        def gone() -> None:
            root.rename(aside)

        def back() -> None:
            shutil.rmtree(root, ignore_errors=True)
            aside.rename(root)

    async with AsyncTestClient(app=create_app(settings=served)) as client:
        client.follow_redirects = False
        await sign_in_operator(client, runtime)
        listed = await client.post(MANIFEST, headers=alice.auth)
        url = listed.json()["artifacts"][0]["url"].removeprefix("http://testserver")
        assert (await client.get(url)).status_code in (200, 302)
        gone()
        try:
            if not settings.s3_endpoint_url:
                # Local objects are served by the gateway: a missing store is a 503.
                assert_unavailable(await client.get(url), "storage_unavailable")
            refused = await attach_report(client)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert "storage unreachable: storing report.txt" in refused.text
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            cause = ready.json()["storage"]
            assert cause.startswith("unreachable: ")
            assert len(cause) > len("unreachable: ") + 10
        finally:
            back()
        assert (await client.get(url)).status_code in (200, 302)
        attached = await attach_report(client)
        assert "Evidence attached with report.txt" in attached.text
        assert (await client.get("/readyz")).json()["storage"] == "ok"


async def test_readiness_names_a_store_that_hangs(
    settings: Settings,
    faulty_proxy: type[FaultyProxy],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = faulty_proxy(("127.0.0.1", 9))
    proxy.switch(Mode.HANG)
    monkeypatch.setattr(health, "READY_TIMEOUT_SECONDS", 1.0)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    hung = replace(
        settings,
        storage_url="s3://never-answers/gateway",
        s3_endpoint_url=proxy.url,
        s3_region="us-east-1",
        # Longer than the readiness check waits: the check's own deadline is what fires.
        storage_timeout_seconds=3,
    )
    async with AsyncTestClient(app=create_app(settings=hung)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["storage"] == "unreachable: no answer within 1 s"
    # With a storage timeout shorter than the check, the store's own words come back.
    quick = replace(hung, storage_timeout_seconds=0.6)
    async with AsyncTestClient(app=create_app(settings=quick)) as client:
        ready = await client.get("/readyz")
    cause = ready.json()["storage"]
    assert cause.startswith("unreachable: S3 bucket 'never-answers'")
    assert "no answer within 0.6 s (1 attempt)" in cause
