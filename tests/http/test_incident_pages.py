"""Incidents over HTTP: the public report form (CSRF, refusals, rate limit, thank-you and
status pages), the JSON API, and the operators' incident console."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import Incident, IncidentAccount, Release
from gateway.incidents import pages as incident_pages
from gateway.incidents import reporting, service
from gateway.incidents.api import IncidentsController
from gateway.incidents.pages import IncidentPages
from gateway.keys.service import create_key
from gateway.ratelimits import RateLimits
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.grantees import MODEL, open_release
from tests.http.portal import HTML, Http, csrf_token, submit
from tests.http.test_ops_pages import make_account, sign_in, sign_in_operator
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio

CODE = re.compile(r"INC-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
DESCRIPTION = "The full weights of acme/sample 1.0 are posted on a public file host."
FORM = {
    "release": "acme/sample:1.0",
    "category": "leak",
    "description": DESCRIPTION,
    "links": "https://files.example/a.tar\n\nhttps://files.example/b.tar\n",
    "contact": "",
}
REPORT = {
    "release": "acme/sample:1.0",
    "category": "security",
    "description": "The sample's modeling.py runs code fetched from a remote host.",
    "links": ["https://advisories.example/1"],
}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Http]:
    # Until app.py registers them, the test adds the incident controllers itself.
    app = create_app(settings=settings)
    paths = {route.path for route in app.routes}
    if "/report" not in paths:
        app.register(IncidentPages)
    if "/api/v1/incidents" not in paths:
        app.register(IncidentsController)
    async with AsyncTestClient(app=app) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def incidents(rt: Runtime) -> list[Incident]:
    async with rt.sessionmaker() as session:
        return list((await session.scalars(select(Incident).order_by(Incident.created_at))).all())


async def one_incident(rt: Runtime) -> Incident:
    (incident,) = await incidents(rt)
    return incident


# --- the public form ---------------------------------------------------------------------


async def test_the_report_form_lists_the_catalog_and_needs_no_sign_in(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    page = await client.get("/report?release=acme/sample:1.0", headers=HTML)
    assert page.status_code == 200
    assert 'name="_csrf_token"' in page.text
    assert '<option value="acme/sample:1.0" selected>' in page.text
    assert '<option value="acme/sample">' in page.text
    for category in ("misuse", "safety", "security", "leak", "legal", "other"):
        assert f'<option value="{category}"' in page.text


async def test_a_report_without_the_csrf_token_is_refused(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await client.get("/report", headers=HTML)  # the CSRF cookie, but no token in the form
    refused = await client.post("/report", data=FORM, headers=HTML)
    assert refused.status_code == 403
    assert await incidents(runtime) == []


async def test_a_report_leads_to_a_thank_you_page_with_its_tracking_code(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    sent = await submit(client, "/report", "/report", FORM)
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    incident = await one_incident(runtime)
    assert location == f"/report/thanks?code={incident.tracking_code}"
    assert incident.links == {
        "urls": ["https://files.example/a.tar", "https://files.example/b.tar"]
    }
    assert incident.reporter_account_id is None
    assert incident.reporter_address

    thanks = await client.get(location, headers=HTML)
    assert thanks.status_code == 200
    assert incident.tracking_code in thanks.text
    assert f"/report/status?code={incident.tracking_code}" in thanks.text

    status = await client.get(f"/report/status?code={incident.tracking_code}", headers=HTML)
    assert status.status_code == 200
    assert "reported" in status.text
    assert "acme/sample:1.0" in status.text


async def test_a_refused_report_redraws_the_form_with_why_and_writes_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    short = await submit(client, "/report", "/report", {**FORM, "description": "too short"})
    assert short.status_code == 400
    assert "at least 20 characters" in short.text
    assert "too short</textarea>" in short.text  # what was typed is kept
    bad_link = await submit(client, "/report", "/report", {**FORM, "links": "ftp://x.example/a"})
    assert bad_link.status_code == 400
    assert "is not a web address" in bad_link.text
    unknown = await submit(client, "/report", "/report", {**FORM, "release": "acme/none:1.0"})
    assert unknown.status_code == 404
    assert "no model acme/none" in unknown.text
    assert await incidents(runtime) == []


async def test_a_refused_report_names_every_refused_field_at_once(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    refused = await submit(
        client,
        "/report",
        "/report",
        {
            "release": "acme/sample:not a version",
            "category": "gossip",
            "description": "too short",
            "links": "ftp://x.example/a",
            "contact": "nope",
        },
    )
    assert refused.status_code == 400
    errors = dict(
        re.findall(
            r'id="f-(\w+)-error"><span class="visually-hidden">Error: </span>([^<]+)<', refused.text
        )
    )
    assert set(errors) == {"release", "category", "description", "links", "contact"}
    assert "unknown category" in errors["category"]
    assert "at least 20 characters" in errors["description"]
    assert "is not a web address" in errors["links"]
    assert "an email address we may write to" in errors["contact"]
    for name in errors:
        assert f'<a href="#f-{name}">' in refused.text
    assert "too short</textarea>" in refused.text
    assert 'value="nope"' in refused.text
    # The API says the same: the first problem's code, and every field's problem.
    api = await client.post(
        "/api/v1/incidents", json={**REPORT, "category": "gossip", "description": "short"}
    )
    assert api.status_code == 400
    assert api.json()["error"] == "unknown_category"
    assert [p["field"] for p in api.json()["problems"]] == ["category", "description"]
    assert await incidents(runtime) == []


async def test_reports_are_rate_limited_per_address_across_the_form_and_the_api(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    token = await csrf_token(client, "/report")
    allowed = RateLimits().incident_reports_per_address.limit
    for _ in range(allowed - 1):
        sent = await client.post("/report", data={**FORM, "_csrf_token": token}, headers=HTML)
        assert sent.status_code == 303
    assert (await client.post("/api/v1/incidents", json=REPORT)).status_code == 201

    limited = await client.post("/report", data={**FORM, "_csrf_token": token}, headers=HTML)
    assert limited.status_code == 429
    assert "too many reports from this address" in limited.text
    assert int(limited.headers["retry-after"]) > 0
    api_limited = await client.post("/api/v1/incidents", json=REPORT)
    assert api_limited.status_code == 429
    assert api_limited.json()["error"] == "rate_limited"
    assert int(api_limited.headers["retry-after"]) > 0
    assert len(await incidents(runtime)) == allowed


async def test_a_signed_in_reporter_is_linked_to_the_report(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    account_id = await make_account(runtime, "reporter@uni.example")
    await sign_in(client, "reporter@uni.example")
    page = await client.get("/report", headers=HTML)
    assert "signed in as reporter@uni.example" in page.text
    sent = await submit(client, "/report", "/report", FORM)
    assert sent.status_code == 303
    assert (await one_incident(runtime)).reporter_account_id == account_id


async def test_the_status_page_never_shows_notes_severity_or_linked_accounts(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await create_account(runtime, "ops@lab.example", operator=True, actor="t")
    await create_account(runtime, "leaker@corp.example", operator=False, actor="t")
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow,
            model=None,
            version=None,
            category="leak",
            description=DESCRIPTION,
            links=[],
            contact="me@home.example",
            reporter_account_id=None,
            address="192.0.2.1",
        ),
    )
    code = incident.tracking_code
    await within(
        runtime,
        lambda uow: service.triage(
            uow, code, severity="critical", assignee="ops@lab.example", note="SECRET", actor="t"
        ),
    )
    await within(
        runtime, lambda uow: service.link_account(uow, code, "leaker@corp.example", actor="t")
    )
    await within(runtime, lambda uow: service.add_note(uow, code, note="SECRET again", actor="t"))

    page = await client.get(f"/report/status?code={code.lower()}", headers=HTML)
    api = await client.get(f"/api/v1/incidents/{code}")
    assert page.status_code == 200
    assert api.status_code == 200
    assert api.json()["status"] == "triaged"
    assert api.json()["resolution"] is None
    for shown in (page.text, api.text):
        for secret in ("SECRET", "leaker@corp.example", "ops@lab.example", "critical", "me@home"):
            assert secret not in shown

    await within(
        runtime, lambda uow: service.dismiss(uow, code, reason="The files are not ours.", actor="t")
    )
    closed = await client.get(f"/api/v1/incidents/{code}")
    assert closed.json()["status"] == "dismissed"
    assert closed.json()["resolution"] == "The files are not ours."
    page = await client.get(f"/report/status?code={code}", headers=HTML)
    assert "The files are not ours." in page.text

    unknown = await client.get("/report/status?code=INC-0000-0000", headers=HTML)
    assert unknown.status_code == 404
    assert "no report has that tracking code" in unknown.text


# --- the JSON API ------------------------------------------------------------------------


async def test_the_api_takes_a_report_and_answers_its_status(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    created = await client.post("/api/v1/incidents", json=REPORT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"tracking_code", "status", "status_url"}
    assert CODE.fullmatch(body["tracking_code"])
    assert body["status"] == "reported"
    assert body["status_url"] == f"http://testserver/report/status?code={body['tracking_code']}"

    status = await client.get(f"/api/v1/incidents/{body['tracking_code']}")
    assert status.status_code == 200
    assert status.json()["release"] == "acme/sample:1.0"
    assert status.json()["category"] == "security"
    assert (await client.get("/api/v1/incidents/INC-0000-0000")).status_code == 404
    incident = await one_incident(runtime)
    assert incident.reporter_account_id is None


async def test_the_api_refuses_bad_reports_with_a_code_and_writes_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**REPORT, "category": "gossip"}, 400, "unknown_category"),
        ({**REPORT, "description": "short"}, 400, "description_too_short"),
        ({**REPORT, "links": ["https://e.example"] * 11}, 400, "too_many_links"),
        ({**REPORT, "release": "not a release"}, 400, "invalid_name"),
        ({**REPORT, "release": "acme/sample:2.0"}, 404, "release_not_found"),
        ({**REPORT, "contact": "nope"}, 400, "invalid_contact"),
        ({"category": "leak"}, 400, "invalid_request"),
        ({**REPORT, "links": "https://e.example"}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        refused = await client.post("/api/v1/incidents", json=body)
        assert refused.status_code == status, (body, refused.text)
        assert refused.json()["error"] == code
    assert await incidents(runtime) == []


async def test_an_api_key_links_the_reporter_and_a_bad_one_is_refused(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    account = await create_account(runtime, "dev@lab.example", operator=False, actor="t")
    key = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=("download",), days=None, name="t", actor="t"
        ),
    )
    linked = await client.post(
        "/api/v1/incidents", json=REPORT, headers={"authorization": f"Bearer {key.secret}"}
    )
    assert linked.status_code == 201
    assert (await one_incident(runtime)).reporter_account_id == account.id
    for header in ("Bearer rgk_not-a-key", "Basic abc"):
        refused = await client.post(
            "/api/v1/incidents", json=REPORT, headers={"authorization": header}
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "key_invalid"
    assert len(await incidents(runtime)) == 1


# --- the operators' console --------------------------------------------------------------


async def test_the_console_is_for_operators_only(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow,
            model=None,
            version=None,
            category="other",
            description=DESCRIPTION,
            links=[],
            contact=None,
            reporter_account_id=None,
            address=None,
        ),
    )
    signed_out = await client.get("/ops/incidents", headers=HTML)
    assert signed_out.status_code == 302
    assert signed_out.headers["location"].startswith("/sign-in?next=/ops/incidents")
    await make_account(runtime, "user@uni.example")
    await sign_in(client, "user@uni.example")
    assert (await client.get("/ops/incidents", headers=HTML)).status_code == 403
    assert (await client.get(f"/ops/incidents/{incident.id}", headers=HTML)).status_code == 403
    token = await csrf_token(client, "/report")
    refused = await client.post(
        f"/ops/incidents/{incident.id}/dismiss",
        data={"reason": "no", "_csrf_token": token},
        headers=HTML,
    )
    assert refused.status_code == 403
    assert (await one_incident(runtime)).status == "reported"


async def test_the_console_lists_filters_and_pages_incidents(
    client: Http, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(runtime, tmp_path)
    made = []
    for category in ("leak", "misuse", "safety"):
        made.append(
            await within(
                runtime,
                lambda uow, category=category: reporting.report(
                    uow,
                    model=None,
                    version=None,
                    category=category,
                    description=DESCRIPTION,
                    links=[],
                    contact=None,
                    reporter_account_id=None,
                    address=None,
                ),
            )
        )
    await within(
        runtime,
        lambda uow: service.triage(
            uow, made[0].id, severity="high", assignee=None, note=None, actor="t"
        ),
    )
    await within(runtime, lambda uow: service.dismiss(uow, made[1].id, reason="spam", actor="t"))
    await sign_in_operator(client, runtime)

    page = await client.get("/ops/incidents", headers=HTML)
    assert page.status_code == 200
    assert made[0].tracking_code in page.text
    assert made[2].tracking_code in page.text
    assert made[1].tracking_code not in page.text  # dismissed: not open
    high = await client.get("/ops/incidents?severity=high", headers=HTML)
    assert made[0].tracking_code in high.text
    assert made[2].tracking_code not in high.text
    everything = await client.get("/ops/incidents?status=all", headers=HTML)
    assert all(i.tracking_code in everything.text for i in made)
    bad = await client.get("/ops/incidents?status=pending", headers=HTML)
    assert bad.status_code == 400
    assert "unknown status" in bad.text

    monkeypatch.setattr(incident_pages, "PAGE_SIZE", 2)
    first = await client.get("/ops/incidents?status=all", headers=HTML)
    second = await client.get("/ops/incidents?status=all&page=2", headers=HTML)
    assert "Page 1 of 2" in first.text
    assert 'href="/ops/incidents?status=all&amp;page=2"' in first.text
    assert made[0].tracking_code in second.text
    assert made[2].tracking_code not in second.text


async def test_operators_triage_link_confirm_and_resolve_from_the_console(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    await make_account(runtime, "suspect@corp.example")
    # About the release, so that confirming it critical fires the default policy's recall.
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow,
            model=MODEL,
            version="1.0",
            category="leak",
            description=DESCRIPTION,
            links=["https://files.example/a.tar"],
            contact="me@home.example",
            reporter_account_id=None,
            address="192.0.2.1",
        ),
    )
    await sign_in_operator(client, runtime)
    page = f"/ops/incidents/{incident.id}"

    detail = await client.get(page, headers=HTML)
    assert detail.status_code == 200
    for shown in (DESCRIPTION, "https://files.example/a.tar", "me@home.example", "192.0.2.1"):
        assert shown in detail.text
    for form in ("/triage", "/confirm", "/dismiss", "/note", "/link"):
        assert f'action="{page}{form}"' in detail.text
    assert f'action="{page}/resolve"' not in detail.text

    triaged = await submit(
        client,
        page,
        f"{page}/triage",
        {"severity": "high", "assignee": "ops@lab.example", "note": "looks real"},
    )
    assert triaged.status_code == 303
    assert triaged.headers["location"] == f"{page}?done=triage"
    linked = await submit(client, page, f"{page}/link", {"email": "suspect@corp.example"})
    assert linked.status_code == 303
    not_there = await submit(client, page, f"{page}/link", {"email": "ghost@corp.example"})
    assert not_there.status_code == 404
    assert "no account ghost@corp.example" in not_there.text
    illegal = await submit(client, page, f"{page}/resolve", {"note": "too soon"})
    assert illegal.status_code == 409
    assert "only a confirmed incident is resolved" in illegal.text
    no_reason = await submit(client, page, f"{page}/dismiss", {"reason": " "})
    assert no_reason.status_code == 400
    assert "a reason is required" in no_reason.text

    confirmed = await submit(client, page, f"{page}/confirm", {"severity": "critical"})
    assert confirmed.status_code == 303
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(Release.status)) == "recalled"
        assert await session.scalar(select(func.count()).select_from(IncidentAccount)) == 1
    after = await client.get(f"{page}?done=confirm", headers=HTML)
    assert "the incident is confirmed" in after.text
    assert "policy trigger" in after.text
    assert "recalls the release: recalled acme/sample:1.0" in after.text
    assert "suspect@corp.example" in after.text
    assert f'action="{page}/resolve"' in after.text

    resolved = await submit(client, page, f"{page}/resolve", {"note": "Taken down."})
    assert resolved.status_code == 303
    assert (await one_incident(runtime)).status == "resolved"
    assert (await submit(client, page, f"{page}/nonsense", {})).status_code == 404
    unknown = await submit(client, page, "/ops/incidents/INC-0000-0000/note", {"note": "x"})
    assert unknown.status_code == 404


async def test_triggers_that_fail_after_a_confirmation_show_on_the_incident_page(
    client: Http, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The triggers run once the confirming unit has committed, after the handler chose its
    # answer: the timeline is where the operator is told they could not all be applied.
    await open_release(runtime, tmp_path, to="public")
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow,
            model=MODEL,
            version="1.0",
            category="leak",
            description=DESCRIPTION,
            links=[],
            contact=None,
            reporter_account_id=None,
            address=None,
        ),
    )

    async def broken(rt: Runtime, incident_id: str) -> list[str]:
        raise RuntimeError("storage was down")

    monkeypatch.setattr(service, "apply_triggers", broken)
    await sign_in_operator(client, runtime)
    page = f"/ops/incidents/{incident.id}"
    confirmed = await submit(client, page, f"{page}/confirm", {"severity": "critical"})
    assert confirmed.status_code == 303
    assert (await one_incident(runtime)).status == "confirmed"
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(Release.status)) == "active"
    after = await client.get(f"{page}?done=confirm", headers=HTML)
    assert "policy trigger failed" in after.text
    assert "RuntimeError: storage was down; the scheduler tries again" in after.text
