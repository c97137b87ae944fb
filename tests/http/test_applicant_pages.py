"""The applicant's portal pages: applying, following applications, grants with renewal and
close-out, API keys, the download page and the inbox — driven like a browser, CSRF and all."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from gateway.applications.deciding import act_as_applicant, decide
from gateway.applications.submitting import submit
from gateway.credentials.api_key_format import key_digest
from gateway.db.models import Account, ApiKey, Application, Closeout, Grant, Notification
from gateway.grants.lifecycle import request_closeouts
from gateway.grants.service import change_grant, create_grant
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.staging.recalls import recall
from gateway.staging.service import move_release
from stages.applications import ApplicationMove
from stages.grants import GrantMove
from stages.release import Move
from tests.grantees import MODEL, open_release
from tests.http.portal import HTML, Http, csrf_token
from tests.http.portal import submit as submit_form
from tests.sample import LICENSE_TEXT, publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
APPLY = "/models/acme/sample/apply"
DOWNLOAD = "/models/acme/sample/releases/1.0/download"
RESEARCHER = {
    "answer.affiliation": "Institute of Somewhere",
    "answer.country": "JP",
    "answer.research_purpose": "Measure how the model forgets.",
    "answer.agree_no_redistribution": "on",
}
PUBLIC = {"answer.intended_use": "research", "answer.agree_acceptable_use": "on"}
_SHA = re.compile(r'name="license_sha256" value="([0-9a-f]{64})"')
_SECRET = re.compile(r"rgk_[0-9A-Za-z]{28}")


# --- driving the portal ------------------------------------------------------------------


async def sign_up(client: Http, email: str = "ada@example.org") -> None:
    """A new account, signed in with its password (its address stays unconfirmed)."""
    response = await submit_form(
        client, "/sign-up", "/sign-up", {"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert "Check your email" in response.text
    signed_in = await submit_form(
        client, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD}
    )
    assert signed_in.status_code == 302, signed_in.text


async def sign_out(client: Http) -> None:
    await submit_form(client, "/account", "/sign-out", {})


async def apply(client: Http, tier: str, answers: dict[str, str], *, accept: bool = True) -> Any:
    page = await client.get(f"{APPLY}?tier={tier}", headers=HTML)
    assert page.status_code == 200, page.text
    sha = _SHA.search(page.text)
    assert sha
    fields = {**answers, "license_sha256": sha.group(1), "tier": tier}
    if accept:
        fields["accept_license"] = "on"
    token = await csrf_token(client, f"{APPLY}?tier={tier}")
    return await client.post(
        f"{APPLY}?tier={tier}", data={**fields, "_csrf_token": token}, headers=HTML
    )


async def applied(client: Http, tier: str, answers: dict[str, str]) -> str:
    """Apply and return the new application's id."""
    response = await apply(client, tier, answers)
    assert response.status_code == 302, response.text
    match = re.fullmatch(r"/applications/([\w-]+)\?done=applied", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


async def post(client: Http, page: str, action: str, fields: dict[str, Any]) -> Any:
    return await submit_form(client, page, action, fields)


async def account_id(rt: Runtime, email: str) -> str:
    async with rt.sessionmaker() as session:
        found = await session.scalar(select(Account.id).where(Account.email == email))
    assert found is not None
    return found


async def only_grant(rt: Runtime, email: str) -> Grant:
    async with rt.sessionmaker() as session:
        grant = await session.scalar(select(Grant).join(Account).where(Account.email == email))
    assert grant is not None
    return grant


def main(text: str) -> str:
    """The page without its header and footer (which show the email and so on)."""
    return text.split("<main", 1)[1].split("</main>", 1)[0]


def text_of(html: str) -> str:
    """The words of a piece of HTML, as one line: what a reader sees, without markup."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


class _Labels(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str | None] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        hidden = found.get("type") in ("hidden", "submit")
        if tag in ("input", "select", "textarea") and not hidden:
            self.controls.append(found.get("id"))


def assert_every_input_is_labelled(html: str) -> None:
    parser = _Labels()
    parser.feed(html)
    assert parser.controls, "no form controls on the page"
    unlabelled = [c for c in parser.controls if c is None or c not in parser.labelled]
    assert unlabelled == []


def assert_headings_in_order(html: str) -> None:
    levels = [int(level) for level in re.findall(r"<h([1-6])[\s>]", main(html))]
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in pairwise(levels)), levels


@pytest.fixture
async def public_release(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path, to="public")


# --- signing in ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (f"{APPLY}?tier=public", "/models/acme/sample/apply%3Ftier%3Dpublic"),
        ("/applications", "/applications"),
        ("/grants", "/grants"),
        ("/keys", "/keys"),
        ("/inbox", "/inbox"),
        (DOWNLOAD, DOWNLOAD),
    ],
)
async def test_every_applicant_page_asks_to_sign_in_first(
    client: Http, path: str, target: str
) -> None:
    response = await client.get(path, headers=HTML)
    assert response.status_code == 302
    assert response.headers["location"] == f"/sign-in?next={target}"


# --- applying ------------------------------------------------------------------------------


async def test_without_a_tier_the_page_lists_the_ladder(client: Http, public_release: None) -> None:
    await sign_up(client)
    page = await client.get(APPLY, headers=HTML)
    assert page.status_code == 200
    words = text_of(main(page.text))
    for title in ("Trusted partners", "Researchers", "Public"):
        assert title in words
    assert "Approved automatically as soon as you accept the license." in words
    assert "Every application is reviewed by hand by the release team within 10 days." in words
    for tier in ("trusted_partner", "researcher", "public"):
        assert f'href="{APPLY}?tier={tier}"' in page.text
    assert_headings_in_order(page.text)


def open_now_of(words: str, title: str) -> str:
    """What the tier picker says under "Open now" for the tier titled `title`."""
    return words.split(f"{title} You get", 1)[1].split("Open now ", 1)[1].split(":", 1)[0]


async def test_the_ladder_judges_each_tier_against_every_release(
    client: Http, runtime: Runtime, public_release: None, tmp_path: Path
) -> None:
    # 1.0 is public; 1.1 is newer but only with trusted partners; 1.2 is a draft.
    await publish(runtime, tmp_path, version="1.1")
    await within(
        runtime,
        lambda uow: move_release(
            uow, MODEL, "1.1", Move.PROMOTE, target="trusted_partner", actor="t"
        ),
    )
    await publish(runtime, tmp_path, version="1.2")
    await sign_up(client)
    words = text_of(main((await client.get(APPLY, headers=HTML)).text))
    assert "the newest release is acme/sample:1.2" in words
    assert open_now_of(words, "Public") == "yes"
    assert "Public You get" in words
    assert "yes: 1.0 is open to this tier" in words
    assert "yes: 1.1 is open to this tier" in words  # trusted partners: the newest open one
    assert "yes: 1.2" not in words
    # A recalled release is open to no one: with 1.0 recalled, the public waits again.
    await within(
        runtime,
        lambda uow: recall(uow, MODEL, "1.0", reason="a suspected leak", tier=None, actor="t"),
    )
    words = text_of(main((await client.get(APPLY, headers=HTML)).text))
    assert open_now_of(words, "Public") == "not yet"
    assert open_now_of(words, "Researchers") == "not yet"
    assert open_now_of(words, "Trusted partners") == "yes"


async def test_the_form_shows_the_tier_license_and_questions(
    client: Http, public_release: None
) -> None:
    await sign_up(client)
    page = await client.get(f"{APPLY}?tier=researcher", headers=HTML)
    assert page.status_code == 200
    html = main(page.text)
    words = text_of(html)
    assert "Researchers" in words
    assert "180 days" in words
    assert "*.edu" in words
    assert "reviewed within 14 days" in words
    assert "needs review: email not verified" in words  # what will happen to this account
    assert LICENSE_TEXT.strip().splitlines()[0] in html
    assert re.search(r'<textarea id="q-research_purpose" name="answer.research_purpose"', html)
    assert re.search(r'<input type="text" id="q-affiliation" name="answer.affiliation"', html)
    assert re.search(r'<input type="checkbox" id="q-agree_no_redistribution"', html)
    assert '<select id="q-country" name="answer.country"' in html
    # Countries are sorted by the name a reader sees, accents folded.
    assert html.index(">Afghanistan<") < html.index(">Åland Islands<") < html.index(">Albania<")
    assert "I have read and accept the license" in html
    assert _SHA.search(html)
    assert_every_input_is_labelled(html)
    assert_headings_in_order(page.text)


async def test_a_public_application_is_approved_at_once_and_the_grant_is_listed(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    application_id = await applied(client, "public", PUBLIC)
    detail = await client.get(f"/applications/{application_id}?done=applied", headers=HTML)
    words = text_of(main(detail.text))
    assert "your application was received" in words
    assert "Status approved" in words
    assert "You submitted the application" in words
    assert "The gateway approved it" in words
    assert "approved automatically on license acceptance" in words
    grants = await client.get("/grants", headers=HTML)
    assert grants.status_code == 200
    words = text_of(main(grants.text))
    assert "acme/sample: Public" in words
    assert re.search(r"\(36[45] days left\)", words)
    assert "model_card" in words
    assert "data_manifest" not in words
    assert f'href="{DOWNLOAD}"' in grants.text
    assert "You can ask to renew from" in words
    # Applying again while the grant is active is refused, with the answers kept.
    again = await apply(client, "public", PUBLIC)
    assert again.status_code == 409
    assert "you already have access at this tier" in again.text
    assert 'href="/grants"' in main(again.text)
    assert '<option value="research" selected>' in again.text


async def test_a_researcher_outside_the_allowed_domains_waits_for_review(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client, "ada@example.org")
    application_id = await applied(client, "researcher", RESEARCHER)
    listing = await client.get("/applications", headers=HTML)
    words = text_of(main(listing.text))
    assert "acme/sample" in words
    assert "Researchers" in words
    assert "submitted, waiting for review" in words
    assert "not yet" in words  # not decided
    assert f'href="/applications/{application_id}"' in listing.text
    detail = await client.get(f"/applications/{application_id}", headers=HTML)
    words = text_of(main(detail.text))
    assert "You submitted the application" in words
    assert "Reviews take up to 14 days" in words
    assert "Country Japan (JP)" in words
    assert "Research purpose Measure how the model forgets." in words
    assert "I will not share the weights outside my research group yes" in words
    sha = _SHA.search((await client.get(f"{APPLY}?tier=researcher", headers=HTML)).text)
    assert sha
    assert sha.group(1) in words
    assert "Withdraw this application" in words
    assert_headings_in_order(detail.text)
    async with runtime.sessionmaker() as session:
        stored = await session.get(Application, application_id)
    assert stored is not None
    assert stored.status == "submitted"
    assert stored.answers["agree_no_redistribution"] is True


async def test_a_refused_form_says_what_is_wrong_next_to_each_field_and_keeps_the_values(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    answers = {**RESEARCHER, "answer.research_purpose": "   "}
    del answers["answer.agree_no_redistribution"]
    response = await apply(client, "researcher", answers)
    assert response.status_code == 400
    html = main(response.text)
    purpose = html.split('id="q-research_purpose-error"', 1)
    assert len(purpose) == 2
    assert purpose[1].split("</p>", 1)[0].endswith("Research purpose is required")
    assert 'aria-describedby="q-research_purpose-help q-research_purpose-error"' in html
    assert "You must tick" in html.split('id="q-agree_no_redistribution-error"', 1)[1]
    assert 'value="Institute of Somewhere"' in html
    assert '<option value="JP" selected>' in html
    assert "<title>Error:" in response.text
    # The license must be accepted too; every problem is told at once.
    unaccepted = await apply(client, "researcher", RESEARCHER, accept=False)
    assert unaccepted.status_code == 400
    error = main(unaccepted.text).split('id="accept-license-error"', 1)[1]
    assert "You must accept the license to apply" in error.split("</p>", 1)[0]
    # A license that changed since the page was read is refused without ticking the box.
    token = await csrf_token(client, f"{APPLY}?tier=researcher")
    stale = await client.post(
        f"{APPLY}?tier=researcher",
        data={
            **RESEARCHER,
            "accept_license": "on",
            "license_sha256": "0" * 64,
            "_csrf_token": token,
        },
        headers=HTML,
    )
    assert stale.status_code == 409
    assert "the license you accepted is not the current one" in stale.text
    assert 'name="accept_license" required checked' not in stale.text
    listing = await client.get("/applications", headers=HTML)
    assert "You have not applied for anything yet" in listing.text


async def test_an_application_can_be_withdrawn_after_a_confirmation(
    client: Http, public_release: None
) -> None:
    await sign_up(client)
    application_id = await applied(client, "researcher", RESEARCHER)
    confirm = await client.get(f"/applications/{application_id}/withdraw", headers=HTML)
    assert confirm.status_code == 200
    assert "Withdraw your application?" in confirm.text
    assert_every_input_is_labelled(main(confirm.text))
    done = await post(
        client,
        f"/applications/{application_id}/withdraw",
        f"/applications/{application_id}/withdraw",
        {"reason": "found another model"},
    )
    assert done.status_code == 302
    assert done.headers["location"] == f"/applications/{application_id}?done=withdrawn"
    detail = await client.get(done.headers["location"], headers=HTML)
    words = text_of(main(detail.text))
    assert "Your application was withdrawn." in words
    assert "Status withdrawn" in words
    assert "You withdrew it" in words
    assert "Reason: found another model" in words
    assert "Withdraw this application" not in words
    again = await post(
        client,
        f"/applications/{application_id}",
        f"/applications/{application_id}/withdraw",
        {},
    )
    assert again.status_code == 409
    assert "cannot withdraw an application that is withdrawn" in again.text
    # A withdrawn application does not block a new one.
    assert await applied(client, "researcher", RESEARCHER) != application_id


async def test_another_accounts_application_is_not_found(
    client: Http, public_release: None
) -> None:
    await sign_up(client, "ada@example.org")
    application_id = await applied(client, "researcher", RESEARCHER)
    await sign_out(client)
    await sign_up(client, "eve@example.org")
    seen = await client.get(f"/applications/{application_id}", headers=HTML)
    assert seen.status_code == 404
    assert "Measure how the model forgets" not in seen.text
    assert (
        await client.get(f"/applications/{application_id}/withdraw", headers=HTML)
    ).status_code == 404
    withdrawn = await post(client, "/applications", f"/applications/{application_id}/withdraw", {})
    assert withdrawn.status_code == 404
    resubmitted = await post(
        client, "/applications", f"/applications/{application_id}/resubmit", RESEARCHER
    )
    assert resubmitted.status_code == 404
    listing = await client.get("/applications", headers=HTML)
    assert application_id not in listing.text


async def test_changes_requested_are_answered_on_the_page_and_a_denial_shows_its_reason(
    client: Http, public_release: None, runtime: Runtime
) -> None:
    await sign_up(client)
    application_id = await applied(client, "researcher", RESEARCHER)
    await within(
        runtime,
        lambda uow: decide(
            uow,
            application_id,
            ApplicationMove.REQUEST_CHANGES,
            operator="operator:op@acme.example",
            reason="Say which lab you work in",
        ),
    )
    page = f"/applications/{application_id}"
    detail = await client.get(page, headers=HTML)
    words = text_of(main(detail.text))
    assert "changes requested: your answer is needed" in words
    assert "An operator asked for changes" in words
    assert "Say which lab you work in" in words
    assert "Please answer by" in words
    assert 'value="Institute of Somewhere"' in detail.text  # the form starts from the answers
    assert_every_input_is_labelled(main(detail.text))
    empty = await post(client, page, f"{page}/resubmit", {"answer.affiliation": "Lab 7"})
    assert empty.status_code == 400
    assert "Research purpose is required" in empty.text
    assert 'value="Lab 7"' in empty.text
    fixed = await post(
        client, page, f"{page}/resubmit", {**RESEARCHER, "answer.affiliation": "Lab 7"}
    )
    assert fixed.status_code == 302
    words = text_of(main((await client.get(page, headers=HTML)).text))
    assert "You sent changed answers" in words
    assert "Affiliation Lab 7" in words
    assert "Status submitted, waiting for review" in words
    await within(
        runtime,
        lambda uow: decide(
            uow,
            application_id,
            ApplicationMove.DENY,
            operator="operator:op@acme.example",
            reason="Not a research use",
        ),
    )
    words = text_of(main((await client.get(page, headers=HTML)).text))
    assert "An operator denied it" in words
    assert "Reason for the denial Not a research use" in words
    cooling = await apply(client, "researcher", RESEARCHER)
    assert cooling.status_code == 409
    assert "you may apply again from" in cooling.text


# --- grants: renewal and close-out --------------------------------------------------------


async def test_a_grant_is_renewed_with_a_usage_report_inside_its_window(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    await applied(client, "public", PUBLIC)
    grant = await only_grant(runtime, "ada@example.org")
    early = await post(client, "/grants", f"/grants/{grant.id}/renew", {"usage_report": "used it"})
    assert early.status_code == 409
    assert "renewal of this grant is open from" in early.text
    app_runtime: Runtime = client.app.state.runtime
    later = runtime.clock() + timedelta(days=350)
    app_runtime.clock = lambda: later
    grants = await client.get("/grants", headers=HTML)
    assert "Renew this grant" in grants.text
    assert re.search(r"\((14|15) days left\)", text_of(grants.text))
    assert_every_input_is_labelled(main(grants.text))
    missing = await post(client, "/grants", f"/grants/{grant.id}/renew", {"accept_license": "on"})
    assert missing.status_code == 400
    assert "Tell us briefly how you used the weights" in missing.text
    assert "Renew your access to acme/sample" in missing.text
    nul = await post(
        client,
        "/grants",
        f"/grants/{grant.id}/renew",
        {"usage_report": "used\x00", "accept_license": "on"},
    )
    assert nul.status_code == 400
    assert "The usage report contains a control character (U+0000)" in nul.text
    page = (await client.get("/grants", headers=HTML)).text
    sha = _SHA.search(page)
    assert sha
    renewed = await post(
        client,
        "/grants",
        f"/grants/{grant.id}/renew",
        {
            "usage_report": "Teaching a course",
            "accept_license": "on",
            "license_sha256": sha.group(1),
        },
    )
    assert renewed.status_code == 302, renewed.text
    assert renewed.headers["location"].endswith("?done=renewal")
    detail = await client.get(renewed.headers["location"], headers=HTML)
    words = text_of(main(detail.text))
    assert "renewal" in words
    assert "Usage report Teaching a course" in words
    assert "Intended use research" in words  # the earlier answers were sent again
    after = await only_grant(runtime, "ada@example.org")
    assert after.id == grant.id
    assert after.expires_at == grant.expires_at + timedelta(days=365)


async def test_the_renewal_page_asks_the_questions_when_there_are_no_earlier_answers(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    # An operator's grant has no application behind it.
    grant = await within(
        runtime,
        lambda uow: create_grant(
            uow, email="ada@example.org", model=MODEL, tier="public", days=10, actor="op"
        ),
    )
    form = await client.get(f"/grants/{grant.id}/renew", headers=HTML)
    assert form.status_code == 200
    assert_every_input_is_labelled(main(form.text))
    sha = _SHA.search(form.text)
    assert sha
    short = await post(
        client,
        "/grants",
        f"/grants/{grant.id}/renew",
        {"usage_report": "a demo", "accept_license": "on", "license_sha256": sha.group(1)},
    )
    assert short.status_code == 400
    assert "Intended use is required" in short.text
    full = await post(
        client,
        f"/grants/{grant.id}/renew",
        f"/grants/{grant.id}/renew",
        {
            "with_answers": "1",
            "usage_report": "a demo",
            "accept_license": "on",
            "license_sha256": sha.group(1),
            **PUBLIC,
        },
    )
    assert full.status_code == 302, full.text


async def test_an_ended_grant_asks_for_a_deletion_statement(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    await applied(client, "public", PUBLIC)
    grant = await only_grant(runtime, "ada@example.org")
    await within(
        runtime,
        lambda uow: change_grant(uow, grant.id, GrantMove.REVOKE, reason="misuse", actor="op"),
    )
    await within(runtime, request_closeouts)
    page = await client.get("/grants", headers=HTML)
    words = text_of(main(page.text))
    assert "Status revoked (misuse)" in words
    assert "Confirm that you deleted the weights" in words
    assert f'href="{DOWNLOAD}"' not in page.text
    assert_every_input_is_labelled(main(page.text))
    async with runtime.sessionmaker() as session:
        closeout = await session.scalar(select(Closeout).where(Closeout.grant_id == grant.id))
    assert closeout is not None
    action = f"/closeouts/{closeout.id}/attest"
    unticked = await post(client, "/grants", action, {"statement": "wiped the server"})
    assert unticked.status_code == 400
    assert "I have deleted all copies of the weights" in unticked.text
    assert "wiped the server</textarea>" in unticked.text
    blank = await post(client, "/grants", action, {"statement": " ", "deleted": "on"})
    assert blank.status_code == 400
    assert "say briefly how the copies were deleted" in blank.text
    nul = await post(client, "/grants", action, {"statement": "gone\x00", "deleted": "on"})
    assert nul.status_code == 400
    assert "The statement contains a control character" in nul.text
    done = await post(client, "/grants", action, {"statement": "wiped the server", "deleted": "on"})
    assert done.status_code == 302
    assert done.headers["location"] == "/grants?done=attested"
    words = text_of(main((await client.get("/grants?done=attested", headers=HTML)).text))
    assert "your deletion statement was recorded" in words
    assert "You attested on" in words
    twice = await post(client, "/grants", action, {"statement": "again", "deleted": "on"})
    assert twice.status_code == 409
    assert (
        await post(client, "/grants", "/closeouts/nope/attest", {"statement": "x", "deleted": "on"})
    ).status_code == 404


# --- API keys ---------------------------------------------------------------------------


async def test_a_key_is_shown_once_and_can_be_revoked(client: Http, runtime: Runtime) -> None:
    await sign_up(client)
    form = await client.get("/keys", headers=HTML)
    assert "You have no API keys yet" in form.text
    assert 'value="admin"' not in form.text  # never offered to a non-operator
    assert "90 days unless you choose otherwise, at most 365" in text_of(form.text)
    assert_every_input_is_labelled(main(form.text))
    created = await post(
        client,
        "/keys",
        "/keys",
        {"name": "lab server", "scopes": ["download", "keys"], "days": "30"},
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = _SECRET.search(created.text)
    assert secret
    assert "only time it is shown" in created.text
    listing = await client.get("/keys", headers=HTML)
    assert secret.group(0) not in listing.text
    assert secret.group(0)[:12] in listing.text
    words = text_of(main(listing.text))
    assert "lab server download, keys" in words
    assert "never active" in words
    # The key is real: the gateway keeps its hash, for this account.
    async with runtime.sessionmaker() as session:
        stored = await session.scalar(
            select(ApiKey).where(ApiKey.secret_sha256 == key_digest(secret.group(0)))
        )
    assert stored is not None
    assert stored.account_id == await account_id(runtime, "ada@example.org")
    assert stored.revoked_at is None
    key_id = re.search(r'action="/keys/([\w-]+)/revoke"', listing.text)
    assert key_id
    revoked = await post(client, "/keys", f"/keys/{key_id.group(1)}/revoke", {})
    assert revoked.status_code == 302
    assert revoked.headers["location"] == "/keys?done=revoked"
    words = text_of(main((await client.get("/keys?done=revoked", headers=HTML)).text))
    assert "The key was revoked." in words
    assert "revoked on" in words
    async with runtime.sessionmaker() as session:
        after = await session.get(ApiKey, stored.id)
    assert after is not None
    assert after.revoked_at is not None
    assert (await post(client, "/keys", "/keys/nope/revoke", {})).status_code == 404


async def test_the_new_key_page_has_a_copy_button_run_by_a_static_script(
    client: Http,
) -> None:
    await sign_up(client)
    created = await post(client, "/keys", "/keys", {"name": "laptop", "scopes": "download"})
    assert created.status_code == 201
    secret = _SECRET.search(created.text)
    assert secret
    page = main(created.text)
    # The button copies the element that holds the key; hidden until the script runs.
    assert f'<code id="new-key">{secret.group(0)}</code>' in page
    button = re.search(r"<button [^>]*data-copy=\"new-key\"[^>]*>", page)
    assert button
    assert " hidden" in button.group(0)
    assert 'data-copy-status="copy-status"' in button.group(0)
    assert '<span id="copy-status" role="status"></span>' in page
    assert '<script src="/static/copy.js" defer></script>' in page
    script = await client.get("/static/copy.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "navigator.clipboard.writeText" in script.text
    assert "getElementById(button.dataset.copy)" in script.text
    # The key is in the page only, never in the script or its address.
    assert secret.group(0) not in script.text


async def test_key_refusals_keep_the_form(client: Http) -> None:
    await sign_up(client)
    admin = await post(client, "/keys", "/keys", {"name": "root", "scopes": "admin"})
    assert admin.status_code == 400
    assert "only operators may hold keys with the &#39;admin&#39; scope" in admin.text
    assert 'value="root"' in admin.text
    too_long = await post(client, "/keys", "/keys", {"scopes": "download", "days": "999"})
    assert too_long.status_code == 400
    assert "a key may live 1 to 365 days" in too_long.text
    nonsense = await post(client, "/keys", "/keys", {"scopes": "download", "days": "soon"})
    assert nonsense.status_code == 400
    assert "a whole number of days" in nonsense.text
    none = await post(client, "/keys", "/keys", {"name": "x"})
    assert none.status_code == 400
    assert "at least one scope is needed" in none.text
    # Every refused field at once, each beside its field, with what was typed.
    both = await post(client, "/keys", "/keys", {"name": "n\x01", "days": "0"})
    assert both.status_code == 400
    errors = dict(
        re.findall(
            r'id="f-(\w+)-error"><span class="visually-hidden">Error: </span>([^<]+)<', both.text
        )
    )
    assert set(errors) == {"name", "scopes", "days"}
    assert "control character (U+0001)" in errors["name"]
    assert "at least one scope is needed" in errors["scopes"]
    assert "a key may live 1 to 365 days" in errors["days"]
    assert 'value="0"' in both.text
    assert _SECRET.search((await client.get("/keys", headers=HTML)).text) is None


# --- the download page ------------------------------------------------------------------


async def test_the_download_page_gives_a_grantee_working_links(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    await applied(client, "public", PUBLIC)
    page = await client.get(DOWNLOAD, headers=HTML)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    words = text_of(main(page.text))
    assert "Links expire at" in words
    assert re.search(r"in about 1[45] minutes", words)  # the public tier's URLs live 900 s
    assert "gateway download acme/sample:1.0 --server http://testserver" in words
    assert "GATEWAY_API_KEY" in words
    assert 'href="/keys"' in page.text
    assert "model_signing verify key sample-1.0" in words
    links = dict(
        re.findall(
            r'<a href="(http://testserver/d/[^"]+)" download rel="noreferrer">([^<]+)</a>',
            page.text,
        )
    )
    assert sorted(links.values()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "modeling.py",
        "notes.txt",
        "shards/model-00002.safetensors",
    ]
    readme = next(url for url, path in links.items() if path == "README.md")
    response = await client.get(readme.removeprefix("http://testserver"))
    if response.status_code == 302:  # S3 storage: the gateway sends the client on
        response = httpx2.get(response.headers["location"])  # type: ignore[assignment]
    assert response.status_code == 200
    assert response.content == b"# Sample model\n"


async def test_the_download_page_tells_others_why_not(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    await sign_up(client)
    refused = await client.get(DOWNLOAD, headers=HTML)
    assert refused.status_code == 403
    words = text_of(main(refused.text))
    assert "you have no access grant for acme/sample:1.0" in words
    assert f'href="{APPLY}"' in refused.text
    assert "/d/" not in refused.text
    # Public access is granted at once, but the release is not open to the public yet.
    await applied(client, "public", PUBLIC)
    not_yet = await client.get(DOWNLOAD, headers=HTML)
    assert not_yet.status_code == 403
    assert "acme/sample:1.0 is not open to the public tier yet" in not_yet.text
    grants = await client.get("/grants", headers=HTML)
    assert "No release of acme/sample is open to this tier yet" in grants.text


# --- the inbox ----------------------------------------------------------------------------


async def test_the_inbox_lists_notifications_newest_first_and_marks_them_read(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    await applied(client, "public", PUBLIC)
    inbox = await client.get("/inbox", headers=HTML)
    words = text_of(main(inbox.text))
    assert "Your application was approved" in words
    assert words.index("Your application was approved") < words.index("Confirm your email")
    assert "0 unread" not in words
    assert "unread" in words
    read = await post(client, "/inbox", "/inbox/read-all", {})
    assert read.status_code == 302
    words = text_of(main((await client.get("/inbox?done=read", headers=HTML)).text))
    assert "0 unread" in words
    assert "Every notification is marked as read." in words
    owner = await account_id(runtime, "ada@example.org")
    async with writing(runtime) as session:
        for n in range(25):
            notify(
                session,
                runtime.settings,
                account_id=owner,
                kind="test",
                subject=f"note {n}",
                body="body",
                link=None,
                now=runtime.clock() + timedelta(minutes=n + 1),
            )
    first = text_of(main((await client.get("/inbox", headers=HTML)).text))
    assert "Page 1 of 2" in first
    assert first.index("note 24") < first.index("note 23")
    second = text_of(main((await client.get("/inbox?page=2", headers=HTML)).text))
    assert "Your application was approved" in second
    async with runtime.sessionmaker() as session:
        unread = await session.scalar(
            select(Notification).where(Notification.read_at.is_(None), Notification.kind != "test")
        )
    assert unread is None


async def test_my_applications_are_listed_newest_first_a_page_at_a_time(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    await sign_up(client)
    owner = await account_id(runtime, "ada@example.org")
    page = await client.get(f"{APPLY}?tier=researcher", headers=HTML)
    sha = _SHA.search(page.text)
    assert sha
    answers = {name.removeprefix("answer."): value for name, value in RESEARCHER.items()}
    start = runtime.clock()
    moment = [start]
    runtime.clock = lambda: moment[0]
    ids = []
    for n in range(23):
        moment[0] = start + timedelta(minutes=n)
        application = await within(
            runtime,
            lambda uow: submit(
                uow,
                account_id=owner,
                model=MODEL,
                tier="researcher",
                answers={**answers, "agree_no_redistribution": True},
                license_sha256=sha.group(1),
                address=None,
            ),
        )
        ids.append(application.id)
        if n < 22:  # one open application per tier at a time
            await within(
                runtime,
                lambda uow, made=application.id: act_as_applicant(
                    uow, owner, made, ApplicationMove.WITHDRAW
                ),
            )
    newest_first = list(reversed(ids))
    first = await client.get("/applications", headers=HTML)
    assert "Page 1 of 2" in first.text
    assert "23 applications, newest first" in first.text
    assert re.findall(r'href="/applications/([\w-]+)"', main(first.text)) == newest_first[:20]
    second = await client.get("/applications?page=2", headers=HTML)
    assert re.findall(r'href="/applications/([\w-]+)"', main(second.text)) == newest_first[20:]
    beyond = await client.get("/applications?page=3", headers=HTML)
    assert beyond.status_code == 200
    assert "Nothing on this page" in beyond.text


# --- bad input never fails the server ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        (f"{APPLY}?tier=emperor", 400, "unknown tier &#39;emperor&#39;"),
        ("/models/acme/nothing/apply?tier=public", 404, "no model acme/nothing"),
        ("/models/acme/nothing/apply", 404, "no model acme/nothing"),
        ("/models/-acme-/sample/apply?tier=public", 400, "invalid model name"),
        ("/models/acme/sample/releases/9.9/download", 404, "no release acme/sample:9.9"),
        ("/models/acme/nothing/releases/1.0/download", 404, "no model acme/nothing"),
        ("/applications/nope", 404, "no application nope"),
        ("/applications?page=0", 400, "invalid request"),
        ("/inbox?page=abc", 400, "invalid request"),
        ("/grants/nope/renew", 404, "no grant nope"),
    ],
)
async def test_bad_input_gets_an_error_page_not_a_crash(
    client: Http, public_release: None, path: str, status: int, words: str
) -> None:
    await sign_up(client)
    response = await client.get(path, headers=HTML)
    assert response.status_code == status
    assert words in response.text
    assert "<h1>" in response.text


async def test_a_post_without_a_tier_is_refused(client: Http, public_release: None) -> None:
    await sign_up(client)
    response = await post(client, f"{APPLY}?tier=public", APPLY, {"accept_license": "on"})
    assert response.status_code == 400


async def test_control_characters_are_refused_before_anything_is_stored(
    client: Http, runtime: Runtime, public_release: None
) -> None:
    # PostgreSQL cannot store NUL: such text must be a 400 with a message, never a 500.
    await sign_up(client)
    key = await post(client, "/keys", "/keys", {"name": "lab\x00", "scopes": "download"})
    assert key.status_code == 400
    assert "The name contains a control character (U+0000)" in key.text
    answer = await apply(client, "researcher", {**RESEARCHER, "answer.affiliation": "Lab\x00"})
    assert answer.status_code == 400
    assert "Affiliation contains a control character (U+0000)" in answer.text
    application_id = await applied(client, "researcher", RESEARCHER)
    page = f"/applications/{application_id}"
    reason = await post(client, page, f"{page}/withdraw", {"reason": "bye\x00"})
    assert reason.status_code == 400
    assert "The reason contains a control character (U+0000)" in reason.text
    assert "Status submitted, waiting for review" in text_of(main(reason.text))
    async with runtime.sessionmaker() as session:
        keys = (await session.scalars(select(ApiKey))).all()
    assert keys == []
