"""Anyone who finds an API key reports it (API or /report-key, no sign-in): every active
key among those reported is revoked at once, its owner is told where it was found, and
each revocation is evidence; bad reports are refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.credentials.api_key_format import new_api_key
from gateway.db.models import Evidence, Notification
from gateway.runtime import Runtime
from tests.backends import on_each_database
from tests.grantees import grantee, open_release
from tests.http.portal import HTML, Http, submit
from tests.units import writing

pytestmark = [pytest.mark.anyio, on_each_database()]
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"
REVOKE = "/api/v1/credentials/revoke"
WHERE = "https://paste.example/abc"


async def told(rt: Runtime, account_id: str) -> list[Notification]:
    async with writing(rt) as session:
        found = await session.scalars(
            select(Notification).where(
                Notification.account_id == account_id, Notification.kind == "key.found"
            )
        )
        return list(found)


async def test_a_found_key_is_revoked_and_its_owner_told(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    ada = await grantee(runtime, "ada@uni.example")
    bob = await grantee(runtime, "bob@lab.example")
    assert (await client.post(MANIFEST, headers=ada.auth)).status_code == 200

    body = {"keys": [ada.key, new_api_key(), "not-a-key", ada.key], "found_at": WHERE}
    answer = await client.post(REVOKE, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 4, "revoked": 1}
    refused = await client.post(MANIFEST, headers=ada.auth)
    assert refused.status_code == 403
    assert "revoked" in refused.json()["message"]
    assert (await client.post(MANIFEST, headers=bob.auth)).status_code == 200
    # Reported again: nothing more to revoke, nothing more told.
    assert (await client.post(REVOKE, json=body)).json() == {"received": 4, "revoked": 0}
    [note] = await told(runtime, ada.account_id)
    assert f"at {WHERE}" in note.body
    assert ada.key[:12] in note.body
    assert ada.key not in note.body
    assert await told(runtime, bob.account_id) == []
    async with writing(runtime) as session:
        rows = (await session.scalars(select(Evidence).where(Evidence.kind == "key.revoked"))).all()
    assert [(r.actor, r.account_id, r.data["found"], r.data["found_at"]) for r in rows] == [
        ("public", ada.account_id, True, WHERE)
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"keys": []}, "name at least one key"),
        ({"keys": ["rgk_x"] * 1001}, "at most 1000 keys a report, not 1001"),
        ({"keys": ["x" * 201]}, "key 1 is not text of 1 to 200 characters"),
        ({"keys": [""]}, "key 1 is not text of 1 to 200 characters"),
        ({"keys": ["rgk_x"], "found_at": "a\nb"}, "may not contain line breaks"),
        ({"keys": "rgk_x"}, "keys"),
        ({}, "keys"),
    ],
)
async def test_bad_reports_are_refused_whole(
    client: Http, runtime: Runtime, tmp_path: Path, body: object, message: str
) -> None:
    await open_release(runtime, tmp_path)
    ada = await grantee(runtime, "ada@uni.example")
    if isinstance(body, dict) and body.get("keys") == []:
        body = {"keys": [], "found_at": None}
    if isinstance(body, dict) and isinstance(body.get("keys"), list) and len(body["keys"]) > 1:
        body = {"keys": [ada.key, *body["keys"][1:]]}
    answer = await client.post(REVOKE, json=body)
    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert (await client.post(MANIFEST, headers=ada.auth)).status_code == 200


async def test_the_report_key_page_revokes_without_signing_in(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    ada = await grantee(runtime, "ada@uni.example")
    page = await client.get("/report-key", headers=HTML)
    assert page.status_code == 200
    assert "rgk_[0-9A-Za-z]{28}" in page.text
    refused = await submit(client, "/report-key", "/report-key", {"keys": " ", "found_at": ""})
    assert refused.status_code == 400
    assert "name at least one key" in refused.text
    assert "<title>Error: " in refused.text
    done = await submit(
        client, "/report-key", "/report-key", {"keys": f"{ada.key}\nrgk_other", "found_at": WHERE}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/report-key?received=2&revoked=1"
    shown = await client.get(done.headers["location"], headers=HTML)
    assert "1 was active and is now revoked" in shown.text
    assert (await client.post(MANIFEST, headers=ada.auth)).status_code == 403
    forged = await client.post("/report-key", data={"keys": ada.key}, headers=HTML)
    assert forged.status_code == 403
