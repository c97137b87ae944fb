"""The public list of authorised uses: an applicant opts in when applying (JSON API and
apply form), the approved use is listed with what they wrote and nothing else, a bad
listing refuses the whole application, and the applicant withdraws it (API and page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.models import Application, Evidence
from gateway.keys.service import create_key
from gateway.runtime import Runtime
from tests.backends import on_each_database
from tests.grantees import open_release
from tests.http.portal import HTML, Http, submit
from tests.http.test_ops_pages import make_account, sign_in
from tests.units import within, writing

pytestmark = [pytest.mark.anyio, on_each_database()]
LISTING = {
    "institution": "University of Examples",
    "project_title": "Refusal behaviour under red-teaming",
    "use_statement": "We measure how often the model refuses harmful requests.",
}


async def applicant(rt: Runtime, email: str) -> tuple[str, dict[str, str]]:
    account = await make_account(rt, email)
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=account, scopes=["apply"], days=None, name="", actor="t"
        ),
    )
    return account, {"authorization": f"Bearer {created.secret}"}


async def apply(client: Http, auth: dict[str, str], **extra: Any) -> Any:
    form = await client.get("/api/v1/models/acme/sample/application-form/public", headers=auth)
    body = {
        "model": "acme/sample",
        "tier": "public",
        "license_sha256": form.json()["license_sha256"],
        "answers": {"intended_use": "research", "agree_acceptable_use": True},
        **extra,
    }
    return await client.post("/api/v1/applications", json=body, headers=auth)


async def kinds(rt: Runtime) -> dict[str, int]:
    async with writing(rt) as session:
        rows = await session.execute(
            select(Evidence.kind, func.count())
            .where(Evidence.kind.like("public_listing.%"))
            .group_by(Evidence.kind)
        )
        return {str(kind): int(n) for kind, n in rows.all()}


async def test_an_approved_use_is_listed_as_written_until_withdrawn(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    _, ada = await applicant(runtime, "ada@uni.example")
    _, bob = await applicant(runtime, "bob@lab.example")

    # A listing missing a part refuses the application; nothing is written.
    refused = await apply(client, ada, public_listing={**LISTING, "project_title": " "})
    assert refused.status_code == 400
    assert "The project title is required for the public list" in refused.json()["message"]
    async with writing(runtime) as session:
        assert await session.scalar(select(func.count()).select_from(Application)) == 0
    too_long = await apply(client, ada, public_listing={**LISTING, "institution": "x" * 201})
    assert "The institution is at most 200 characters" in too_long.json()["message"]

    listed = await apply(client, ada, public_listing=LISTING)
    assert listed.status_code == 201, listed.text
    assert listed.json()["status"] == "approved"
    unlisted = await apply(client, bob)
    assert unlisted.status_code == 201

    page = await client.get("/api/v1/authorised-uses")
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 1
    [use] = body["items"]
    assert {k: use[k] for k in LISTING} == LISTING
    assert (use["model"], use["tier"]) == ("acme/sample", "public")
    # Nothing else of the application: no answers, no account, no email.
    assert set(use) == {*LISTING, "model", "tier", "approved_at"}
    html = await client.get("/authorised-uses", headers=HTML)
    assert LISTING["project_title"] in html.text
    assert "bob@lab.example" not in html.text
    assert "ada@uni.example" not in html.text
    assert (await client.get("/api/v1/authorised-uses?model=acme/sample")).json()["total"] == 1
    assert (await client.get("/api/v1/authorised-uses?model=acme/none")).status_code == 404
    assert (await client.get("/api/v1/authorised-uses?model=not a model")).status_code == 400

    # Only the applicant takes it off the list; again is no error.
    path = f"/api/v1/applications/{listed.json()['id']}/public-listing"
    assert (await client.delete(path, headers=bob)).status_code == 404
    assert (await client.delete(path, headers=ada)).status_code == 204
    assert (await client.get("/api/v1/authorised-uses")).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }
    assert (await client.delete(path, headers=ada)).status_code == 204
    bobs = f"/api/v1/applications/{unlisted.json()['id']}/public-listing"
    assert (await client.delete(bobs, headers=bob)).status_code == 404
    assert await kinds(runtime) == {"public_listing.consented": 1, "public_listing.withdrawn": 1}


async def test_the_apply_form_opts_in_and_the_application_page_withdraws(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="public")
    await make_account(runtime, "cy@uni.example")
    await sign_in(client, "cy@uni.example")
    form_page = "/models/acme/sample/apply?tier=public"
    fields = {
        "tier": "public",
        "answer.intended_use": "research",
        "answer.agree_acceptable_use": "on",
        "accept_license": "on",
        "public_listing": "on",
        "listing.institution": LISTING["institution"],
        "listing.project_title": "",
        "listing.use_statement": LISTING["use_statement"],
    }
    page = await client.get(form_page, headers=HTML)
    assert 'name="public_listing"' in page.text
    sha = page.text.split('name="license_sha256" value="', 1)[1].split('"', 1)[0]
    fields["license_sha256"] = sha
    refused = await submit(client, form_page, form_page, fields)
    assert refused.status_code == 400
    assert "The project title is required for the public list" in refused.text
    # What was typed is shown again, and the empty field says what is wrong with it.
    assert f'value="{LISTING["institution"]}"' in refused.text
    assert 'href="#q-listing.project_title"' in refused.text
    assert 'id="q-listing.project_title-error"' in refused.text
    assert 'aria-invalid="true"' in refused.text

    fields["listing.project_title"] = LISTING["project_title"]
    sent = await submit(client, form_page, form_page, fields)
    assert sent.status_code in (302, 303), sent.text
    application = sent.headers["location"].split("?", 1)[0]
    shown = await client.get(application, headers=HTML)
    assert "Take it off the public list" in shown.text
    assert (await client.get("/api/v1/authorised-uses")).json()["total"] == 1

    withdrawn = await submit(client, application, f"{application}/public-listing/withdraw", {})
    assert withdrawn.status_code in (302, 303)
    assert withdrawn.headers["location"].endswith("?done=unlisted")
    after = await client.get(withdrawn.headers["location"], headers=HTML)
    assert "taken off the public list" in after.text
    assert (await client.get("/api/v1/authorised-uses")).json()["total"] == 0
