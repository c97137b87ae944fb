"""Enforcement through the service, on every backend: warnings, suspensions, terminations,
their effect on downloads and applications, the ladder's suggestion, appeals and their
decisions, and the job that ends suspensions when they run out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from gateway.applications import service as applications
from gateway.applications import submitting
from gateway.db.models import (
    Account,
    ApiKey,
    Appeal,
    EnforcementAction,
    Evidence,
    Incident,
    IncidentAccount,
    Notification,
)
from gateway.db.uow import unit_of_work
from gateway.downloads.service import Client, Denied, deliver, issue_manifest_for_account
from gateway.enforcement import appeals, history, service
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.runtime import Runtime
from stages.access import Reason
from stages.enforcement import AppealMove, EnforcementStep
from stages.evidence import ENFORCEMENT_STEPS
from tests.accounts import create_account
from tests.grantees import MODEL, Grantee, grantee, open_release
from tests.units import within, writing

pytestmark = pytest.mark.anyio

WARN, SUSPEND, TERMINATE = EnforcementStep
BOB = "bob@example.org"
CLIENT = Client("192.0.2.9", "enforcement-test")
PUBLIC = {"intended_use": "research", "agree_acceptable_use": True}


async def account(rt: Runtime, email: str = BOB, *, operator: bool = False) -> str:
    return (await create_account(rt, email, operator=operator, actor="t")).id


async def act(
    rt: Runtime,
    step: EnforcementStep,
    email: str = BOB,
    *,
    reason: str = "broke the use guidance",
    days: int | None = None,
    incident: str | None = None,
) -> EnforcementAction:
    return await within(
        rt,
        lambda uow: service.enforce(
            uow, email=email, step=step, reason=reason, days=days, incident_id=incident, actor="op"
        ),
    )


async def load(rt: Runtime, table: type[Any], key: str) -> Any:
    async with rt.sessionmaker() as session:
        row = await session.get(table, key)
    assert row is not None
    return row


async def count(rt: Runtime, table: type[object], *where: Any) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where)) or 0


async def evidence_of(rt: Runtime, kind: str) -> list[Evidence]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(select(Evidence).where(Evidence.kind == kind))
        return list(rows.all())


async def inbox(rt: Runtime, account_id: str) -> list[Notification]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(
            select(Notification)
            .where(Notification.account_id == account_id)
            .order_by(Notification.id)
        )
        return list(rows.all())


async def add_incident(rt: Runtime, account_id: str, severity: str, status: str) -> str:
    """An incident linked to the account (the incidents service is not needed for this)."""
    now = rt.clock()
    incident_id = str(uuid.uuid4())
    async with writing(rt) as session:
        session.add(
            Incident(
                id=incident_id,
                tracking_code=f"INC-{incident_id[:8]}",
                category="leak",
                description="weights posted on a file host",
                links={},
                status=status,
                severity=severity,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        session.add(IncidentAccount(incident_id=incident_id, account_id=account_id))
    return incident_id


def at(rt: Runtime, moment: datetime) -> None:
    rt.clock = lambda: moment


# --- the moves --------------------------------------------------------------------------


async def test_a_warning_is_a_record_the_account_is_told_about(runtime: Runtime) -> None:
    bob = await account(runtime)
    action = await act(runtime, WARN, reason="shared a download link")
    assert action.action == "warn"
    assert action.ends_at is None
    assert action.appeal_until == action.created_at + timedelta(days=30)
    row = await load(runtime, Account, bob)
    assert row.status == "active"
    assert row.status_reason is None
    [recorded] = await evidence_of(runtime, "account.warned")
    assert recorded.account_id == bob
    assert recorded.actor == "op"
    assert recorded.data["reason"] == "shared a download link"
    assert recorded.data["from"] == recorded.data["to"] == "active"
    assert recorded.data["suggested"] == "warn"
    [note] = await inbox(runtime, bob)
    assert note.kind == "enforcement.warn"
    assert "shared a download link" in note.body
    assert f"until {action.appeal_until:%Y-%m-%d %H:%M} UTC" in note.body
    assert note.link == "http://testserver/account/standing"


async def test_a_suspension_holds_the_account_for_the_policy_length_or_the_days_given(
    runtime: Runtime,
) -> None:
    bob = await account(runtime)
    await account(runtime, "cy@example.org")
    default = await act(runtime, SUSPEND, reason="mass downloading")
    assert default.ends_at == default.created_at + timedelta(days=30)
    row = await load(runtime, Account, bob)
    assert (row.status, row.status_reason) == ("suspended", "mass downloading")
    short = await act(runtime, SUSPEND, "cy@example.org", days=7)
    assert short.ends_at == short.created_at + timedelta(days=7)
    [recorded, _] = await evidence_of(runtime, "account.suspended")
    assert default.ends_at is not None
    assert recorded.data["ends_at"] == default.ends_at.isoformat()
    assert (recorded.data["from"], recorded.data["to"]) == ("active", "suspended")
    [note] = await inbox(runtime, bob)
    assert note.subject == "Your account is suspended"
    assert "mass downloading" in note.body


async def test_terminate_is_final_and_illegal_moves_change_nothing(runtime: Runtime) -> None:
    bob = await account(runtime)
    await act(runtime, SUSPEND)
    with pytest.raises(Conflict, match="already suspended") as twice:
        await act(runtime, SUSPEND)
    assert twice.value.code == "illegal_account_move"
    await act(runtime, TERMINATE, reason="leaked the weights")
    row = await load(runtime, Account, bob)
    assert (row.status, row.status_reason) == ("terminated", "leaked the weights")
    for step in EnforcementStep:
        with pytest.raises(Conflict, match="termination is final"):
            await act(runtime, step)
    with pytest.raises(Conflict, match="cannot lift the suspension of a terminated account"):
        await within(runtime, lambda uow: service.lift(uow, BOB, "changed my mind", "op"))
    assert await count(runtime, EnforcementAction) == 2
    assert len(await evidence_of(runtime, "account.terminated")) == 1
    assert (await load(runtime, Account, bob)).status == "terminated"


async def test_lifting_an_account_that_is_not_suspended_is_refused(runtime: Runtime) -> None:
    await account(runtime)
    with pytest.raises(Conflict, match="cannot lift the suspension of an active account") as exc:
        await within(runtime, lambda uow: service.lift(uow, BOB, "no reason", "op"))
    assert exc.value.code == "illegal_account_move"
    await act(runtime, WARN)
    with pytest.raises(Conflict):
        await within(runtime, lambda uow: service.lift(uow, BOB, "no reason", "op"))
    assert await evidence_of(runtime, "account.suspension_lifted") == []


async def test_bad_input_is_refused_before_anything_is_written(runtime: Runtime) -> None:
    await account(runtime)
    with pytest.raises(InvalidInput, match="reason is required"):
        await act(runtime, WARN, reason="  ")
    with pytest.raises(InvalidInput, match="control characters"):
        await act(runtime, WARN, reason="bad\x00text")
    with pytest.raises(InvalidInput, match="suspension only"):
        await act(runtime, WARN, days=3)
    with pytest.raises(InvalidInput, match="between 1 and 3650"):
        await act(runtime, SUSPEND, days=0)
    with pytest.raises(NotFound) as nobody:
        await act(runtime, WARN, "nobody@example.org")
    assert nobody.value.code == "account_not_found"
    with pytest.raises(NotFound) as no_incident:
        await act(runtime, SUSPEND, incident="no-such-incident")
    assert no_incident.value.code == "incident_not_found"
    with pytest.raises(InvalidInput, match="invalid email"):
        await act(runtime, WARN, "not an email")
    assert await count(runtime, EnforcementAction) == 0
    steps = [ENFORCEMENT_STEPS[step].KIND.value for step in EnforcementStep]
    assert steps == ["account.warned", "account.suspended", "account.terminated"]
    assert await count(runtime, Evidence, Evidence.kind.in_(steps)) == 0


async def test_keys_are_kept_and_denied_by_the_status(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    await act(runtime, SUSPEND, alice.email)
    async with runtime.sessionmaker() as session:
        keys = (
            await session.scalars(select(ApiKey).where(ApiKey.account_id == alice.account_id))
        ).all()
    assert [key.revoked_at for key in keys] == [None]


# --- effect on access -------------------------------------------------------------------


async def manifest(rt: Runtime, who: Grantee) -> list[str]:
    account_row = await load(rt, Account, who.account_id)
    issued = await within(
        rt, lambda uow: issue_manifest_for_account(uow, account_row, MODEL, "1.0", client=CLIENT)
    )
    return [artifact.url for artifact in issued.artifacts]


async def fetch(rt: Runtime, url: str) -> None:
    await within(
        rt,
        lambda uow: deliver(
            uow, url.rsplit("/d/", 1)[1], range_header=None, method="GET", client=CLIENT
        ),
    )


async def test_a_suspension_stops_manifests_and_urls_already_handed_out(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    urls = await manifest(runtime, alice)
    await fetch(runtime, urls[0])  # works before the suspension
    await act(runtime, SUSPEND, alice.email, reason="under investigation")

    with pytest.raises(Denied) as refused_manifest:
        await manifest(runtime, alice)
    assert refused_manifest.value.reason is Reason.ACCOUNT_SUSPENDED
    for url in urls[:2]:
        with pytest.raises(Denied) as refused_url:
            await fetch(runtime, url)
        assert refused_url.value.reason is Reason.ACCOUNT_SUSPENDED
        assert refused_url.value.status == 403

    await within(runtime, lambda uow: service.lift(uow, alice.email, "cleared", "op"))
    await fetch(runtime, urls[1])  # the same URL works again once the suspension is lifted
    assert len(await manifest(runtime, alice)) == len(urls)


async def test_a_termination_stops_urls_already_handed_out(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    urls = await manifest(runtime, alice)
    await act(runtime, TERMINATE, alice.email)
    with pytest.raises(Denied) as refused:
        await fetch(runtime, urls[0])
    assert refused.value.reason is Reason.ACCOUNT_TERMINATED
    with pytest.raises(Denied):
        await manifest(runtime, alice)


async def apply_public(rt: Runtime, account_id: str) -> str:
    form = await within(rt, lambda uow: applications.application_form(uow, MODEL, "public"))
    application = await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=account_id,
            model=MODEL,
            tier="public",
            answers=PUBLIC,
            license_sha256=form.license_sha256,
            address="192.0.2.1",
        ),
    )
    return application.status


async def test_suspended_and_terminated_accounts_cannot_apply(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    bob = await account(runtime)
    await act(runtime, SUSPEND)
    with pytest.raises(Conflict) as suspended:
        await apply_public(runtime, bob)
    assert suspended.value.code == "account_suspended"
    await act(runtime, TERMINATE)
    # Long after any cooldown of the policy, a terminated account still may not apply.
    at(runtime, runtime.clock() + timedelta(days=800))
    with pytest.raises(Conflict) as terminated:
        await apply_public(runtime, bob)
    assert terminated.value.code == "account_terminated"
    cy = await account(runtime, "cy@example.org")
    await act(runtime, SUSPEND, "cy@example.org", days=2)
    at(runtime, runtime.clock() + timedelta(days=2))
    assert await within(runtime, service.lift_expired_suspensions) == 1
    assert await apply_public(runtime, cy) == "approved"


# --- the ladder -------------------------------------------------------------------------


async def test_the_ladder_suggests_the_next_step_from_standing_actions(runtime: Runtime) -> None:
    await account(runtime)
    first = await within(runtime, lambda uow: history.suggest(uow, BOB))
    assert (first.step, first.reason) == (WARN, "no standing action: the ladder starts with warn")
    await act(runtime, WARN)
    assert (await within(runtime, lambda uow: history.suggest(uow, BOB))).step is SUSPEND
    await act(runtime, SUSPEND, days=1)
    await within(runtime, lambda uow: service.lift(uow, BOB, "served", "op"))
    # A lifted suspension still stands on the ladder: the next step is graver.
    assert (await within(runtime, lambda uow: history.suggest(uow, BOB))).step is TERMINATE
    await act(runtime, TERMINATE)
    last = await within(runtime, lambda uow: history.suggest(uow, BOB))
    assert last.step is None
    assert "already terminated" in last.reason


async def test_a_confirmed_incident_skips_steps_by_its_severity(runtime: Runtime) -> None:
    bob = await account(runtime)
    cy = await account(runtime, "cy@example.org")
    await add_incident(runtime, bob, "high", "confirmed")
    await add_incident(runtime, bob, "critical", "dismissed")  # not confirmed: no weight
    high = await within(runtime, lambda uow: history.suggest(uow, BOB))
    assert high.step is SUSPEND
    assert "a high incident calls for at least suspend" in high.reason
    critical = await add_incident(runtime, cy, "critical", "confirmed")
    assert (
        await within(runtime, lambda uow: history.suggest(uow, "cy@example.org"))
    ).step is TERMINATE
    # Named when acting, an incident counts even before it is linked to the account.
    dan = await account(runtime, "dan@example.org")
    assert (
        await within(
            runtime, lambda uow: history.suggest(uow, "dan@example.org", incident_id=critical)
        )
    ).step is (TERMINATE)
    action = await act(runtime, TERMINATE, "dan@example.org", incident=critical)
    assert action.incident_id == critical
    [recorded] = await evidence_of(runtime, "account.terminated")
    assert recorded.account_id == dan
    assert recorded.data["incident"] == critical
    assert recorded.data["suggested"] == "terminate"


async def test_an_overturned_action_no_longer_counts(runtime: Runtime) -> None:
    bob = await account(runtime)
    warned = await act(runtime, WARN)
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, bob, warned.id, "it was not me", "192.0.2.1")
    )
    await within(
        runtime,
        lambda uow: appeals.decide_appeal(
            uow, filed.id, AppealMove.OVERTURN, "shared lab IP", "op"
        ),
    )
    assert (await within(runtime, lambda uow: history.suggest(uow, BOB))).step is WARN
    assert (await load(runtime, Account, bob)).status == "active"


# --- appeals ----------------------------------------------------------------------------


async def test_an_action_is_appealed_once_within_its_window(runtime: Runtime) -> None:
    bob = await account(runtime)
    cy = await account(runtime, "cy@example.org")
    warned = await act(runtime, WARN)
    with pytest.raises(InvalidInput, match="statement is required"):
        await within(runtime, lambda uow: appeals.appeal(uow, bob, warned.id, " ", None))
    with pytest.raises(NotFound) as not_theirs:
        await within(
            runtime, lambda uow: appeals.appeal(uow, cy, warned.id, "let me appeal bob's", None)
        )
    assert not_theirs.value.code == "action_not_found"
    # The window is inclusive: the last moment of it still takes an appeal.
    at(runtime, warned.appeal_until)
    filed = await within(
        runtime,
        lambda uow: appeals.appeal(uow, bob, warned.id, "  I was travelling  ", "192.0.2.1"),
    )
    assert (filed.status, filed.statement, filed.action_id) == (
        "pending",
        "I was travelling",
        warned.id,
    )
    with pytest.raises(Conflict, match="already appealed") as twice:
        await within(runtime, lambda uow: appeals.appeal(uow, bob, warned.id, "and again", None))
    assert twice.value.code == "already_appealed"
    assert await count(runtime, Appeal) == 1
    [recorded] = await evidence_of(runtime, "appeal.submitted")
    assert recorded.data["client_address"] == "192.0.2.1"
    assert recorded.data["action"] == warned.id
    assert (await inbox(runtime, bob))[-1].kind == "appeal.received"

    suspended = await act(runtime, SUSPEND)
    at(runtime, suspended.appeal_until + timedelta(seconds=1))
    with pytest.raises(Conflict, match="appeal window closed") as late:
        await within(runtime, lambda uow: appeals.appeal(uow, bob, suspended.id, "too late", None))
    assert late.value.code == "appeal_window_closed"
    assert await count(runtime, Appeal) == 1


async def test_the_window_promised_holds_when_the_policy_changes(runtime: Runtime) -> None:
    from dataclasses import replace

    bob = await account(runtime)
    warned = await act(runtime, WARN)
    runtime.policy = replace(
        runtime.policy, enforcement=replace(runtime.policy.enforcement, appeal_days=1)
    )
    at(runtime, warned.created_at + timedelta(days=20))
    assert (
        await within(
            runtime, lambda uow: appeals.appeal(uow, bob, warned.id, "still in time", None)
        )
    ).status == ("pending")


async def test_overturning_a_running_suspension_lifts_it(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    urls = await manifest(runtime, alice)
    suspended = await act(runtime, SUSPEND, alice.email)
    filed = await within(
        runtime,
        lambda uow: appeals.appeal(uow, alice.account_id, suspended.id, "wrong account", None),
    )
    with pytest.raises(InvalidInput, match="reason is required"):
        await within(
            runtime, lambda uow: appeals.decide_appeal(uow, filed.id, AppealMove.OVERTURN, "", "op")
        )
    decided_at = runtime.clock() + timedelta(minutes=1)
    at(runtime, decided_at)
    decided = await within(
        runtime,
        lambda uow: appeals.decide_appeal(
            uow, filed.id, AppealMove.OVERTURN, "the downloads were a mirror we run", "op2"
        ),
    )
    assert (decided.status, decided.decided_by) == ("overturned", "op2")
    assert decided.decision_reason == "the downloads were a mirror we run"
    row = await load(runtime, Account, alice.account_id)
    assert (row.status, row.status_reason) == ("active", None)
    action = await load(runtime, EnforcementAction, suspended.id)
    assert action.ended_at == decided_at
    [overturned] = await evidence_of(runtime, "appeal.overturned")
    assert overturned.data["account_move"] == "lift"
    [lifted] = await evidence_of(runtime, "account.suspension_lifted")
    assert (lifted.data["from"], lifted.data["to"], lifted.actor) == ("suspended", "active", "op2")
    await fetch(runtime, urls[0])  # access is back at once
    note = (await inbox(runtime, alice.account_id))[-1]
    assert note.subject == "Your appeal was successful"
    assert "active again" in note.body
    with pytest.raises(Conflict, match="decision is final") as again:
        await within(
            runtime,
            lambda uow: appeals.decide_appeal(uow, filed.id, AppealMove.UPHOLD, "hmm", "op"),
        )
    assert again.value.code == "illegal_appeal_move"
    # The job has nothing left to do for it when its time would have run out.
    assert suspended.ends_at is not None
    at(runtime, suspended.ends_at + timedelta(days=1))
    assert await within(runtime, service.lift_expired_suspensions) == 0


async def test_upholding_leaves_the_action_and_overturning_a_termination_restores(
    runtime: Runtime,
) -> None:
    bob = await account(runtime)
    terminated = await act(runtime, TERMINATE)
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, bob, terminated.id, "please", None)
    )
    upheld = await within(
        runtime,
        lambda uow: appeals.decide_appeal(uow, filed.id, AppealMove.UPHOLD, "clear leak", "op"),
    )
    assert upheld.status == "upheld"
    assert (await load(runtime, Account, bob)).status == "terminated"
    assert (await inbox(runtime, bob))[-1].subject == "Your appeal was not successful"

    cy = await account(runtime, "cy@example.org")
    ended = await act(runtime, TERMINATE, "cy@example.org")
    filed = await within(runtime, lambda uow: appeals.appeal(uow, cy, ended.id, "not me", None))
    await within(
        runtime,
        lambda uow: appeals.decide_appeal(
            uow, filed.id, AppealMove.OVERTURN, "mistaken identity", "op"
        ),
    )
    assert (await load(runtime, Account, cy)).status == "active"
    restored = await evidence_of(runtime, "account.restored")
    assert [e.data["from"] for e in restored] == ["terminated"]


async def test_overturning_a_suspension_that_already_ended_changes_no_status(
    runtime: Runtime,
) -> None:
    bob = await account(runtime)
    suspended = await act(runtime, SUSPEND, days=1)
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, bob, suspended.id, "unfair", None)
    )
    at(runtime, runtime.clock() + timedelta(days=1))
    assert await within(runtime, service.lift_expired_suspensions) == 1
    await act(runtime, WARN)  # a later warning must not be undone by the overturn
    await within(
        runtime,
        lambda uow: appeals.decide_appeal(
            uow, filed.id, AppealMove.OVERTURN, "unfair indeed", "op"
        ),
    )
    assert (await load(runtime, Account, bob)).status == "active"
    [overturned] = await evidence_of(runtime, "appeal.overturned")
    assert overturned.data["account_move"] is None
    assert len(await evidence_of(runtime, "account.suspension_lifted")) == 1  # only the job's


async def test_an_operator_cannot_decide_an_appeal_of_their_own_account(
    runtime: Runtime,
) -> None:
    ops = await account(runtime, "ops@example.org", operator=True)
    warned = await act(runtime, WARN, "ops@example.org")
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, ops, warned.id, "I am an operator", None)
    )
    with pytest.raises(Conflict, match="your own account") as own:
        await within(
            runtime,
            lambda uow: appeals.decide_appeal(
                uow, filed.id, AppealMove.OVERTURN, "mine", f"account:{ops}"
            ),
        )
    assert own.value.code == "own_appeal"
    with pytest.raises(NotFound):
        await within(
            runtime,
            lambda uow: appeals.decide_appeal(uow, "no-such-appeal", AppealMove.UPHOLD, "x", "op"),
        )


async def test_listing_actions_and_pending_appeals(runtime: Runtime) -> None:
    bob = await account(runtime)
    warned = await act(runtime, WARN)
    at(runtime, runtime.clock() + timedelta(minutes=1))
    suspended = await act(runtime, SUSPEND)
    await within(runtime, lambda uow: appeals.appeal(uow, bob, warned.id, "context", None))
    async with unit_of_work(runtime) as uow:
        records = await history.list_actions(uow, bob)
        pending = await history.list_appeals(uow)
        everything = await history.list_appeals(uow, None)
    assert [r.action.id for r in records] == [suspended.id, warned.id]
    assert [r.in_force for r in records] == [True, False]
    assert records[0].window.may_appeal
    assert not records[1].window.may_appeal  # appealed already
    assert records[1].appeal is not None
    assert [(p.account.email, p.action.id) for p in pending] == [(BOB, warned.id)]
    assert len(everything) == 1


# --- the job ----------------------------------------------------------------------------


async def test_expired_suspensions_are_lifted_once(runtime: Runtime) -> None:
    bob = await account(runtime)
    cy = await account(runtime, "cy@example.org")
    short = await act(runtime, SUSPEND, days=3)
    await act(runtime, SUSPEND, "cy@example.org", days=10)
    assert await within(runtime, service.lift_expired_suspensions) == 0
    assert short.ends_at is not None
    at(runtime, short.ends_at)
    # Two runs at once, then a third: the suspension is lifted exactly once.
    runs = await asyncio.gather(
        within(runtime, service.lift_expired_suspensions),
        within(runtime, service.lift_expired_suspensions),
    )
    assert sorted(runs) == [0, 1]
    assert await within(runtime, service.lift_expired_suspensions) == 0
    row = await load(runtime, Account, bob)
    assert (row.status, row.status_reason) == ("active", None)
    assert (await load(runtime, EnforcementAction, short.id)).ended_at == short.ends_at
    assert (await load(runtime, Account, cy)).status == "suspended"
    [lifted] = await evidence_of(runtime, "account.suspension_lifted")
    assert (lifted.actor, lifted.account_id) == ("system:scheduler", bob)
    assert (await inbox(runtime, bob))[-1].subject == "Your account's suspension has ended"


async def test_a_termination_supersedes_a_running_suspension(runtime: Runtime) -> None:
    bob = await account(runtime)
    suspended = await act(runtime, SUSPEND, days=2)
    await act(runtime, TERMINATE)
    assert (await load(runtime, EnforcementAction, suspended.id)).ended_at is not None
    at(runtime, runtime.clock() + timedelta(days=3))
    assert await within(runtime, service.lift_expired_suspensions) == 0
    assert (await load(runtime, Account, bob)).status == "terminated"
    # An overturned suspension appeal cannot undo the termination either.
    filed = await within(
        runtime,
        lambda uow: appeals.appeal(uow, bob, suspended.id, "the suspension was wrong", None),
    )
    await within(
        runtime,
        lambda uow: appeals.decide_appeal(uow, filed.id, AppealMove.OVERTURN, "it was", "op"),
    )
    assert (await load(runtime, Account, bob)).status == "terminated"


async def test_a_stale_suspension_row_is_tidied_without_touching_the_account(
    runtime: Runtime,
) -> None:
    bob = await account(runtime)
    suspended = await act(runtime, SUSPEND, days=1)
    # An account made active behind the service's back (e.g. by hand in the database).
    async with writing(runtime) as session:
        await session.execute(update(Account).where(Account.id == bob).values(status="active"))
    at(runtime, runtime.clock() + timedelta(days=1))
    assert await within(runtime, service.lift_expired_suspensions) == 0
    assert (await load(runtime, EnforcementAction, suspended.id)).ended_at is not None
    assert await evidence_of(runtime, "account.suspension_lifted") == []


async def test_an_operator_cannot_lift_or_enforce_on_their_own_account(runtime: Runtime) -> None:
    ops = await create_account(runtime, "self@lab.example", operator=True, actor="t")
    other = await create_account(runtime, "other@lab.example", operator=True, actor="t")
    await within(
        runtime,
        lambda uow: service.enforce(
            uow,
            email="self@lab.example",
            step=EnforcementStep.SUSPEND,
            reason="test",
            days=None,
            incident_id=None,
            actor=f"account:{other.id}",
        ),
    )
    with pytest.raises(Conflict, match="their own account"):
        await within(
            runtime, lambda uow: service.lift(uow, "self@lab.example", "mine", f"account:{ops.id}")
        )
    with pytest.raises(Conflict, match="their own account"):
        await within(
            runtime,
            lambda uow: service.enforce(
                uow,
                email="self@lab.example",
                step=EnforcementStep.WARN,
                reason="x",
                days=None,
                incident_id=None,
                actor=f"account:{ops.id}",
            ),
        )
