"""Yanking a release (PEP 592) through the operator API, the catalog and the console: a
yanked release is no longer the model's latest, stays downloadable by its exact version
with its reason in the manifest, and is flagged in the catalog; both moves are evidence,
grantees are told, and a bad request writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import Evidence, Notification
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.release import Move
from tests.backends import on_each_database
from tests.grantees import MODEL, grantee, open_release
from tests.http.operators import OPS, error_of, evidence_by, key_holder
from tests.http.portal import HTML, submit
from tests.http.test_ops_pages import sign_in_operator
from tests.sample import publish
from tests.units import reading, within

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
MODEL_URL = "/api/v1/models/acme/sample"
YANKED = f"{OPS}/releases/acme/sample/2.0"
REASON = "the 2.0 tokenizer drops accents"


async def two_releases(rt: Runtime, tmp_path: Path) -> None:
    """acme/sample 1.0 and 2.0, both open to researchers."""
    await open_release(rt, tmp_path)
    await publish(rt, tmp_path, version="2.0")
    for stage in rt.policy.ladder.names:
        await within(
            rt,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "2.0", Move.PROMOTE, target=stage, actor="test"
            ),
        )
        if stage == "researcher":
            return


async def told(rt: Runtime, account_id: str, kind: str) -> list[Notification]:
    async with reading(rt) as session:
        found = await session.scalars(
            select(Notification).where(
                Notification.account_id == account_id, Notification.kind == kind
            )
        )
        return list(found)


async def test_a_yanked_release_is_passed_over_and_stays_downloadable_by_its_version(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await two_releases(runtime, tmp_path)
    alice = await grantee(runtime)
    holder = await key_holder(runtime)
    assert (await client.get(MODEL_URL)).json()["latest"] == "2.0"

    yanked = await client.post(f"{YANKED}/yank", json={"reason": REASON}, headers=holder.auth)
    assert yanked.status_code == 200, yanked.text
    body = yanked.json()
    assert (body["release"], body["yanked"], body["reason"]) == ("acme/sample:2.0", True, REASON)
    assert body["yanked_by"] == holder.actor
    assert body["grantees_notified"] == 1
    [note] = await told(runtime, alice.account_id, "release.yanked")
    assert REASON in note.body
    [recorded] = await evidence_by(runtime, holder.actor, "release.yanked")
    assert recorded.data["reason"] == REASON

    model = (await client.get(MODEL_URL)).json()
    assert model["latest"] == "1.0"
    flags = {r["version"]: (r["yanked"], r["yanked_reason"]) for r in model["releases"]}
    assert flags == {"1.0": (False, None), "2.0": (True, REASON)}
    detail = (await client.get(f"{MODEL_URL}/releases/2.0")).json()
    assert (detail["yanked"], detail["yanked_reason"]) == (True, REASON)
    assert detail["yanked_at"] is not None

    manifest = await client.post(f"{MODEL_URL}/releases/2.0/downloads", headers=alice.auth)
    assert manifest.status_code == 200, manifest.text
    assert manifest.json()["yanked_reason"] == REASON
    first = manifest.json()["artifacts"][0]
    fetched = await client.get(first["url"])
    assert fetched.status_code == 200
    older = await client.post(f"{MODEL_URL}/releases/1.0/downloads", headers=alice.auth)
    assert older.json()["yanked_reason"] is None

    back = await client.post(f"{YANKED}/unyank", headers=holder.auth)
    assert back.status_code == 200, back.text
    assert (back.json()["yanked"], back.json()["reason"]) == (False, None)
    assert (await client.get(MODEL_URL)).json()["latest"] == "2.0"
    [unyanked] = await evidence_by(runtime, holder.actor, "release.unyanked")
    assert unyanked.data["reason"] == REASON
    assert len(await told(runtime, alice.account_id, "release.unyanked")) == 1
    status = (await client.get(f"{YANKED}/stage", headers=holder.auth)).json()
    assert (status["yanked_reason"], status["yanked_at"]) == (None, None)


async def evidence_count(rt: Runtime) -> int:
    async with reading(rt) as session:
        return int(await session.scalar(select(func.count()).select_from(Evidence)) or 0)


async def test_bad_yanks_are_refused_and_write_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await two_releases(runtime, tmp_path)
    holder = await key_holder(runtime)
    before = await evidence_count(runtime)
    for body in ({"reason": ""}, {"reason": " \n "}, {}, {"reason": "x" * 2001}):
        refused = await client.post(f"{YANKED}/yank", json=body, headers=holder.auth)
        assert refused.status_code == 400, (body, refused.text)
    unknown = await client.post(
        f"{OPS}/releases/acme/sample/9.9/yank", json={"reason": "r"}, headers=holder.auth
    )
    assert (unknown.status_code, error_of(unknown)) == (404, "release_not_found")
    nobody = await client.post(f"{YANKED}/yank", json={"reason": "r"})
    assert nobody.status_code == 401
    not_yanked = await client.post(f"{YANKED}/unyank", headers=holder.auth)
    assert (not_yanked.status_code, error_of(not_yanked)) == (409, "not_yanked")
    assert await evidence_count(runtime) == before

    assert (
        await client.post(f"{YANKED}/yank", json={"reason": REASON}, headers=holder.auth)
    ).status_code == 200
    twice = await client.post(f"{YANKED}/yank", json={"reason": "again"}, headers=holder.auth)
    assert (twice.status_code, error_of(twice)) == (409, "already_yanked")
    assert REASON in twice.json()["message"]
    assert await evidence_count(runtime) == before + 1


async def test_the_catalog_pages_flag_a_yanked_release_and_the_console_takes_it_back(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await two_releases(runtime, tmp_path)
    await sign_in_operator(client, runtime)
    page = "/ops/releases/acme/sample/2.0"
    empty = await submit(client, page, f"{page}/yank", {"reason": ""})
    assert empty.status_code == 400
    assert "reason" in empty.text
    done = await submit(client, page, f"{page}/yank", {"reason": REASON})
    assert done.status_code == 200, done.text
    assert "Yanked; " in done.text
    assert f"{REASON}" in done.text
    assert 'action="/ops/releases/acme/sample/2.0/unyank"' in done.text

    listing = (await client.get("/models/acme/sample", headers=HTML)).text
    assert "status-yanked" in listing
    assert REASON in listing
    shown = (await client.get("/models/acme/sample/releases/2.0", headers=HTML)).text
    assert "no longer the model's latest release" in shown
    assert REASON in shown
    other = (await client.get("/models/acme/sample/releases/1.0", headers=HTML)).text
    assert "status-yanked" not in other

    forged = await client.post(f"{page}/unyank", data={}, headers=HTML)
    assert forged.status_code == 403, "a form without its CSRF token is refused"
    back = await submit(client, page, f"{page}/unyank", {})
    assert "No longer yanked" in back.text
    assert "status-yanked" not in (await client.get("/models/acme/sample", headers=HTML)).text
