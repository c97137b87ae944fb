"""Downloads over HTTP: the manifest, /d/ with Range, live revocation, expiry, fair quotas
and evidence — on SQLite and PostgreSQL, with local and S3 storage."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from gateway.db.models import Account, Download, Evidence, Grant, QuotaUsage
from gateway.downloads.service import Client, deliver
from gateway.errors import Denied
from gateway.grants.service import change_grant
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.access import Reason
from stages.grants import GrantMove
from stages.release import Move
from tests.grantees import MODEL, Grantee, grantee, open_release
from tests.units import reading, within, writing

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"


def local(url: str) -> str:
    return url.removeprefix("http://testserver")


async def manifest(client: Http, who: Grantee, **body: Any) -> dict[str, Any]:
    response = await client.post(MANIFEST, headers=who.auth, json=body or None)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def fetch(client: Http, url: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    """GET a /d/ URL; in S3 mode follow the redirect to storage as a client would."""
    response = await client.get(local(url), headers=headers or {})
    if response.status_code == 302:
        location = response.headers["location"]
        assert "X-Amz-Signature=" in location
        assert response.headers["cache-control"] == "no-store"
        return httpx2.get(location, headers=headers or {})
    return response  # type: ignore[return-value]


def entry(body: dict[str, Any], path: str) -> dict[str, Any]:
    return next(a for a in body["artifacts"] if a["path"] == path)


async def test_manifest_lists_what_the_tier_sees_and_every_url_delivers_the_bytes(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    body = await manifest(client, alice)
    assert body["tier"] == "researcher"
    assert body["grant_id"] == alice.grant_id
    assert (
        body["signature_url"]
        == "http://testserver/api/v1/models/acme/sample/releases/1.0/signature"
    )
    assert body["public_key_url"] == "http://testserver/.well-known/release-signing-key.pem"
    paths = sorted(a["path"] for a in body["artifacts"])
    assert paths == [
        "README.md",
        "config.json",
        "model.safetensors",
        "modeling.py",
        "notes.txt",
        "shards/model-00002.safetensors",
    ]
    assert body["withheld"] == []
    ttl = runtime.policy.ladder.get("researcher").url_ttl_seconds
    for artifact in body["artifacts"]:
        assert artifact["url"].startswith("http://testserver/d/")
        assert artifact["quota_remaining"] == runtime.policy.ladder.get("researcher").download_quota
        response = await fetch(client, artifact["url"])
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        assert len(response.content) == artifact["size"]
    first = body["artifacts"][0]
    assert first["expires_at"]
    assert ttl == 1800


async def test_local_answers_carry_length_etag_and_ranges(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    weights = entry(await manifest(client, alice), "model.safetensors")
    url = local(weights["url"])
    if runtime.settings.storage_url.startswith("s3:"):
        # S3 serves the bytes: the gateway answers with a fresh, short presigned URL,
        # signed without a range so that the client may resume from any byte.
        redirect = await client.get(url, headers={"range": "bytes=1000-"})
        assert redirect.status_code == 302
        assert "X-Amz-Expires=30" in redirect.headers["location"]
        ranged = httpx2.get(redirect.headers["location"], headers={"range": "bytes=1000-"})
        assert ranged.status_code == 206
        assert len(ranged.content) == weights["size"] - 1000
        return
    whole = await client.get(url)
    assert whole.headers["content-length"] == str(weights["size"])
    assert whole.headers["etag"] == f'"{weights["sha256"]}"'
    assert whole.headers["accept-ranges"] == "bytes"
    head = await client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(weights["size"])
    tail = await client.get(url, headers={"range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes 1000-{weights['size'] - 1}/{weights['size']}"
    assert tail.content == whole.content[1000:]
    middle = await client.get(url, headers={"range": "bytes=10-19"})
    assert middle.content == whole.content[10:20]
    beyond = await client.get(url, headers={"range": f"bytes={weights['size']}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{weights['size']}"
    assert beyond.json()["error"] == "range_not_satisfiable"


async def test_a_resumed_download_through_d_verifies(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    weights = entry(await manifest(client, alice), "model.safetensors")
    first = (await fetch(client, weights["url"], {"range": "bytes=0-99999"})).content
    rest = (await fetch(client, weights["url"], {"range": f"bytes={len(first)}-"})).content
    assert hashlib.sha256(first + rest).hexdigest() == weights["sha256"]


@pytest.mark.parametrize(
    ("move", "reason"),
    [(GrantMove.REVOKE, "grant_revoked"), (GrantMove.SUSPEND, "grant_suspended")],
)
async def test_revoking_or_suspending_a_grant_kills_urls_already_handed_out(
    client: Http, runtime: Runtime, tmp_path: Path, move: GrantMove, reason: str
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    url = entry(await manifest(client, alice), "README.md")["url"]
    assert (await fetch(client, url)).status_code == 200
    await within(
        runtime,
        lambda uow: change_grant(uow, alice.grant_id, move, reason="test", actor="operator"),
    )
    refused = await client.get(local(url))
    assert refused.status_code == 403
    assert refused.json()["error"] == reason
    assert refused.json()["message"]
    again = await client.post(MANIFEST, headers=alice.auth)
    assert again.json()["error"] == reason
    if move is GrantMove.SUSPEND:
        await within(
            runtime,
            lambda uow: change_grant(
                uow, alice.grant_id, GrantMove.REINSTATE, reason="ok", actor="op"
            ),
        )
        assert (await fetch(client, url)).status_code == 200


async def test_live_state_is_checked_on_every_request(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    url = local(entry(await manifest(client, alice), "README.md")["url"])
    async with writing(runtime) as session:
        await session.execute(
            update(Account).where(Account.id == alice.account_id).values(status="suspended")
        )
    assert (await client.get(url)).json()["error"] == "account_suspended"
    async with writing(runtime) as session:
        await session.execute(
            update(Account).where(Account.id == alice.account_id).values(status="active")
        )
    assert (await client.get(url)).status_code in (200, 302)

    await within(
        runtime,
        lambda uow: move_release(
            uow, MODEL, "1.0", Move.ROLLBACK, target="trusted_partner", actor="op", reason="t"
        ),
    )
    refused = await client.get(url)
    assert refused.status_code == 403
    assert refused.json()["error"] == "tier_not_open"
    await within(
        runtime,
        lambda uow: move_release(uow, MODEL, "1.0", Move.PROMOTE, target="researcher", actor="op"),
    )
    await within(
        runtime,
        lambda uow: move_release(
            uow, MODEL, "1.0", Move.RECALL, target=None, actor="op", reason="leak"
        ),
    )
    assert (await client.get(url)).json()["error"] == "release_recalled"


async def test_an_expired_url_answers_410_with_a_hint(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    url = local(entry(await manifest(client, alice), "README.md")["url"])
    app_runtime: Runtime = client.app.state.runtime
    later = runtime.clock() + timedelta(seconds=1800 + 60)
    app_runtime.clock = lambda: later
    response = await client.get(url)
    assert response.status_code == 410
    assert response.json()["error"] == "url_expired"
    assert "fresh URL" in response.json()["hint"]


async def test_retries_resumes_and_refreshes_use_one_quota_unit(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    body = await manifest(client, alice)
    readme = entry(body, "README.md")
    for headers in ({}, {"range": "bytes=3-"}, {}, {"range": "bytes=0-1"}):
        assert (await fetch(client, readme["url"], headers)).status_code in (200, 206)
    assert await used(runtime, alice.grant_id) == 1
    # A refreshed URL that continues the same download keeps its id and its unit.
    refreshed = entry(
        await manifest(
            client, alice, paths=["README.md"], **{"continue": {"README.md": readme["download_id"]}}
        ),
        "README.md",
    )
    assert refreshed["download_id"] == readme["download_id"]
    assert refreshed["url"] != readme["url"]
    assert (await fetch(client, refreshed["url"])).status_code == 200
    assert await used(runtime, alice.grant_id) == 1
    # A new manifest without `continue` starts a new download: one more unit.
    fresh = entry(await manifest(client, alice, paths=["README.md"]), "README.md")
    assert fresh["download_id"] != readme["download_id"]
    assert fresh["quota_remaining"] == 9
    await fetch(client, fresh["url"])
    assert await used(runtime, alice.grant_id) == 2
    # HEAD never counts.
    again = entry(await manifest(client, alice, paths=["README.md"]), "README.md")
    await client.head(local(again["url"]))
    assert await used(runtime, alice.grant_id) == 2


async def test_an_exhausted_quota_is_refused_and_withheld(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    await set_quota(runtime, alice.grant_id, 1)
    first = entry(await manifest(client, alice, paths=["README.md"]), "README.md")
    second = entry(await manifest(client, alice, paths=["README.md"]), "README.md")
    assert (await fetch(client, first["url"])).status_code == 200
    refused = await client.get(local(second["url"]))
    assert refused.status_code == 403
    assert refused.json()["error"] == "quota_exhausted"
    body = await manifest(client, alice, paths=["README.md"])
    assert body["artifacts"] == []
    assert body["withheld"] == [
        {
            "path": "README.md",
            "component": "model_card",
            "reason": "quota_exhausted",
            "message": "the download quota for this file is used up for this period",
        }
    ]
    # The download already under way still finishes.
    assert (await fetch(client, first["url"], {"range": "bytes=2-"})).status_code == 206


async def test_quota_counting_is_exact_under_concurrency(runtime: Runtime, tmp_path: Path) -> None:
    """K units left, N > K simultaneous first requests with distinct URLs: exactly K pass."""
    from gateway.downloads.service import issue_manifest
    from gateway.keys.service import authenticate

    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    units, requests = 4, 12
    await set_quota(runtime, alice.grant_id, units)
    async with runtime.unit() as uow:
        caller = await authenticate(uow.session, alice.key)
    urls = []
    for _ in range(requests):
        issued = await within(
            runtime,
            lambda uow: issue_manifest(
                uow,
                caller,
                MODEL,
                "1.0",
                paths=["README.md"],
                continue_ids=None,
                client=Client("127.0.0.1", "test"),
            ),
        )
        urls.append(issued.artifacts[0].url)

    async def one(url: str) -> str:
        try:
            await within(
                runtime,
                lambda uow: deliver(
                    uow,
                    url.rsplit("/d/", 1)[1],
                    range_header=None,
                    method="GET",
                    client=Client("127.0.0.1", "test"),
                ),
            )
        except Denied as exc:
            return exc.reason.value
        return "allowed"

    outcomes = await asyncio.gather(*(one(url) for url in urls))
    assert outcomes.count("allowed") == units
    assert outcomes.count(Reason.QUOTA_EXHAUSTED.value) == requests - units
    assert await used(runtime, alice.grant_id) == units
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Download)) == units


async def test_issuance_and_requests_are_evidence(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    url = entry(await manifest(client, alice, paths=["README.md"]), "README.md")["url"]
    await client.get(local(url), headers={"user-agent": "evidence-test/1", "range": "bytes=0-9"})
    await within(
        runtime,
        lambda uow: change_grant(uow, alice.grant_id, GrantMove.REVOKE, reason="done", actor="op"),
    )
    await client.get(local(url), headers={"user-agent": "evidence-test/1"})
    async with runtime.sessionmaker() as session:
        rows = (await session.scalars(select(Evidence).order_by(Evidence.id))).all()
    issued = [r for r in rows if r.kind == "url.issued"]
    assert len(issued) == 1
    assert issued[0].data["path"] == "README.md"
    assert issued[0].data["grant"] == alice.grant_id
    assert issued[0].data["tier"] == "researcher"
    requested = [r for r in rows if r.kind == "download.requested"]
    assert [r.data["outcome"] for r in requested] == ["allowed", "grant_revoked"]
    assert requested[0].data["range"] == "bytes=0-9"
    assert requested[0].data["user_agent"] == "evidence-test/1"
    assert requested[0].data["client_address"]
    assert requested[0].account_id == alice.account_id
    assert "grant.revoked" in [r.kind for r in rows]


async def used(rt: Runtime, grant_id: str) -> int:
    async with rt.sessionmaker() as session:
        return (
            await session.scalar(
                select(func.coalesce(func.sum(QuotaUsage.used), 0)).where(
                    QuotaUsage.grant_id == grant_id
                )
            )
            or 0
        )


async def set_quota(rt: Runtime, grant_id: str, units: int) -> None:
    async with writing(rt) as session:
        await session.execute(
            update(Grant).where(Grant.id == grant_id).values(download_quota=units)
        )


async def test_a_download_id_cannot_be_borrowed_from_another_grant_or_file(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    bob = await grantee(runtime, "bob@example.org")
    readme = entry(await manifest(client, alice, paths=["README.md"]), "README.md")
    await fetch(client, readme["url"])
    borrowed = {
        "continue": {"README.md": readme["download_id"], "config.json": readme["download_id"]}
    }
    theirs = await manifest(client, bob, paths=["README.md"], **borrowed)
    assert entry(theirs, "README.md")["download_id"] != readme["download_id"]
    mine = await manifest(client, alice, paths=["config.json"], **borrowed)
    assert entry(mine, "config.json")["download_id"] != readme["download_id"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"other": 1}, "other"),
        ({"paths": "model.safetensors"}, "paths"),
        ({"paths": [1, 2]}, "paths"),
        ({"continue": ["model.safetensors"]}, "continue"),
        ({"continue": {"model.safetensors": 7}}, "continue"),
        ([], "object"),
    ],
)
async def test_a_malformed_manifest_body_is_refused_naming_the_field(
    client: Http, runtime: Runtime, tmp_path: Path, body: Any, named: str
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    refused = await client.post(MANIFEST, headers=alice.auth, json=body)
    assert refused.status_code == 400, refused.text
    answer = refused.json()
    assert answer["error"] == "invalid_request"
    assert named in answer["message"], answer
    # Refused before any work: no URL was issued, nothing was counted.
    async with reading(runtime) as session:
        issued = await session.scalar(
            select(func.count()).select_from(Evidence).where(Evidence.kind == "url.issued")
        )
    assert issued == 0
    # The twin: the two fields, well formed, are accepted, and so is no body at all.
    for good in ({"paths": ["README.md"], "continue": {"README.md": "x"}}, None):
        accepted = await client.post(MANIFEST, headers=alice.auth, json=good)
        assert accepted.status_code == 200, accepted.text
