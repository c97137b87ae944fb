"""Applications end to end through the service and the JSON API: routes, refusals,
cooldowns, decisions that create grants, and the grant lifecycle jobs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from gateway.applications import deciding, service, submitting
from gateway.db.models import Account, Application, Closeout, Evidence, Grant, Notification
from gateway.errors import Conflict, NotFound
from gateway.grants.lifecycle import attest_closeout, expire_grants, send_expiry_warnings
from gateway.keys.service import create_key
from gateway.runtime import Runtime
from stages.applications import ApplicationMove
from tests.accounts import create_account
from tests.grantees import MODEL, open_release
from tests.units import within, writing

pytestmark = pytest.mark.anyio

RESEARCHER = {
    "affiliation": "Uni",
    "country": "FR",
    "research_purpose": "evaluation",
    "agree_no_redistribution": True,
}
PUBLIC = {"intended_use": "research", "agree_acceptable_use": True}


async def account(rt: Runtime, email: str, *, verified: bool = True) -> str:
    created = await create_account(rt, email, operator=False, actor="t")
    async with writing(rt) as session:
        await session.execute(
            update(Account)
            .where(Account.id == created.id)
            .values(email_verified_at=rt.clock() if verified else None)
        )
    return created.id


async def license_of(rt: Runtime, tier: str = "public") -> str:
    form = await within(rt, lambda uow: service.application_form(uow, MODEL, tier))
    return form.license_sha256


async def apply(rt: Runtime, account_id: str, tier: str, answers: dict[str, Any]) -> Application:
    sha256 = await license_of(rt, tier)
    return await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=account_id,
            model=MODEL,
            tier=tier,
            answers=answers,
            license_sha256=sha256,
            address="192.0.2.1",
        ),
    )


async def count(rt: Runtime, table: type[object], *where: Any) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where)) or 0


async def test_public_tier_is_approved_on_license_acceptance(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    who = await account(runtime, "pat@example.com")
    application = await apply(runtime, who, "public", PUBLIC)
    assert application.status == "approved"
    assert application.grant_id is not None
    async with runtime.sessionmaker() as session:
        grant = await session.get(Grant, application.grant_id)
        kinds = (await session.scalars(select(Evidence.kind).order_by(Evidence.id))).all()
    assert grant is not None
    assert grant.tier == "public"
    assert grant.account_id == who
    for kind in (
        "license.accepted",
        "application.submitted",
        "application.approved",
        "grant.issued",
    ):
        assert kind in kinds
    assert await count(runtime, Notification, Notification.account_id == who) == 1


async def test_researcher_route_depends_on_a_verified_email_at_an_allowed_domain(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    student = await account(runtime, "ada@cs.uni.edu")
    assert (await apply(runtime, student, "researcher", RESEARCHER)).status == "approved"
    unverified = await account(runtime, "bob@cs.uni.edu", verified=False)
    assert (await apply(runtime, unverified, "researcher", RESEARCHER)).status == "submitted"
    elsewhere = await account(runtime, "cy@company.example")
    pending = await apply(runtime, elsewhere, "researcher", RESEARCHER)
    assert pending.status == "submitted"
    assert pending.grant_id is None


async def test_refusals(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    who = await account(runtime, "cy@company.example")
    with pytest.raises(service.AnswersInvalid) as missing:
        await apply(runtime, who, "researcher", {"affiliation": "Uni"})
    assert {p.field for p in missing.value.problems} >= {"country", "research_purpose"}
    with pytest.raises(Conflict, match="license you accepted is not the current one"):
        await within(
            runtime,
            lambda uow: submitting.submit(
                uow,
                account_id=who,
                model=MODEL,
                tier="researcher",
                answers=RESEARCHER,
                license_sha256="0" * 64,
                address=None,
            ),
        )
    await apply(runtime, who, "researcher", RESEARCHER)
    with pytest.raises(Conflict, match="already have an open application"):
        await apply(runtime, who, "researcher", RESEARCHER)
    assert await count(runtime, Application) == 1


async def test_a_denial_has_a_reason_and_a_cooldown(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    who = await account(runtime, "cy@company.example")
    application = await apply(runtime, who, "researcher", RESEARCHER)
    with pytest.raises(Conflict, match="reason"):
        await within(
            runtime,
            lambda uow: deciding.decide(
                uow, application.id, ApplicationMove.DENY, operator="op", reason=" "
            ),
        )
    denied = await within(
        runtime,
        lambda uow: deciding.decide(
            uow, application.id, ApplicationMove.DENY, operator="op", reason="not a research use"
        ),
    )
    assert denied.status == "denied"
    shown = await within(
        runtime, lambda uow: service.get_application(uow, application.id, owner=who)
    )
    assert shown.decision_reason == "not a research use"
    assert [e.move for e in shown.events] == ["submit", "deny"]
    with pytest.raises(Conflict, match="you may apply again from"):
        await apply(runtime, who, "researcher", RESEARCHER)
    later = runtime.clock() + timedelta(days=31)
    runtime.clock = lambda: later
    again = await apply(runtime, who, "researcher", RESEARCHER)
    approved = await within(
        runtime,
        lambda uow: deciding.decide(
            uow, again.id, ApplicationMove.APPROVE, operator="op", reason=None
        ),
    )
    assert approved.grant_id is not None


async def test_another_accounts_application_is_not_found(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    owner = await account(runtime, "cy@company.example")
    other = await account(runtime, "eve@company.example")
    application = await apply(runtime, owner, "researcher", RESEARCHER)
    with pytest.raises(NotFound):
        await within(runtime, lambda uow: service.get_application(uow, application.id, owner=other))
    with pytest.raises(NotFound):
        await within(
            runtime,
            lambda uow: deciding.act_as_applicant(
                uow, other, application.id, ApplicationMove.WITHDRAW
            ),
        )
    withdrawn = await within(
        runtime,
        lambda uow: deciding.act_as_applicant(uow, owner, application.id, ApplicationMove.WITHDRAW),
    )
    assert withdrawn.status == "withdrawn"


async def test_changes_requested_then_resubmitted(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    who = await account(runtime, "cy@company.example")
    application = await apply(runtime, who, "researcher", RESEARCHER)
    await within(
        runtime,
        lambda uow: deciding.decide(
            uow,
            application.id,
            ApplicationMove.REQUEST_CHANGES,
            operator="op",
            reason="say which benchmarks",
        ),
    )
    changed = {**RESEARCHER, "research_purpose": "MMLU and HELM evaluation"}
    again = await within(
        runtime,
        lambda uow: deciding.act_as_applicant(
            uow, who, application.id, ApplicationMove.RESUBMIT, answers=changed
        ),
    )
    assert again.status == "submitted"
    assert again.answers["research_purpose"] == "MMLU and HELM evaluation"


async def test_the_queue_is_oldest_first_with_overdue_flags_and_no_cap(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    start = runtime.clock()
    for index in range(7):
        moment = start + timedelta(days=index)
        runtime.clock = lambda moment=moment: moment  # type: ignore[misc]
        who = await account(runtime, f"user{index}@company.example")
        await apply(runtime, who, "researcher", RESEARCHER)
    now = start + timedelta(days=20)
    runtime.clock = lambda: now
    page, total = await within(
        runtime,
        lambda uow: service.list_applications(uow, service.QueueFilter(), limit=3, offset=0),
    )
    rest, _ = await within(
        runtime,
        lambda uow: service.list_applications(uow, service.QueueFilter(), limit=3, offset=6),
    )
    overdue, overdue_total = await within(
        runtime,
        lambda uow: service.list_applications(
            uow, service.QueueFilter(overdue_only=True), limit=50
        ),
    )
    assert total == 7
    assert [i.application.account.email for i in page] == [
        "user0@company.example",
        "user1@company.example",
        "user2@company.example",
    ]
    assert [i.application.account.email for i in rest] == ["user6@company.example"]
    # researcher review_days is 14: the six submitted more than 14 days ago are overdue;
    # the last one, submitted exactly 14 days ago, is due now but not yet late.
    assert overdue_total == 6
    assert all(i.overdue for i in overdue)
    assert [i.overdue for i in page] == [True, True, True]
    assert [i.overdue for i in rest] == [False]


async def test_grant_lifecycle_warns_expires_and_asks_for_a_closeout(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    who = await account(runtime, "pat@example.com")
    application = await apply(runtime, who, "public", PUBLIC)
    async with runtime.sessionmaker() as session:
        grant = await session.get(Grant, application.grant_id)
    assert grant is not None
    expires = grant.expires_at
    runtime.clock = lambda: expires - timedelta(days=29)
    assert (await within(runtime, send_expiry_warnings)).warned == 1
    assert (await within(runtime, send_expiry_warnings)).warned == 0
    runtime.clock = lambda: expires - timedelta(days=6)
    assert (await within(runtime, send_expiry_warnings)).warned == 1
    runtime.clock = lambda: expires + timedelta(minutes=1)
    report = await within(runtime, expire_grants)
    assert (report.expired, report.closeouts) == (1, 1)
    assert (await within(runtime, expire_grants)).expired == 0
    async with runtime.sessionmaker() as session:
        refreshed = await session.get(Grant, grant.id)
        closeout = await session.scalar(select(Closeout).where(Closeout.grant_id == grant.id))
    assert refreshed is not None
    assert refreshed.status == "expired"
    assert closeout is not None
    other = await account(runtime, "eve@example.com")
    with pytest.raises(NotFound):
        await within(runtime, lambda uow: attest_closeout(uow, other, closeout.id, "deleted", None))
    done = await within(
        runtime,
        lambda uow: attest_closeout(uow, who, closeout.id, "deleted from all disks", "192.0.2.1"),
    )
    assert done.attested_at is not None
    with pytest.raises(Conflict):
        await within(runtime, lambda uow: attest_closeout(uow, who, closeout.id, "again", None))
    subjects = await count(runtime, Notification, Notification.account_id == who)
    assert subjects == 4  # approved, 30-day warning, 7-day warning, ended


async def test_apply_from_code_with_an_api_key(
    settings: Any, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.app import create_app

    await open_release(runtime, tmp_path, to="public")
    who = await account(runtime, "pat@example.com")
    key = (
        await within(
            runtime,
            lambda uow: create_key(
                uow, account_id=who, scopes=["apply"], days=None, name="", actor="t"
            ),
        )
    ).secret
    auth = {"authorization": f"Bearer {key}"}
    async with AsyncTestClient(app=create_app(settings=settings)) as client:
        form = (
            await client.get("/api/v1/models/acme/sample/application-form/public", headers=auth)
        ).json()
        assert [f["name"] for f in form["fields"]] == ["intended_use", "agree_acceptable_use"]
        bad = await client.post(
            "/api/v1/applications",
            headers=auth,
            json={
                "model": "acme/sample",
                "tier": "public",
                "license_sha256": form["license_sha256"],
                "answers": {"intended_use": "world domination"},
            },
        )
        assert bad.status_code == 400
        assert {p["field"] for p in bad.json()["problems"]} == {
            "intended_use",
            "agree_acceptable_use",
        }
        made = await client.post(
            "/api/v1/applications",
            headers=auth,
            json={
                "model": "acme/sample",
                "tier": "public",
                "license_sha256": form["license_sha256"],
                "answers": PUBLIC,
            },
        )
        assert made.status_code == 201
        body = made.json()
        assert body["status"] == "approved"
        assert [e["move"] for e in body["events"]] == ["submit", "approve"]
        assert body["events"][1]["by"] == "system"
        listed = (await client.get("/api/v1/applications", headers=auth)).json()
        assert [a["id"] for a in listed["items"]] == [body["id"]]
        stranger = await client.get("/api/v1/applications/" + "0" * 36, headers=auth)
        assert stranger.status_code == 404


async def test_applying_again_does_not_undo_a_revocation(runtime: Runtime, tmp_path: Path) -> None:
    from gateway.grants.service import change_grant
    from stages.grants import GrantMove

    await open_release(runtime, tmp_path, to="public")
    who = await account(runtime, "pat@example.com")
    application = await apply(runtime, who, "public", PUBLIC)
    assert application.grant_id is not None
    await within(
        runtime,
        lambda uow: change_grant(
            uow, application.grant_id, GrantMove.REVOKE, reason="abuse", actor="op"
        ),
    )
    with pytest.raises(Conflict, match="was revoked; contact the operators"):
        await apply(runtime, who, "public", PUBLIC)
    assert await count(runtime, Grant) == 1
