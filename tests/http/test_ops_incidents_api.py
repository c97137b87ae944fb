"""The operator API of incidents: the list's cursor pages and filters, one incident, and
every step (triage, confirm with the policy's triggers, dismiss, resolve, notes, linked
accounts), each recorded with the operator as the actor; bad input and unknown incidents
refused with nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import IncidentEvent, Release
from gateway.incidents import reporting
from gateway.runtime import Runtime
from stages.names import ModelRef
from tests.accounts import create_account
from tests.grantees import MODEL, open_release
from tests.http.operators import (
    OPS,
    PAGING_REFUSALS,
    error_of,
    evidence_by,
    forged_cursor,
    key_holder,
)
from tests.sample import publish
from tests.units import reading, within

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
INCIDENTS = f"{OPS}/incidents"


async def reported(
    rt: Runtime,
    at: datetime = T0,
    *,
    model: ModelRef | None = MODEL,
    version: str | None = "1.0",
) -> tuple[str, str]:
    """An incident reported at `at`: its id and tracking code."""
    rt.clock = lambda: at
    incident = await within(
        rt,
        lambda uow: reporting.report(
            uow,
            model=model,
            version=version,
            category="leak",
            description="The weights are posted on a public file host.",
            links=["https://files.example/a.tar"],
            contact=None,
            reporter_account_id=None,
            address="192.0.2.1",
        ),
    )
    return incident.id, incident.tracking_code


async def walk(client: Http, auth: dict[str, str], **params: str) -> tuple[list[str], int]:
    """The ids of every page of the list, in order, and how many pages it took."""
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        answer = await client.get(INCIDENTS, params=query, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


async def timeline_length(rt: Runtime) -> int:
    async with reading(rt) as session:
        return await session.scalar(select(func.count()).select_from(IncidentEvent)) or 0


# --- the list ----------------------------------------------------------------------------


async def test_the_list_walks_every_page_once_newest_first(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    # Two at a time share a report time: the id breaks the tie, so none is lost or repeated.
    ids = [(await reported(runtime, T0 + timedelta(hours=i // 2)))[0] for i in range(7)]
    holder = await key_holder(runtime)
    seen, pages = await walk(client, holder.auth, limit="3")
    assert pages == 3
    assert seen == sorted(ids, key=lambda i: (ids.index(i) // 2, i), reverse=True)
    first = (await client.get(INCIDENTS, headers=holder.auth)).json()["items"][0]
    assert (first["release"], first["status"], first["severity"]) == (
        "acme/sample:1.0",
        "reported",
        None,
    )
    assert first["reported_at"].startswith("2030-03-01T12:00")


async def test_the_list_filters_by_status_severity_and_release(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    about_release, _ = await reported(runtime, T0)
    about_nothing, _ = await reported(runtime, T0 + timedelta(hours=1), model=None, version=None)
    holder = await key_holder(runtime)
    triaged = await client.post(
        f"{INCIDENTS}/{about_release}/triage", json={"severity": "high"}, headers=holder.auth
    )
    assert triaged.status_code == 200, triaged.text
    dismissed = await client.post(
        f"{INCIDENTS}/{about_nothing}/dismiss", json={"reason": "spam"}, headers=holder.auth
    )
    assert dismissed.status_code == 200, dismissed.text

    async def ids(**params: str) -> list[str]:
        return (await walk(client, holder.auth, **params))[0]

    assert await ids() == [about_release]  # open by default
    assert await ids(status="all") == [about_nothing, about_release]
    assert await ids(status="dismissed") == [about_nothing]
    assert await ids(status="all", severity="high") == [about_release]
    assert await ids(status="all", severity="low") == []
    assert await ids(status="all", release="acme/sample") == [about_release]
    assert await ids(status="all", release="acme/sample:2.0") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "pending"}, "unknown_status"),
        ({"severity": "huge"}, "unknown_severity"),
        ({"release": "no slash"}, "invalid_name"),
        *PAGING_REFUSALS,
        ({"cursor": forged_cursor("applications")}, "invalid_cursor"),
    ],
)
async def test_bad_filters_and_cursors_are_400(
    client: Http, runtime: Runtime, params: dict[str, str], code: str
) -> None:
    holder = await key_holder(runtime)
    answer = await client.get(INCIDENTS, params=params, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == code


# --- one incident ------------------------------------------------------------------------


async def test_one_incident_by_id_or_tracking_code(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    incident_id, code = await reported(runtime)
    holder = await key_holder(runtime)
    by_code = await client.get(f"{INCIDENTS}/{code.lower()}", headers=holder.auth)
    assert by_code.status_code == 200, by_code.text
    body = by_code.json()
    assert body["incident"]["id"] == incident_id
    assert body["incident"]["tracking_code"] == code
    assert body["links"] == ["https://files.example/a.tar"]
    assert (body["reporter"], body["reporter_address"]) == (None, "192.0.2.1")
    assert [e["move"] for e in body["timeline"]] == ["report"]
    assert body["moves"] == ["triage", "confirm", "dismiss"]
    by_id = await client.get(f"{INCIDENTS}/{incident_id}", headers=holder.auth)
    assert by_id.json() == body
    missing = await client.get(f"{INCIDENTS}/INC-0000-0000", headers=holder.auth)
    assert (missing.status_code, error_of(missing)) == (404, "incident_not_found")


# --- the steps ---------------------------------------------------------------------------


async def test_triage_confirm_link_note_and_resolve_as_the_operator(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    incident_id, code = await reported(runtime)
    holder = await key_holder(runtime)
    await create_account(runtime, "suspect@corp.example", operator=False, actor="test")
    url = f"{INCIDENTS}/{code}"

    triaged = await client.post(
        f"{url}/triage",
        json={"severity": "medium", "assignee": holder.email, "note": "looking"},
        headers=holder.auth,
    )
    assert triaged.status_code == 200, triaged.text
    incident = triaged.json()["incident"]["incident"]
    assert (incident["status"], incident["severity"], incident["assignee"]) == (
        "triaged",
        "medium",
        holder.email,
    )

    confirmed = await client.post(
        f"{url}/confirm", json={"severity": "critical"}, headers=holder.auth
    )
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["incident"]["incident"]["status"] == "confirmed"
    # The suite's policy recalls a release on a critical incident, before the answer.
    assert body["trigger_error"] is None
    [fired] = body["triggers"]
    assert "recalled acme/sample:1.0" in fired
    async with reading(runtime) as session:
        assert await session.scalar(select(Release.status)) == "recalled"

    linked = await client.post(
        f"{url}/links", json={"email": "Suspect@corp.example"}, headers=holder.auth
    )
    assert linked.status_code == 201, linked.text
    assert [a["email"] for a in linked.json()["incident"]["linked_accounts"]] == [
        "suspect@corp.example"
    ]
    noted = await client.post(f"{url}/notes", json={"note": "host asked"}, headers=holder.auth)
    assert noted.status_code == 201, noted.text
    assert noted.json()["incident"]["timeline"][-1]["note"] == "host asked"
    resolved = await client.post(f"{url}/resolve", json={"note": "taken down"}, headers=holder.auth)
    assert resolved.status_code == 200, resolved.text
    detail = resolved.json()["incident"]
    assert detail["incident"]["status"] == "resolved"
    assert detail["moves"] == []
    ours = [e for e in detail["timeline"] if e["actor"] == holder.actor]
    assert [e["move"] for e in ours] == [
        "triage",
        "severity",
        "assign",
        "confirm",
        "severity",
        "link_account",
        "note",
        "resolve",
    ]
    kinds = [row.kind for row in await evidence_by(runtime, holder.actor)]
    assert kinds == [
        "incident.triaged",
        "incident.confirmed",
        "incident.account_linked",
        "incident.note_added",
        "incident.resolved",
    ]
    assert all(
        row.data["incident"] == incident_id for row in await evidence_by(runtime, holder.actor)
    )


async def test_dismiss_takes_a_reason_and_closes_the_report(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    incident_id, _ = await reported(runtime)
    holder = await key_holder(runtime)
    dismissed = await client.post(
        f"{INCIDENTS}/{incident_id}/dismiss", json={"reason": "not ours"}, headers=holder.auth
    )
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["incident"]["incident"]["status"] == "dismissed"
    assert dismissed.json()["triggers"] == []
    [row] = await evidence_by(runtime, holder.actor)
    assert (row.kind, row.data["resolution"]) == ("incident.dismissed", "not ours")
    closed = await client.post(
        f"{INCIDENTS}/{incident_id}/links", json={"email": holder.email}, headers=holder.auth
    )
    assert (closed.status_code, error_of(closed)) == (409, "incident_closed")


STEPS: list[tuple[str, dict[str, Any] | None, int, str]] = [
    ("triage", {"severity": "huge"}, 400, "unknown_severity"),
    ("triage", {"severity": "low", "assignee": "nobody@corp.example"}, 400, "not_an_operator"),
    ("triage", {"assignee": "ops@lab.example"}, 400, "invalid_request"),
    ("triage", {"severity": "low", "note": "x" * 5001}, 400, "text_too_long"),
    ("confirm", {}, 400, "severity_required"),
    ("confirm", None, 400, "severity_required"),
    ("dismiss", {}, 400, "invalid_request"),
    ("dismiss", {"reason": "  "}, 400, "reason_required"),
    ("resolve", {"note": "done"}, 409, "illegal_incident_move"),
    ("notes", {"note": ""}, 400, "text_required"),
    ("notes", {"note": 5}, 400, "invalid_request"),
    ("links", {"email": "nobody@corp.example"}, 404, "account_not_found"),
    ("links", {"email": "not an address"}, 400, "invalid_email"),
]


@pytest.mark.parametrize(("step", "body", "status", "code"), STEPS)
async def test_a_refused_step_changes_nothing(
    client: Http,
    runtime: Runtime,
    tmp_path: Path,
    step: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    await publish(runtime, tmp_path)
    incident_id, _ = await reported(runtime)
    holder = await key_holder(runtime)
    events = await timeline_length(runtime)
    answer = await client.post(f"{INCIDENTS}/{incident_id}/{step}", json=body, headers=holder.auth)
    assert answer.status_code == status, answer.text
    assert error_of(answer) == code
    assert await timeline_length(runtime) == events
    assert await evidence_by(runtime, holder.actor) == []
    shown = await client.get(f"{INCIDENTS}/{incident_id}", headers=holder.auth)
    assert shown.json()["incident"]["status"] == "reported"


@pytest.mark.parametrize(
    ("step", "body"),
    [
        ("triage", {"severity": "low"}),
        ("confirm", {"severity": "low"}),
        ("dismiss", {"reason": "x"}),
        ("resolve", {"note": "x"}),
        ("notes", {"note": "x"}),
        ("links", {"email": "ops@lab.example"}),
    ],
)
async def test_every_step_on_an_unknown_incident_is_404(
    client: Http, runtime: Runtime, step: str, body: dict[str, str]
) -> None:
    holder = await key_holder(runtime)
    answer = await client.post(f"{INCIDENTS}/INC-0000-0000/{step}", json=body, headers=holder.auth)
    assert (answer.status_code, error_of(answer)) == (404, "incident_not_found")
    assert await evidence_by(runtime, holder.actor) == []


async def test_the_document_describes_what_a_step_answers(client: Http) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    for step, status in (("confirm", "200"), ("links", "201")):
        op = doc["paths"][f"{INCIDENTS}/{{ref}}/{step}"]["post"]
        assert {status, "400", "401", "403", "404", "409"} <= set(op["responses"])
        body = op["responses"][status]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/StepOut"}
        assert op["requestBody"]["content"]["application/json"]
    step_out = doc["components"]["schemas"]["StepOut"]
    assert set(step_out["required"]) == {"incident", "triggers", "trigger_error"}
