"""Incidents through the service: reports and their refusals, the public status, every
operator move (legal and not), the evidence, and the policy's triggers carried out:
recalls, tier recalls and suspensions, each once however often they are re-checked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.models import (
    Account,
    EnforcementAction,
    Evidence,
    Incident,
    IncidentAccount,
    IncidentEvent,
    Notification,
    Recall,
    Release,
)
from gateway.db.uow import unit_of_work
from gateway.downloads.service import Client, Denied, deliver, issue_manifest_for_account
from gateway.errors import Conflict, GatewayError, InvalidInput, NotFound
from gateway.incidents import reporting, service
from gateway.incidents.triggers import TRIGGER_ACTOR, apply_triggers, recheck_triggers
from gateway.ratelimits import DatabaseRateLimitStore, RateLimited, RateLimiter, RateLimits
from gateway.runtime import Runtime
from policies.schema import Reaction, Trigger, TriggerEvent
from stages.access import Reason
from stages.incidents import IncidentMove, IncidentStatus, Severity, legal_incident_moves
from stages.names import ModelRef
from tests.accounts import create_account
from tests.grantees import MODEL, grantee, open_release
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio

CODE = re.compile(r"INC-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
DESCRIPTION = "The full weights of acme/sample 1.0 are posted on a public file host."
OPERATOR = "account:ops"
CLIENT = Client("192.0.2.10", "incident-test")


async def report(
    rt: Runtime,
    *,
    model: ModelRef | None = MODEL,
    version: str | None = "1.0",
    **changes: Any,
) -> Incident:
    fields: dict[str, Any] = {
        "category": "leak",
        "description": DESCRIPTION,
        "links": ["https://files.example/acme-sample.tar"],
        "contact": None,
        "reporter_account_id": None,
        "address": "192.0.2.1",
        **changes,
    }
    return await within(
        rt, lambda uow: reporting.report(uow, model=model, version=version, **fields)
    )


async def count(rt: Runtime, table: type[object], *where: Any) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where)) or 0


async def evidence_kinds(rt: Runtime) -> list[str]:
    async with rt.sessionmaker() as session:
        return list((await session.scalars(select(Evidence.kind).order_by(Evidence.id))).all())


async def incident_row(rt: Runtime, incident_id: str) -> Incident:
    async with rt.sessionmaker() as session:
        incident = await session.get(Incident, incident_id)
    assert incident is not None
    return incident


async def release_row(rt: Runtime) -> Release:
    async with rt.sessionmaker() as session:
        release = await session.scalar(select(Release).where(Release.version == "1.0"))
    assert release is not None
    return release


async def url_for(rt: Runtime, account_id: str, path: str = "README.md") -> str:
    """A /d/ token handed out now to the account for one artifact."""
    async with rt.sessionmaker() as session:
        account = await session.get(Account, account_id)
    assert account is not None
    manifest = await within(
        rt,
        lambda uow: issue_manifest_for_account(
            uow, account, MODEL, "1.0", paths=[path], client=CLIENT
        ),
    )
    return manifest.artifacts[0].url.rsplit("/d/", 1)[1]


async def fetch(rt: Runtime, token: str) -> str:
    try:
        await within(
            rt, lambda uow: deliver(uow, token, range_header=None, method="GET", client=CLIENT)
        )
    except Denied as exc:
        return exc.reason.value
    return "allowed"


def with_triggers(rt: Runtime, *triggers: Trigger) -> None:
    rt.policy = dataclasses.replace(rt.policy, triggers=triggers)


# --- reporting ---------------------------------------------------------------------------


async def test_a_report_gets_a_tracking_code_a_timeline_evidence_and_tells_operators(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    ops = await create_account(runtime, "ops@lab.example", operator=True, actor="t")
    incident = await report(runtime, contact="  Reporter@Example.ORG ")
    assert CODE.fullmatch(incident.tracking_code)
    assert incident.status == "reported"
    assert incident.severity is None
    assert incident.release_id == (await release_row(runtime)).id
    assert incident.links == {"urls": ["https://files.example/acme-sample.tar"]}
    assert incident.contact == "Reporter@example.org"
    assert incident.reporter_address == "192.0.2.1"
    async with runtime.sessionmaker() as session:
        events = (await session.scalars(select(IncidentEvent))).all()
        reported = await session.scalar(
            select(Evidence).where(Evidence.kind == "incident.reported")
        )
    assert [(e.move, e.from_status, e.to_status, e.actor) for e in events] == [
        ("report", None, "reported", "public")
    ]
    assert reported is not None
    assert reported.data["incident"] == incident.id
    assert reported.release_id == incident.release_id
    assert await count(runtime, Notification, Notification.account_id == ops.id) == 1


async def test_a_report_may_name_a_model_without_a_version_or_nothing_at_all(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    about_model = await report(runtime, version=None)
    about_nothing = await report(runtime, model=None, version=None, links=[])
    assert about_model.model_id is not None
    assert about_model.release_id is None
    assert (about_nothing.model_id, about_nothing.release_id) == (None, None)
    assert about_model.tracking_code != about_nothing.tracking_code


async def test_refused_reports_write_nothing(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    cases: list[tuple[dict[str, Any], type[GatewayError], str]] = [
        ({"category": "gossip"}, InvalidInput, "unknown_category"),
        ({"description": "too short to act on"}, InvalidInput, "description_too_short"),
        ({"description": "x" * 10_001}, InvalidInput, "text_too_long"),
        ({"description": "   "}, InvalidInput, "text_required"),
        ({"description": DESCRIPTION + "\x00"}, InvalidInput, "text_invalid"),
        ({"links": [f"https://e.example/{n}" for n in range(11)]}, InvalidInput, "too_many_links"),
        ({"links": ["ftp://files.example/x"]}, InvalidInput, "invalid_link"),
        ({"links": ["javascript:alert(1)"]}, InvalidInput, "invalid_link"),
        ({"links": ["https://"]}, InvalidInput, "invalid_link"),
        ({"links": ["https://e.example/a b"]}, InvalidInput, "invalid_link"),
        ({"contact": "call me maybe"}, InvalidInput, "invalid_contact"),
        ({"model": None, "version": "1.0"}, InvalidInput, "version_without_model"),
        ({"version": "1..0"}, InvalidInput, "invalid_name"),
        ({"model": ModelRef("acme", "nothing")}, NotFound, "model_not_found"),
        ({"version": "9.9"}, NotFound, "release_not_found"),
        ({"reporter_account_id": "no-such-account"}, NotFound, "account_not_found"),
    ]
    for changes, error, code in cases:
        with pytest.raises(error) as refused:
            await report(runtime, **changes)
        assert refused.value.code == code, changes
    assert await count(runtime, Incident) == 0
    assert await count(runtime, IncidentEvent) == 0
    assert "incident.reported" not in await evidence_kinds(runtime)


async def test_reports_are_rate_limited_per_address(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    rules = RateLimits()
    allowed = rules.incident_reports_per_address.limit
    # A minute into the hour the window (an hour) began: a refusal waits out the rest.
    at = runtime.clock().replace(minute=1, second=0, microsecond=0)
    runtime.clock = lambda: at
    limiter = RateLimiter(DatabaseRateLimitStore(runtime.engine), rules, clock=runtime.clock)
    for _ in range(allowed):
        await report(runtime, limiter=limiter)
    with pytest.raises(RateLimited) as limited:
        await report(runtime, limiter=limiter)
    assert limited.value.status == 429
    assert "too many reports from this address" in limited.value.message
    assert limited.value.retry_after == rules.incident_reports_per_address.seconds - 60
    # A refused report is not counted, and another address has its own allowance.
    assert await count(runtime, Incident) == allowed
    await report(runtime, limiter=limiter, address="198.51.100.7")
    assert await count(runtime, Incident) == allowed + 1


def test_tracking_codes_are_read_the_way_people_type_them() -> None:
    code = reporting.new_tracking_code()
    assert CODE.fullmatch(code)
    assert reporting.normalise_tracking_code(code.lower()) == code
    assert reporting.normalise_tracking_code(f"  {code.replace('-', '')} ") == code
    assert reporting.normalise_tracking_code("inc-7k3q-9xwd") == "INC-7K3Q-9XWD"
    assert reporting.normalise_tracking_code("INC-7K3Q-9XWO") == "INC-7K3Q-9XW0"  # O for 0
    assert reporting.normalise_tracking_code("INC-7K3Q-9XW") is None
    assert reporting.normalise_tracking_code("INC-7K3Q-9XWU") is None  # no U in the alphabet
    assert reporting.normalise_tracking_code("") is None


# --- what the reporter sees --------------------------------------------------------------


async def test_the_public_status_shows_the_status_and_resolution_but_nothing_internal(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await create_account(runtime, "ops@lab.example", operator=True, actor="t")
    suspect = await create_account(runtime, "leaker@corp.example", operator=False, actor="t")
    incident = await report(runtime)
    code = incident.tracking_code
    await within(
        runtime,
        lambda uow: service.triage(
            uow,
            code,
            severity="low",
            assignee="ops@lab.example",
            note="INTERNAL triage note",
            actor=OPERATOR,
        ),
    )
    await within(
        runtime, lambda uow: service.link_account(uow, incident.id, suspect.email, actor=OPERATOR)
    )
    await within(
        runtime,
        lambda uow: service.add_note(uow, incident.id, note="INTERNAL second note", actor=OPERATOR),
    )
    await within(
        runtime,
        lambda uow: service.confirm(
            uow, incident.id, severity=None, note="INTERNAL", actor=OPERATOR
        ),
    )

    public = await within(
        runtime, lambda uow: reporting.get_by_code(uow, code.lower().replace("-", ""))
    )
    assert public.tracking_code == code
    assert public.status == "confirmed"
    assert public.subject == "acme/sample:1.0"
    assert public.category == "leak"
    assert public.resolution is None
    shown = repr(dataclasses.asdict(public))
    for secret in ("INTERNAL", "leaker@corp.example", "ops@lab.example", "low", "192.0.2.1"):
        assert secret not in shown
    assert {f.name for f in dataclasses.fields(public)} == {
        "tracking_code",
        "status",
        "meaning",
        "category",
        "subject",
        "reported_at",
        "status_changed_at",
        "resolution",
    }

    await within(
        runtime,
        lambda uow: service.resolve(
            uow, code, note="The host took the files down.", actor=OPERATOR
        ),
    )
    dismissed = await report(runtime)
    await within(
        runtime,
        lambda uow: service.dismiss(
            uow, dismissed.id, reason="The files were not ours.", actor=OPERATOR
        ),
    )
    async with unit_of_work(runtime) as uow:
        resolved = await reporting.get_by_code(uow, code)
        closed = await reporting.get_by_code(uow, dismissed.tracking_code)
        with pytest.raises(NotFound):
            await reporting.get_by_code(uow, "INC-0000-0000")
        with pytest.raises(NotFound):
            await reporting.get_by_code(uow, incident.id)  # ids are not codes
    assert (resolved.status, resolved.resolution) == ("resolved", "The host took the files down.")
    assert (closed.status, closed.resolution) == ("dismissed", "The files were not ours.")
    assert "INTERNAL" not in repr(dataclasses.asdict(resolved))


# --- operators' moves --------------------------------------------------------------------


async def _in_status(rt: Runtime, status: IncidentStatus) -> Incident:
    """A new incident about no release (so no trigger fires), brought to `status`."""
    incident = await report(rt, model=None, version=None)
    if status is IncidentStatus.TRIAGED:
        await within(
            rt,
            lambda uow: service.triage(
                uow, incident.id, severity="low", assignee=None, note=None, actor="t"
            ),
        )
    if status in (IncidentStatus.CONFIRMED, IncidentStatus.RESOLVED):
        await within(
            rt, lambda uow: service.confirm(uow, incident.id, severity="low", note=None, actor="t")
        )
    if status is IncidentStatus.RESOLVED:
        await within(rt, lambda uow: service.resolve(uow, incident.id, note="done", actor="t"))
    if status is IncidentStatus.DISMISSED:
        await within(
            rt, lambda uow: service.dismiss(uow, incident.id, reason="not ours", actor="t")
        )
    return await incident_row(rt, incident.id)


async def _move(rt: Runtime, incident_id: str, move: IncidentMove) -> None:
    if move is IncidentMove.TRIAGE:
        await within(
            rt,
            lambda uow: service.triage(
                uow, incident_id, severity="medium", assignee=None, note="n", actor="t"
            ),
        )
    elif move is IncidentMove.CONFIRM:
        await within(
            rt,
            lambda uow: service.confirm(uow, incident_id, severity="medium", note="n", actor="t"),
        )
    elif move is IncidentMove.DISMISS:
        await within(rt, lambda uow: service.dismiss(uow, incident_id, reason="why", actor="t"))
    else:
        await within(rt, lambda uow: service.resolve(uow, incident_id, note="how", actor="t"))


_LEADS_TO = {
    IncidentMove.TRIAGE: "triaged",
    IncidentMove.CONFIRM: "confirmed",
    IncidentMove.DISMISS: "dismissed",
    IncidentMove.RESOLVE: "resolved",
}


async def test_every_move_from_every_status_is_made_or_refused_with_nothing_written(
    runtime: Runtime,
) -> None:
    for status in IncidentStatus:
        for move in IncidentMove:
            incident = await _in_status(runtime, status)
            events = await count(runtime, IncidentEvent, IncidentEvent.incident_id == incident.id)
            proofs = await count(runtime, Evidence)
            if move in legal_incident_moves(status):
                await _move(runtime, incident.id, move)
                after = await incident_row(runtime, incident.id)
                assert after.status == _LEADS_TO[move], (status, move)
                assert await count(runtime, Evidence) > proofs
                continue
            with pytest.raises(Conflict) as refused:
                await _move(runtime, incident.id, move)
            assert refused.value.code == "illegal_incident_move", (status, move)
            assert incident.tracking_code in refused.value.message
            after = await incident_row(runtime, incident.id)
            assert after.status == status.value
            assert after.severity == incident.severity
            assert (
                await count(runtime, IncidentEvent, IncidentEvent.incident_id == incident.id)
                == events
            )
            assert await count(runtime, Evidence) == proofs


async def test_each_step_is_a_timeline_line_and_evidence(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    ops = await create_account(runtime, "ops@lab.example", operator=True, actor="t")
    suspect = await create_account(runtime, "suspect@corp.example", operator=False, actor="t")
    incident = await report(runtime)
    await within(
        runtime,
        lambda uow: service.triage(
            uow,
            incident.tracking_code,
            severity="medium",
            assignee="OPS@LAB.EXAMPLE",
            note="looks real",
            actor=OPERATOR,
        ),
    )
    await within(
        runtime,
        lambda uow: service.link_account(uow, incident.id, "suspect@corp.example", actor=OPERATOR),
    )
    await within(
        runtime,
        lambda uow: service.add_note(uow, incident.id, note="asked the host", actor=OPERATOR),
    )
    confirmed = await within(
        runtime,
        lambda uow: service.confirm(
            uow, incident.id, severity="low", note="it is ours", actor=OPERATOR
        ),
    )
    assert confirmed.triggers == []  # low fires no trigger of the default policy
    await within(
        runtime, lambda uow: service.resolve(uow, incident.id, note="taken down", actor=OPERATOR)
    )

    async with unit_of_work(runtime) as uow:
        session = uow.session
        detail = await service.get_incident(uow, incident.tracking_code)
        proofs = (
            await session.scalars(
                select(Evidence).where(Evidence.kind.like("incident.%")).order_by(Evidence.id)
            )
        ).all()
    timeline = [(e.move, e.from_status, e.to_status, e.note) for e in detail.events]
    assert timeline == [
        ("report", None, "reported", None),
        ("triage", "reported", "triaged", "looks real"),
        ("severity", "triaged", "triaged", "medium"),
        ("assign", "triaged", "triaged", "ops@lab.example"),
        ("link_account", "triaged", "triaged", "suspect@corp.example"),
        ("note", "triaged", "triaged", "asked the host"),
        ("confirm", "triaged", "confirmed", "it is ours"),
        ("severity", "confirmed", "confirmed", "low (was medium)"),
        ("resolve", "confirmed", "resolved", "taken down"),
    ]
    assert detail.incident.assignee == ops.email
    assert [a.id for a in detail.linked] == [suspect.id]
    assert detail.moves == ()
    assert [p.kind for p in proofs] == [
        "incident.reported",
        "incident.triaged",
        "incident.account_linked",
        "incident.note_added",
        "incident.confirmed",
        "incident.resolved",
    ]
    assert all(p.data["incident"] == incident.id for p in proofs)
    assert all(p.release_id == incident.release_id for p in proofs)
    # Internal notes stay out of the evidence; the public resolution goes in.
    assert "asked the host" not in repr([p.data for p in proofs])
    assert proofs[-1].data["resolution"] == "taken down"
    assert proofs[2].account_id == suspect.id


async def test_a_refusal_caught_in_its_unit_leaves_nothing_for_the_unit_to_commit(
    runtime: Runtime, tmp_path: Path
) -> None:
    # The console shows a refused step in the same unit of work, which then commits: every
    # check of a step comes before its first change, so nothing of the step is written.
    await publish(runtime, tmp_path)
    await create_account(runtime, "user@corp.example", operator=False, actor="t")
    incident = await report(runtime)
    triaged = await report(runtime)
    await within(
        runtime,
        lambda uow: service.triage(
            uow, triaged.id, severity="low", assignee=None, note=None, actor="t"
        ),
    )
    events = await count(runtime, IncidentEvent)
    async with unit_of_work(runtime) as uow:
        with pytest.raises(InvalidInput) as not_operator:
            await service.triage(
                uow,
                incident.id,
                severity="high",
                assignee="user@corp.example",
                note=None,
                actor="t",
            )
        assert not_operator.value.code == "not_an_operator"
        with pytest.raises(InvalidInput) as no_severity:
            await service.confirm(uow, incident.id, severity=None, note=None, actor="t")
        assert no_severity.value.code == "severity_required"
        detail = await service.get_incident(uow, incident.id)
        assert detail.incident.status == "reported"
    assert (await incident_row(runtime, incident.id)).status == "reported"
    assert (await incident_row(runtime, incident.id)).severity is None
    assert (await incident_row(runtime, triaged.id)).status == "triaged"
    assert await count(runtime, IncidentEvent) == events


async def test_refusals_of_operator_steps(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    await create_account(runtime, "user@corp.example", operator=False, actor="t")
    incident = await report(runtime)
    ref = incident.id

    async def refused(code: str, step: Any) -> None:
        with pytest.raises(GatewayError) as caught:
            await step
        assert caught.value.code == code

    await refused(
        "unknown_severity",
        within(
            runtime,
            lambda uow: service.triage(
                uow, ref, severity="dire", assignee=None, note=None, actor="t"
            ),
        ),
    )
    await refused(
        "not_an_operator",
        within(
            runtime,
            lambda uow: service.triage(
                uow, ref, severity="low", assignee="user@corp.example", note=None, actor="t"
            ),
        ),
    )
    await refused(
        "severity_required",
        within(runtime, lambda uow: service.confirm(uow, ref, severity=None, note=None, actor="t")),
    )
    await refused(
        "reason_required",
        within(runtime, lambda uow: service.dismiss(uow, ref, reason="  ", actor="t")),
    )
    await refused(
        "text_required",
        within(runtime, lambda uow: service.add_note(uow, ref, note=" ", actor="t")),
    )
    await refused(
        "account_not_found",
        within(
            runtime, lambda uow: service.link_account(uow, ref, "nobody@corp.example", actor="t")
        ),
    )
    await refused(
        "invalid_email",
        within(runtime, lambda uow: service.link_account(uow, ref, "not an email", actor="t")),
    )
    await refused(
        "incident_not_found",
        within(runtime, lambda uow: service.dismiss(uow, "INC-0000-0000", reason="x", actor="t")),
    )
    assert (await incident_row(runtime, ref)).status == "reported"
    assert await count(runtime, IncidentEvent, IncidentEvent.incident_id == ref) == 1

    await within(
        runtime, lambda uow: service.link_account(uow, ref, "user@corp.example", actor="t")
    )
    await refused(
        "linked",
        within(runtime, lambda uow: service.link_account(uow, ref, "user@corp.example", actor="t")),
    )
    await within(
        runtime, lambda uow: service.confirm(uow, ref, severity="low", note=None, actor="t")
    )
    await refused(
        "note_required", within(runtime, lambda uow: service.resolve(uow, ref, note=" ", actor="t"))
    )
    await within(runtime, lambda uow: service.resolve(uow, ref, note="done", actor="t"))
    await refused(
        "incident_closed",
        within(runtime, lambda uow: service.link_account(uow, ref, "user@corp.example", actor="t")),
    )
    # Notes may still be added to a closed incident, e.g. after a post-mortem.
    await within(
        runtime, lambda uow: service.add_note(uow, ref, note="post-mortem filed", actor="t")
    )


async def test_listing_filters_and_pages(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, model="acme/other")
    first = await report(runtime)
    second = await report(runtime, model=ModelRef("acme", "other"))
    third = await report(runtime, version=None)
    await within(
        runtime,
        lambda uow: service.triage(
            uow, second.id, severity="high", assignee=None, note=None, actor="t"
        ),
    )
    await within(runtime, lambda uow: service.dismiss(uow, third.id, reason="spam", actor="t"))

    async def ids(**filters: str | None) -> tuple[list[str], int]:
        where = service.incident_filter(
            status=filters.get("status"),
            severity=filters.get("severity"),
            release=filters.get("release"),
        )
        limit = int(filters.get("limit") or 50)
        offset = int(filters.get("offset") or 0)
        rows, total = await within(
            runtime, lambda uow: service.list_incidents(uow, where, limit=limit, offset=offset)
        )
        return [row.incident.id for row in rows], total

    assert await ids() == ([second.id, first.id], 2)  # open ones, newest first
    assert await ids(status="all") == ([third.id, second.id, first.id], 3)
    assert await ids(status="dismissed") == ([third.id], 1)
    assert await ids(severity="high") == ([second.id], 1)
    assert await ids(status="all", release="acme/sample") == ([third.id, first.id], 2)
    assert await ids(status="all", release="acme/sample:1.0") == ([first.id], 1)
    assert await ids(status="all", limit="1", offset="1") == ([second.id], 3)
    for bad in ({"status": "pending"}, {"severity": "dire"}, {"release": "not a model"}):
        with pytest.raises(InvalidInput):
            service.incident_filter(
                status=bad.get("status"), severity=bad.get("severity"), release=bad.get("release")
            )


# --- triggers ----------------------------------------------------------------------------


async def test_a_confirmed_critical_incident_recalls_the_release_and_stops_urls_handed_out(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    alice = await grantee(runtime)
    token = await url_for(runtime, alice.account_id)
    incident = await report(runtime)
    await within(
        runtime,
        lambda uow: service.triage(
            uow, incident.id, severity="high", assignee=None, note=None, actor="t"
        ),
    )

    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="critical", note=None, actor="t"),
    )

    assert confirmed.trigger_error is None
    assert len(confirmed.triggers) == 1
    assert confirmed.triggers[0].startswith(
        "triggers[0]: an incident confirmed at critical severity or worse recalls the release: "
        "recalled acme/sample:1.0"
    )
    assert (await release_row(runtime)).status == "recalled"
    async with runtime.sessionmaker() as session:
        recall = await session.scalar(select(Recall))
        fired = await session.scalar(select(Evidence).where(Evidence.kind == "trigger.fired"))
        events = (
            await session.scalars(select(IncidentEvent).where(IncidentEvent.move == "trigger"))
        ).all()
    assert recall is not None
    assert recall.tier is None
    assert recall.recalled_by == TRIGGER_ACTOR
    assert recall.rule is not None
    assert recall.rule.startswith("triggers[0]:")
    assert incident.tracking_code in recall.reason
    assert fired is not None
    assert fired.data["incident"] == incident.id
    assert fired.data["action"] == "recall"
    assert fired.data["rule"] == recall.rule
    assert [e.actor for e in events] == [TRIGGER_ACTOR]
    assert await fetch(runtime, token) == Reason.RELEASE_RECALLED.value
    # The grantee was told.
    assert await count(runtime, Notification, Notification.account_id == alice.account_id) >= 1


async def test_a_high_incident_on_a_public_release_recalls_only_the_public_tier(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    researcher = await grantee(runtime, "res@uni.example", tier="researcher")
    member = await grantee(runtime, "pub@home.example", tier="public")
    researcher_url = await url_for(runtime, researcher.account_id)
    public_url = await url_for(runtime, member.account_id)
    incident = await report(runtime, category="safety")

    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="high", note=None, actor="t"),
    )

    assert len(confirmed.triggers) == 1
    assert "withdraws the release from the public tier" in confirmed.triggers[0]
    assert "recalled acme/sample:1.0 for the public tier" in confirmed.triggers[0]
    assert (await release_row(runtime)).status == "active"
    async with runtime.sessionmaker() as session:
        tiers = (await session.scalars(select(Recall.tier))).all()
    assert tiers == ["public"]
    assert await fetch(runtime, researcher_url) == "allowed"
    assert await fetch(runtime, public_url) == Reason.RELEASE_RECALLED.value


async def test_below_the_trigger_severity_or_without_a_release_nothing_fires(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    medium = await report(runtime)
    critical_about_model = await report(runtime, version=None)
    assert (
        await within(
            runtime,
            lambda uow: service.confirm(uow, medium.id, severity="medium", note=None, actor="t"),
        )
    ).triggers == []
    assert (
        await within(
            runtime,
            lambda uow: service.confirm(
                uow, critical_about_model.id, severity="critical", note=None, actor="t"
            ),
        )
    ).triggers == []
    assert (await release_row(runtime)).status == "active"
    assert await count(runtime, Recall) == 0
    assert "trigger.fired" not in await evidence_kinds(runtime)


async def test_recheck_fires_nothing_twice(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path, to="public")
    critical = await report(runtime)
    high = await report(runtime)
    await within(
        runtime, lambda uow: service.confirm(uow, high.id, severity="high", note=None, actor="t")
    )
    await within(
        runtime,
        lambda uow: service.confirm(uow, critical.id, severity="critical", note=None, actor="t"),
    )
    recalls, fired = await count(runtime, Recall), await evidence_kinds(runtime)
    events = await count(runtime, IncidentEvent)

    assert await recheck_triggers(runtime) == 0
    assert await recheck_triggers(runtime) == 0
    assert await apply_triggers(runtime, critical.id) == []

    assert await count(runtime, Recall) == recalls == 2  # the public tier, then everything
    assert await evidence_kinds(runtime) == fired
    assert await count(runtime, IncidentEvent) == events


async def test_recheck_takes_what_a_failed_confirmation_left_undone(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await open_release(runtime, tmp_path, to="public")
    incident = await report(runtime)

    async def broken(rt: Runtime, incident_id: str) -> list[str]:
        raise RuntimeError("storage was down")

    monkeypatch.setattr(service, "apply_triggers", broken)
    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="critical", note=None, actor="t"),
    )
    monkeypatch.undo()

    assert confirmed.trigger_error == "RuntimeError: storage was down"
    assert (await incident_row(runtime, incident.id)).status == "confirmed"
    assert (await release_row(runtime)).status == "active"

    assert await recheck_triggers(runtime) == 1
    assert (await release_row(runtime)).status == "recalled"
    assert await recheck_triggers(runtime) == 0
    assert (await evidence_kinds(runtime)).count("trigger.fired") == 1


async def test_a_recall_lifted_by_operators_is_not_fired_again(
    runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.staging.recalls import reinstate

    await open_release(runtime, tmp_path, to="public")
    incident = await report(runtime)
    await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="critical", note=None, actor="t"),
    )
    await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="account:one"))
    lifting = await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="account:two"))
    assert lifting.lifted
    assert (await release_row(runtime)).status == "active"
    assert await recheck_triggers(runtime) == 0
    assert (await release_row(runtime)).status == "active"


async def test_a_tier_recall_withdraws_every_wider_tier_too(
    runtime: Runtime, tmp_path: Path
) -> None:
    with_triggers(
        runtime,
        Trigger(TriggerEvent.INCIDENT_CONFIRMED, Severity.HIGH, Reaction.RECALL_TIER, "researcher"),
    )
    await open_release(runtime, tmp_path, to="public")
    partner = await grantee(runtime, "tp@lab.example", tier="trusted_partner")
    researcher = await grantee(runtime, "res@uni.example", tier="researcher")
    member = await grantee(runtime, "pub@home.example", tier="public")
    urls = [await url_for(runtime, who.account_id) for who in (partner, researcher, member)]
    incident = await report(runtime)

    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="high", note=None, actor="t"),
    )

    assert len(confirmed.triggers) == 2
    async with runtime.sessionmaker() as session:
        tiers = set((await session.scalars(select(Recall.tier))).all())
    assert tiers == {"public", "researcher"}
    assert [await fetch(runtime, url) for url in urls] == [
        "allowed",
        Reason.RELEASE_RECALLED.value,
        Reason.RELEASE_RECALLED.value,
    ]
    assert await recheck_triggers(runtime) == 0


async def test_suspension_triggers_suspend_linked_accounts_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.enforcement.service import lift

    with_triggers(
        runtime,
        Trigger(TriggerEvent.INCIDENT_CONFIRMED, Severity.HIGH, Reaction.SUSPEND_ACCOUNTS, None),
    )
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    token = await url_for(runtime, alice.account_id)
    bob = await create_account(runtime, "bob@corp.example", operator=False, actor="t")
    carol = await create_account(runtime, "carol@corp.example", operator=False, actor="t")
    incident = await report(runtime)
    await within(
        runtime, lambda uow: service.link_account(uow, incident.id, alice.email, actor="t")
    )

    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="high", note=None, actor="t"),
    )

    assert len(confirmed.triggers) == 1
    assert "suspended alice@example.org" in confirmed.triggers[0]
    async with runtime.sessionmaker() as session:
        account = await session.get(Account, alice.account_id)
        action = await session.scalar(select(EnforcementAction))
    assert account is not None
    assert account.status == "suspended"
    assert action is not None
    assert action.incident_id == incident.id
    assert action.created_by == TRIGGER_ACTOR
    assert await fetch(runtime, token) == Reason.ACCOUNT_SUSPENDED.value

    # Linked to the confirmed incident later: suspended at once. Already suspended: left as is.
    from gateway.enforcement.service import enforce
    from stages.enforcement import EnforcementStep

    await within(
        runtime,
        lambda uow: enforce(
            uow,
            email=carol.email,
            step=EnforcementStep.SUSPEND,
            reason="earlier",
            days=None,
            incident_id=None,
            actor="t",
        ),
    )
    linked = await within(
        runtime, lambda uow: service.link_account(uow, incident.id, bob.email, actor="t")
    )
    assert [t.split(": ")[-1] for t in linked.triggers] == ["suspended bob@corp.example"]
    linked = await within(
        runtime, lambda uow: service.link_account(uow, incident.id, carol.email, actor="t")
    )
    assert [t.split(": ")[-1] for t in linked.triggers] == [
        "carol@corp.example was already suspended"
    ]
    assert await count(runtime, EnforcementAction) == 3

    # Lifted by an operator: the re-check leaves the decision alone.
    await within(runtime, lambda uow: lift(uow, alice.email, "appeal upheld by phone", "t"))
    assert await recheck_triggers(runtime) == 0
    assert await count(runtime, EnforcementAction) == 3
    async with runtime.sessionmaker() as session:
        assert (
            await session.scalar(select(Account.status).where(Account.id == alice.account_id))
            == "active"
        )
    assert await count(runtime, IncidentAccount) == 3


async def test_suspensions_for_an_incident_about_no_release_are_taken_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.enforcement.service import lift

    with_triggers(
        runtime,
        Trigger(TriggerEvent.INCIDENT_CONFIRMED, Severity.MEDIUM, Reaction.SUSPEND_ACCOUNTS, None),
    )
    await publish(runtime, tmp_path)
    dave = await create_account(runtime, "dave@corp.example", operator=False, actor="t")
    incident = await report(runtime, model=None, version=None, category="misuse")
    await within(runtime, lambda uow: service.link_account(uow, incident.id, dave.email, actor="t"))

    confirmed = await within(
        runtime,
        lambda uow: service.confirm(uow, incident.id, severity="medium", note=None, actor="t"),
    )

    assert [t.split(": ")[-1] for t in confirmed.triggers] == ["suspended dave@corp.example"]
    await within(runtime, lambda uow: lift(uow, dave.email, "resolved with the lab", "t"))
    assert await recheck_triggers(runtime) == 0
    assert await count(runtime, EnforcementAction) == 1
