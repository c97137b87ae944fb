"""Enforcement in the portal: the account's standing page and its one appeal per action;
the operators' appeals queue, account pages with the suggested step, and who may see them
— driven like a browser, CSRF and all."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import Account, Appeal, EnforcementAction
from gateway.enforcement import appeals, service
from gateway.enforcement.pages import EnforcementPages, account_link
from gateway.identity.passwords import hash_password
from gateway.runtime import Runtime
from stages.enforcement import AppealMove, EnforcementStep
from tests.accounts import create_account
from tests.http.portal import HTML, Http, csrf_token, submit
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
BOB = "bob@example.org"
OPS = "ops@example.org"
STANDING = "/account/standing"
_APPEAL_FORM = re.compile(r'action="/account/standing/([0-9a-f-]{36})/appeal"')


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Http]:
    # The controller may not be wired into the app factory yet: register it if it is not.
    app = create_app(settings=settings)
    if not any(route.path == STANDING for route in app.routes):
        app.register(EnforcementPages)
    async with AsyncTestClient(app=app) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def make_account(rt: Runtime, email: str, *, operator: bool = False) -> str:
    account = await create_account(rt, email, operator=operator, actor="t")
    async with writing(rt) as session:
        row = await session.get(Account, account.id)
        assert row is not None
        row.password_hash = hash_password(PASSWORD)
    return account.id


async def sign_in(client: Http, email: str) -> None:
    signed = await submit(
        client, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD, "next": "/account"}
    )
    assert signed.status_code == 302, signed.text


async def sign_out(client: Http) -> None:
    await submit(client, "/account", "/sign-out", {})


async def act(
    rt: Runtime, step: EnforcementStep, email: str = BOB, reason: str = "shared a download link"
) -> EnforcementAction:
    return await within(
        rt,
        lambda uow: service.enforce(
            uow, email=email, step=step, reason=reason, days=None, incident_id=None, actor="op"
        ),
    )


async def status_of(rt: Runtime, email: str) -> str:
    async with rt.sessionmaker() as session:
        status = await session.scalar(select(Account.status).where(Account.email == email))
    assert status is not None
    return status


def set_clock(client: Http, moment: Any) -> None:
    client.app.state.runtime.clock = lambda: moment


# --- the account's standing -------------------------------------------------------------


async def test_the_account_sees_each_action_and_appeals_it_once(
    client: Http, runtime: Runtime
) -> None:
    bob = await make_account(runtime, BOB)
    warned = await act(runtime, EnforcementStep.WARN, reason="shared a <b>download</b> link")
    await sign_in(client, BOB)

    page = await client.get(STANDING, headers=HTML)
    assert page.status_code == 200
    assert "Warning of" in page.text
    assert "shared a &lt;b&gt;download&lt;/b&gt; link" in page.text  # escaped, never markup
    assert _APPEAL_FORM.findall(page.text) == [warned.id]
    assert f"{warned.appeal_until:%Y-%m-%d %H:%M} UTC" in page.text

    blank = await submit(client, STANDING, f"{STANDING}/{warned.id}/appeal", {"statement": " "})
    assert blank.status_code == 400
    assert "the statement is required" in blank.text

    sent = await submit(
        client, STANDING, f"{STANDING}/{warned.id}/appeal", {"statement": "It was my lab's mirror"}
    )
    assert sent.status_code == 302
    assert sent.headers["location"] == f"{STANDING}?done=appealed"
    after = await client.get(f"{STANDING}?done=appealed", headers=HTML)
    assert "Your appeal was sent" in after.text
    assert "It was my lab&#39;s mirror" in after.text
    assert "waiting for an operator" in after.text
    assert _APPEAL_FORM.findall(after.text) == []

    again = await submit(client, STANDING, f"{STANDING}/{warned.id}/appeal", {"statement": "2"})
    assert again.status_code == 409
    assert "already appealed" in again.text
    async with runtime.sessionmaker() as session:
        appeals = (await session.scalars(select(Appeal))).all()
    assert [(a.account_id, a.statement) for a in appeals] == [(bob, "It was my lab's mirror")]


async def test_a_suspended_account_sees_why_and_a_closed_window_has_no_form(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, BOB)
    suspended = await act(runtime, EnforcementStep.SUSPEND, reason="mass downloading")
    await sign_in(client, BOB)
    page = await client.get(STANDING, headers=HTML)
    assert "suspended" in page.text
    assert "mass downloading" in page.text
    assert f"{suspended.ends_at:%Y-%m-%d %H:%M} UTC" in page.text
    assert _APPEAL_FORM.findall(page.text) == [suspended.id]

    set_clock(client, suspended.appeal_until + timedelta(minutes=1))
    closed = await client.get(STANDING, headers=HTML)
    assert _APPEAL_FORM.findall(closed.text) == []
    assert "the appeal window closed" in closed.text
    late = await submit(
        client, STANDING, f"{STANDING}/{suspended.id}/appeal", {"statement": "too late"}
    )
    assert late.status_code == 409
    assert "the appeal window closed" in late.text


async def test_another_accounts_action_is_not_found_and_signed_out_visitors_sign_in(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, BOB)
    await make_account(runtime, "cy@example.org")
    warned = await act(runtime, EnforcementStep.WARN)
    signed_out = await client.get(STANDING, headers=HTML)
    assert signed_out.status_code == 302
    assert signed_out.headers["location"] == f"/sign-in?next={STANDING}"

    await sign_in(client, "cy@example.org")
    empty = await client.get(STANDING, headers=HTML)
    assert "There are no warnings" in empty.text
    stolen = await submit(
        client, STANDING, f"{STANDING}/{warned.id}/appeal", {"statement": "bob's, not mine"}
    )
    assert stolen.status_code == 404
    token = await csrf_token(client, STANDING)
    no_csrf = await client.post(
        f"{STANDING}/{warned.id}/appeal", data={"statement": "x"}, headers=HTML
    )
    assert no_csrf.status_code == 403
    assert token  # the page carries a token; the post without it is refused
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(Appeal))).all() == []


# --- operators --------------------------------------------------------------------------


async def test_operators_decide_appeals_and_others_may_not(client: Http, runtime: Runtime) -> None:
    bob = await make_account(runtime, BOB)
    await make_account(runtime, OPS, operator=True)
    suspended = await act(runtime, EnforcementStep.SUSPEND, reason="scraping")
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, bob, suspended.id, "a misconfigured mirror", None)
    )

    await sign_in(client, BOB)
    forbidden = await client.get("/ops/appeals", headers=HTML)
    assert forbidden.status_code == 403
    refused = await submit(
        client,
        STANDING,
        f"/ops/appeals/{filed.id}/decide",
        {"move": "overturn", "reason": "self-service"},
    )
    assert refused.status_code == 403
    await sign_out(client)

    await sign_in(client, OPS)
    queue = await client.get("/ops/appeals", headers=HTML)
    assert queue.status_code == 200
    assert "a misconfigured mirror" in queue.text
    assert "scraping" in queue.text
    assert f'action="/ops/appeals/{filed.id}/decide"' in queue.text
    assert queue.text.count('name="_csrf_token"') >= 3  # sign-out, uphold, overturn

    no_reason = await submit(
        client, "/ops/appeals", f"/ops/appeals/{filed.id}/decide", {"move": "overturn"}
    )
    assert no_reason.status_code == 400
    assert "the reason is required" in no_reason.text
    unknown = await submit(
        client, "/ops/appeals", f"/ops/appeals/{filed.id}/decide", {"move": "pardon", "reason": "x"}
    )
    assert unknown.status_code == 400
    assert "unknown decision" in unknown.text
    missing = await submit(
        client, "/ops/appeals", "/ops/appeals/no-such/decide", {"move": "uphold", "reason": "x"}
    )
    assert missing.status_code == 404
    assert await status_of(runtime, BOB) == "suspended"

    done = await submit(
        client,
        "/ops/appeals",
        f"/ops/appeals/{filed.id}/decide",
        {"move": "overturn", "reason": "we run that mirror"},
    )
    assert done.status_code == 302
    assert done.headers["location"] == "/ops/appeals?done=overturn"
    assert await status_of(runtime, BOB) == "active"
    emptied = await client.get("/ops/appeals?done=overturn", headers=HTML)
    assert "the action was overturned" in emptied.text
    assert "No appeal is waiting" in emptied.text
    twice = await submit(
        client,
        "/ops/appeals",
        f"/ops/appeals/{filed.id}/decide",
        {"move": "uphold", "reason": "changed mind"},
    )
    assert twice.status_code == 409
    assert "the decision is final" in twice.text


async def test_the_account_page_suggests_a_step_and_acts(client: Http, runtime: Runtime) -> None:
    await make_account(runtime, BOB)
    await make_account(runtime, OPS, operator=True)
    await act(runtime, EnforcementStep.WARN, reason="first strike")
    await sign_in(client, OPS)
    page_path = f"/ops/accounts/{BOB}"

    page = await client.get(page_path, headers=HTML)
    assert page.status_code == 200
    assert "The policy suggests <strong>suspend</strong>: after a warn comes suspend" in page.text
    assert 'value="suspend" checked' in page.text
    assert "first strike" in page.text

    bad_days = await submit(
        client, page_path, f"{page_path}/enforce", {"step": "suspend", "reason": "x", "days": "-3"}
    )
    assert bad_days.status_code == 400
    assert "whole number" in bad_days.text
    assert await status_of(runtime, BOB) == "active"

    suspended = await submit(
        client,
        page_path,
        f"{page_path}/enforce",
        {"step": "suspend", "reason": "second strike", "days": "5"},
    )
    assert suspended.status_code == 302, suspended.text
    assert suspended.headers["location"] == f"{page_path}?done=suspend"
    assert await status_of(runtime, BOB) == "suspended"
    shown = await client.get(f"{page_path}?done=suspend", headers=HTML)
    assert "the account is suspended" in shown.text
    assert "(in force)" in shown.text
    assert f'action="{page_path}/lift"' in shown.text
    assert 'value="suspend"' not in shown.text  # no longer a legal step

    again = await submit(
        client, page_path, f"{page_path}/enforce", {"step": "suspend", "reason": "third"}
    )
    assert again.status_code == 409
    assert "it is already suspended" in again.text

    lifted = await submit(client, page_path, f"{page_path}/lift", {"reason": "resolved"})
    assert lifted.status_code == 302
    assert await status_of(runtime, BOB) == "active"
    not_suspended = await submit(client, page_path, f"{page_path}/lift", {"reason": "again"})
    assert not_suspended.status_code == 409
    assert "only a suspension can be lifted" in not_suspended.text

    listing = await client.get(f"/ops/accounts?email={BOB}", headers=HTML)
    assert listing.status_code == 302
    assert listing.headers["location"] == page_path
    unknown = await client.get("/ops/accounts/nobody@example.org", headers=HTML)
    assert unknown.status_code == 404


async def test_the_accounts_page_lists_accounts_under_enforcement(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, BOB)
    await make_account(runtime, "cy@example.org")
    await make_account(runtime, OPS, operator=True)
    await act(runtime, EnforcementStep.TERMINATE, reason="leaked the weights")
    await sign_in(client, "cy@example.org")
    assert (await client.get("/ops/accounts", headers=HTML)).status_code == 403
    await sign_out(client)
    await sign_in(client, OPS)
    page = await client.get("/ops/accounts?standing=terminated", headers=HTML)
    assert page.status_code == 200
    assert f'href="/ops/accounts/{BOB}"' in page.text
    assert "leaked the weights" in page.text
    assert "cy@example.org" not in page.text
    terminated = await client.get(f"/ops/accounts/{BOB}", headers=HTML)
    assert "No step is open" in terminated.text
    assert "No further step" in terminated.text


async def test_an_operator_cannot_overturn_their_own_termination(
    client: Http, runtime: Runtime
) -> None:
    ops = await make_account(runtime, OPS, operator=True)
    ended = await act(runtime, EnforcementStep.TERMINATE, OPS)
    filed = await within(
        runtime, lambda uow: appeals.appeal(uow, ops, ended.id, "let me back in", None)
    )
    await sign_in(client, OPS)
    refused = await submit(
        client,
        "/ops/appeals",
        f"/ops/appeals/{filed.id}/decide",
        {"move": "overturn", "reason": "I say so"},
    )
    # A terminated operator is no longer an operator to the console at all.
    assert refused.status_code == 403
    assert "your account is terminated" in refused.text
    assert await status_of(runtime, OPS) == "terminated"
    await within(
        runtime,
        lambda uow: appeals.decide_appeal(uow, filed.id, AppealMove.UPHOLD, "no", "another-op"),
    )


async def test_an_email_with_unusual_characters_has_a_working_page(
    client: Http, runtime: Runtime
) -> None:
    odd = "o'neil+lab%1@example.org"
    await make_account(runtime, odd)
    await make_account(runtime, OPS, operator=True)
    await act(runtime, EnforcementStep.SUSPEND, odd, reason="odd one")
    await sign_in(client, OPS)
    listing = await client.get("/ops/accounts", headers=HTML)
    link = account_link(odd)
    assert f'href="{link}"' in listing.text
    page = await client.get(link, headers=HTML)
    assert page.status_code == 200, page.text
    lifted = await submit(client, link, f"{link}/lift", {"reason": "fine"})
    assert lifted.status_code == 302
    assert lifted.headers["location"] == f"{link}?done=lift"
    assert await status_of(runtime, odd) == "active"


def listed(page: str) -> list[str]:
    """The accounts a listing page shows, in its order."""
    return re.findall(r'<td><a href="/ops/accounts/[^"]+">([^<]+)</a></td>', page)


async def test_the_console_lists_and_searches_every_account(client: Http, runtime: Runtime) -> None:
    await make_account(runtime, OPS, operator=True)
    for number in range(55):
        await make_account(runtime, f"user{number:02d}@uni.example")
    await make_account(runtime, "ada_lovelace@math.example")
    await make_account(runtime, "adaXlovelace@math.example")
    async with writing(runtime) as session:
        row = await session.scalar(select(Account).where(Account.email == "user07@uni.example"))
        assert row is not None
        row.display_name = "Grace Hopper"
    await act(runtime, EnforcementStep.SUSPEND, "user03@uni.example", reason="too many downloads")
    await sign_in(client, OPS)

    first = await client.get("/ops/accounts", headers=HTML)
    assert first.status_code == 200
    assert "58 accounts" in first.text
    shown = listed(first.text)
    assert len(shown) == 50
    assert shown == sorted(shown)
    second = await client.get("/ops/accounts?page=2", headers=HTML)
    assert len(listed(second.text)) == 8
    assert not set(listed(second.text)) & set(shown)
    row = re.search(r"ops@example\.org</a></td>\s*<td>[^<]*</td>\s*<td>(\w+)</td>", first.text)
    assert row
    assert row.group(1) == "operator"

    # By part of the email or the name, in any case; the row says role and standing.
    by_name = await client.get("/ops/accounts?q=hOPPer", headers=HTML)
    assert listed(by_name.text) == ["user07@uni.example"]
    assert "Grace Hopper" in by_name.text
    suspended = await client.get("/ops/accounts?q=USER03", headers=HTML)
    assert listed(suspended.text) == ["user03@uni.example"]
    assert "account-status-suspended" in suspended.text
    assert "too many downloads" in suspended.text
    assert 'href="/ops/accounts/user03@uni.example"' in suspended.text
    # The search keeps its words across pages.
    many = await client.get("/ops/accounts?q=uni.example", headers=HTML)
    assert 'href="/ops/accounts?q=uni.example&amp;page=2"' in many.text
    # % and _ are characters, not wildcards.
    underscore = await client.get("/ops/accounts?q=ada_", headers=HTML)
    assert listed(underscore.text) == ["ada_lovelace@math.example"]
    assert listed((await client.get("/ops/accounts?q=%25", headers=HTML)).text) == []
    assert "No accounts match" in (await client.get("/ops/accounts?q=nobody", headers=HTML)).text

    only = await client.get("/ops/accounts?standing=suspended", headers=HTML)
    assert listed(only.text) == ["user03@uni.example"]
    unknown = await client.get("/ops/accounts?standing=banned", headers=HTML)
    assert unknown.status_code == 400
    assert "unknown standing &#39;banned&#39;" in unknown.text
    too_long = await client.get("/ops/accounts?q=" + "a" * 400, headers=HTML)
    assert too_long.status_code == 400
    assert (await client.get("/ops/accounts?page=0", headers=HTML)).status_code == 400


async def test_the_enforcement_form_names_every_refused_field_at_once(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, BOB)
    await make_account(runtime, OPS, operator=True)
    await sign_in(client, OPS)
    page_path = f"/ops/accounts/{BOB}"
    refused = await submit(
        client,
        page_path,
        f"{page_path}/enforce",
        {"step": "banish", "reason": "  ", "days": "soon", "incident": "INC-1"},
    )
    assert refused.status_code == 400
    errors = dict(
        re.findall(
            r'id="f-(\w+)-error"><span class="visually-hidden">Error: </span>([^<]+)<',
            refused.text,
        )
    )
    assert set(errors) == {"step", "reason", "days"}
    assert "unknown step" in errors["step"]
    assert "the reason is required" in errors["reason"]
    assert "whole number" in errors["days"]
    for name in errors:
        assert f'<a href="#f-{name}">' in refused.text
    assert 'value="INC-1"' in refused.text
    # A suspension-only field on a warning, with no reason: both named.
    warned = await submit(
        client, page_path, f"{page_path}/enforce", {"step": "warn", "reason": "", "days": "3"}
    )
    assert "applies to a suspension only" in warned.text
    assert "the reason is required" in warned.text
    assert await status_of(runtime, BOB) == "active"
