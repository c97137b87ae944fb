"""Regulatory clocks: an incident whose severity has a deadline in the policy's
[reporting] (the suite's follows the EU AI Act, Article 73) shows it in the operator API,
the console and its list; the scheduler reminds every operator once before it and once
after it passes unreported; a report to the authority stops the clock and is evidence
that says whether it was on time. Bad input is refused with nothing written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.db.models import Notification
from gateway.incidents.deadlines import remind_deadlines
from gateway.incidents.service import dismiss, triage
from gateway.runtime import Runtime
from tests.backends import on_each_database
from tests.http.operators import OPS, error_of, evidence_by, key_holder
from tests.http.portal import HTML, submit
from tests.http.test_ops_incidents_api import T0, reported, timeline_length
from tests.http.test_ops_pages import sign_in_operator
from tests.sample import publish
from tests.units import reading, within

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
INCIDENTS = f"{OPS}/incidents"


def at(rt: Runtime, client: Http, after: timedelta) -> None:
    """Move the tests' runtime and the app's to `after` past the report."""
    served: Runtime = client.app.state.runtime
    rt.clock = served.clock = lambda: T0 + after


async def reminders(rt: Runtime, kind: str) -> list[Notification]:
    async with reading(rt) as session:
        return list(await session.scalars(select(Notification).where(Notification.kind == kind)))


async def test_a_high_incident_must_be_reported_within_ten_days(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    incident_id, code = await reported(runtime)
    holder = await key_holder(runtime)
    at(runtime, client, timedelta(0))
    before = (await client.get(f"{INCIDENTS}/{code}", headers=holder.auth)).json()
    assert before["incident"]["reporting"] is None, "no severity yet: no deadline"
    await within(
        runtime, lambda uow: triage(uow, code, severity="high", assignee=None, note=None, actor="t")
    )
    shown = (await client.get(f"{INCIDENTS}/{code}", headers=holder.auth)).json()
    clock = shown["incident"]["reporting"]
    assert clock["authority"] == "the market surveillance authority"
    assert clock["deadline"].startswith("2030-03-11T09:00")
    assert (clock["state"], clock["reported_at"]) == ("running", None)

    # A day before: due soon, and every operator is reminded once.
    at(runtime, client, timedelta(days=9, hours=1))
    listed = (await client.get(INCIDENTS, headers=holder.auth)).json()["items"]
    assert listed[0]["reporting"]["state"] == "due_soon"
    assert await within(runtime, remind_deadlines) == 1
    assert await within(runtime, remind_deadlines) == 0
    [near] = await reminders(runtime, "incident.deadline_reminder")
    assert near.account_id == holder.account_id
    assert code in near.subject

    # Past the deadline: overdue, told once more.
    at(runtime, client, timedelta(days=10, seconds=1))
    assert await within(runtime, remind_deadlines) == 1
    assert await within(runtime, remind_deadlines) == 0
    assert len(await reminders(runtime, "incident.deadline_overdue")) == 1
    overdue = (await client.get(f"{INCIDENTS}/{code}", headers=holder.auth)).json()
    assert overdue["incident"]["reporting"]["state"] == "overdue"

    done = await client.post(
        f"{INCIDENTS}/{code}/authority-reports",
        json={"reference": "MSA-2030-0042", "note": "sent with the leak's evidence"},
        headers=holder.auth,
    )
    assert done.status_code == 201, done.text
    after = done.json()["incident"]
    assert after["incident"]["reporting"]["state"] == "reported_late"
    assert after["incident"]["reporting"]["reported_at"].startswith("2030-03-11T09:00:01")
    assert (
        "reported to the market surveillance authority, reference MSA-2030-0042"
        in (after["timeline"][-1]["note"])
    )
    [recorded] = await evidence_by(runtime, holder.actor, "incident.authority_reported")
    assert recorded.data["incident"] == incident_id
    assert (recorded.data["reference"], recorded.data["on_time"]) == ("MSA-2030-0042", False)
    assert recorded.data["deadline"].startswith("2030-03-11T09:00")
    at(runtime, client, timedelta(days=30))
    assert await within(runtime, remind_deadlines) == 0, "a reported incident needs no reminder"


async def test_low_and_dismissed_incidents_have_no_deadline(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    _, low = await reported(runtime)
    _, gone = await reported(runtime)
    for code, severity in ((low, "low"), (gone, "critical")):
        await within(
            runtime,
            lambda uow, code=code, severity=severity: triage(
                uow, code, severity=severity, assignee=None, note=None, actor="t"
            ),
        )
    await within(runtime, lambda uow: dismiss(uow, gone, reason="a duplicate", actor="t"))
    holder = await key_holder(runtime)
    items = (await client.get(INCIDENTS, params={"status": "all"}, headers=holder.auth)).json()
    assert [item["reporting"] for item in items["items"]] == [None, None]
    at(runtime, client, timedelta(days=60))
    assert await within(runtime, remind_deadlines) == 0


async def test_bad_reports_to_the_authority_are_refused_and_write_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    _, code = await reported(runtime)
    holder = await key_holder(runtime)
    events = await timeline_length(runtime)
    for body in ({"reference": "x" * 201}, {"authority": "a\x00b"}, {"note": "n" * 5001}):
        refused = await client.post(
            f"{INCIDENTS}/{code}/authority-reports", json=body, headers=holder.auth
        )
        assert refused.status_code == 400, (body, refused.text)
    unknown = await client.post(
        f"{INCIDENTS}/INC-0000-0000/authority-reports", json={}, headers=holder.auth
    )
    assert (unknown.status_code, error_of(unknown)) == (404, "incident_not_found")
    nobody = await client.post(f"{INCIDENTS}/{code}/authority-reports", json={})
    assert nobody.status_code == 401
    assert await timeline_length(runtime) == events


async def test_the_console_shows_the_clock_and_records_the_report(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    incident_id, code = await reported(runtime)
    await within(
        runtime,
        lambda uow: triage(uow, code, severity="critical", assignee=None, note=None, actor="t"),
    )
    await sign_in_operator(client, runtime)
    at(runtime, client, timedelta(days=3))
    listing = (await client.get("/ops/incidents", headers=HTML)).text
    assert "clock-overdue" in listing
    page = f"/ops/incidents/{incident_id}"
    shown = (await client.get(page, headers=HTML)).text
    assert "Report to the market surveillance authority by" in shown
    assert "Overdue" in shown
    too_long = await submit(client, page, f"{page}/authority-report", {"reference": "r" * 201})
    assert too_long.status_code == 400
    assert "the reference" in too_long.text
    posted = await submit(client, page, f"{page}/authority-report", {"reference": "EU-77"})
    assert posted.status_code == 303, posted.text
    done = await client.get(posted.headers["location"], headers=HTML)
    assert "the report to the authority is recorded" in done.text
    assert "after the deadline" in done.text
    assert "reference EU-77" in done.text
    forged = await client.post(f"{page}/authority-report", data={}, headers=HTML)
    assert forged.status_code == 403
