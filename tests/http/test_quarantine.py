"""Quarantine (PEP 792): when enough distinct trusted reporters (the suite's policy: one
address and one domain, two reports) have open incidents about a release, it is held at
once: no new manifest or API use, while a link already issued still serves; an operator
lifts it. By hand through the operator API and the console too; bad requests write
nothing, and two reports arriving together hold the release once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import Evidence, Notification
from gateway.identity.accounts import create_account
from gateway.incidents import reporting
from gateway.runtime import Runtime
from tests.backends import on_each_database
from tests.grantees import MODEL, grantee, open_release
from tests.http.operators import OPS, error_of, evidence_by, key_holder
from tests.http.portal import HTML, submit
from tests.http.test_ops_pages import sign_in_operator
from tests.units import reading, within, writing

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
RELEASE = f"{OPS}/releases/acme/sample/1.0"
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"


async def report_by(rt: Runtime, email: str, *, confirmed: bool = True) -> str:
    """An incident about acme/sample:1.0 from a signed-in account at `email` (whose
    address was confirmed, unless not `confirmed`)."""
    async with writing(rt) as session:
        account = await create_account(
            session,
            email,
            now=rt.clock(),
            actor=None,
            email_verified_at=rt.clock() if confirmed else None,
        )
    incident = await within(
        rt,
        lambda uow: reporting.report(
            uow,
            model=MODEL,
            version="1.0",
            category="safety",
            description="It gives step-by-step instructions it should refuse.",
            links=[],
            contact=None,
            reporter_account_id=account.id,
            address="192.0.2.7",
        ),
    )
    return incident.id


async def holds(rt: Runtime) -> list[Evidence]:
    async with reading(rt) as session:
        found = await session.scalars(
            select(Evidence).where(Evidence.kind == "release.quarantined").order_by(Evidence.id)
        )
        return list(found)


def refused(answer: object, code: str) -> bool:
    return getattr(answer, "status_code", None) == 403 and answer.json()["error"] == code  # type: ignore[attr-defined]


async def test_two_trusted_reporters_quarantine_a_release_until_an_operator_lifts_it(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    holder = await key_holder(runtime)
    issued = await client.post(MANIFEST, headers=alice.auth)
    assert issued.status_code == 200, issued.text
    url = issued.json()["artifacts"][0]["url"]

    await report_by(runtime, "someone@elsewhere.example")  # not trusted: not counted
    # A trusted domain's address nobody confirmed proves nothing: not counted either.
    await report_by(runtime, "claims@trusted.example", confirmed=False)
    first = await report_by(runtime, "alerts@watch.example")
    assert await holds(runtime) == []
    assert (await client.post(MANIFEST, headers=alice.auth)).status_code == 200
    second = await report_by(runtime, "lead@trusted.example")
    [held] = await holds(runtime)
    assert held.actor == "system:trigger"
    assert sorted(held.data["incidents"]) == sorted([first, second])
    assert "alerts@watch.example" in held.data["reason"]
    async with reading(runtime) as session:
        told = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "release.quarantine")
        )
    assert told == 1, "the one operator is told"

    assert refused(await client.post(MANIFEST, headers=alice.auth), "release_quarantined")
    assert (await client.get(url)).status_code == 200, "a link already issued still serves"
    detail = (await client.get("/api/v1/models/acme/sample/releases/1.0")).json()
    assert detail["quarantined"] is True
    status = (await client.get(f"{RELEASE}/stage", headers=holder.auth)).json()
    assert "trusted reporters" in status["quarantine_reason"]
    await report_by(runtime, "third@trusted.example")
    assert len(await holds(runtime)) == 1, "held once"

    lifted = await client.post(
        f"{RELEASE}/quarantine/lift", json={"reason": "not reproducible"}, headers=holder.auth
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["quarantined"] is False
    assert (await client.post(MANIFEST, headers=alice.auth)).status_code == 200
    [decision] = await evidence_by(runtime, holder.actor, "release.quarantine_lifted")
    assert decision.data["reason"] == "not reproducible"


async def test_two_trusted_reports_at_once_hold_the_release_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await asyncio.gather(
        report_by(runtime, "alerts@watch.example"), report_by(runtime, "one@trusted.example")
    )
    assert len(await holds(runtime)) == 1


async def test_an_operator_quarantines_by_hand_and_bad_requests_write_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    holder = await key_holder(runtime)
    for body in ({"reason": ""}, {}, {"reason": "r" * 2001}):
        answer = await client.post(f"{RELEASE}/quarantine", json=body, headers=holder.auth)
        assert answer.status_code == 400, (body, answer.text)
    unknown = await client.post(
        f"{OPS}/releases/acme/sample/9.9/quarantine", json={"reason": "r"}, headers=holder.auth
    )
    assert (unknown.status_code, error_of(unknown)) == (404, "release_not_found")
    not_held = await client.post(
        f"{RELEASE}/quarantine/lift", json={"reason": "r"}, headers=holder.auth
    )
    assert (not_held.status_code, error_of(not_held)) == (409, "not_quarantined")
    assert (await client.post(f"{RELEASE}/quarantine", json={"reason": "r"})).status_code == 401
    assert await holds(runtime) == []

    held = await client.post(
        f"{RELEASE}/quarantine", json={"reason": "under review"}, headers=holder.auth
    )
    assert held.status_code == 200, held.text
    assert (held.json()["quarantined"], held.json()["quarantined_by"]) == (True, holder.actor)
    again = await client.post(f"{RELEASE}/quarantine", json={"reason": "x"}, headers=holder.auth)
    assert (again.status_code, error_of(again)) == (409, "already_quarantined")
    assert len(await holds(runtime)) == 1


async def test_the_console_quarantines_and_lifts(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await sign_in_operator(client, runtime)
    page = "/ops/releases/acme/sample/1.0"
    done = await submit(client, page, f"{page}/quarantine", {"reason": "a jailbreak report"})
    assert done.status_code == 200, done.text
    assert "Quarantined; the operators are told" in done.text
    assert "status-quarantined" in done.text
    public = (await client.get("/models/acme/sample/releases/1.0", headers=HTML)).text
    assert "quarantined" in public
    assert "a jailbreak report" not in public, "the internal reason stays inside"
    forged = await client.post(f"{page}/lift-quarantine", data={"reason": "x"}, headers=HTML)
    assert forged.status_code == 403
    lifted = await submit(client, page, f"{page}/lift-quarantine", {"reason": "reviewed"})
    assert "Quarantine lifted" in lifted.text
