"""Portal sessions: a fresh id at every sign-in, never one a browser brought along; sessions
that end when the password, the standing or the role of the account changes; one store
for every replica; CSRF tokens that belong to their session."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import Account, ApiKey, WebSession
from gateway.db.uow import unit_of_work
from gateway.enforcement import service as enforcement
from gateway.identity import service as identity
from gateway.identity.passwords import hash_password
from gateway.identity.sessions import SessionStore, end_sessions
from gateway.runtime import Runtime
from stages.enforcement import EnforcementStep
from tests.accounts import create_account
from tests.http.portal import HTML, Http, Mailbox, confirm_email, csrf_token, limiter_of, submit
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
ADA = "ada@uni.edu"
COOKIE = "gw_session"
# An id the attacker chose, as a cookie set from a sibling domain or over plain HTTP would.
PLANTED = "f" * 64

Browser = Callable[..., Awaitable[Http]]


@pytest.fixture
async def browser(settings: Settings) -> AsyncIterator[Browser]:
    """Opens browsers, each on a gateway process of its own over the same database;
    `home=` gives that process another home folder (another replica)."""
    async with AsyncExitStack() as stack:

        async def open_browser(home: Path | None = None) -> Http:
            chosen = settings if home is None else replace(settings, home=home)
            client = await stack.enter_async_context(
                AsyncTestClient(app=create_app(settings=chosen))
            )
            client.follow_redirects = False
            return client

        yield open_browser


async def local_account(rt: Runtime, email: str = ADA) -> str:
    account = await create_account(rt, email, operator=False, actor="test")
    async with writing(rt) as session:
        row = await session.get(Account, account.id)
        assert row is not None
        row.password_hash = hash_password(PASSWORD)
    return account.id


async def sign_in(client: Http, email: str = ADA) -> None:
    signed = await submit(client, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD})
    assert signed.status_code == 302, signed.text


async def signed_in(client: Http) -> bool:
    answer = await client.get("/account", headers=HTML)
    assert answer.status_code in (200, 302), answer.text
    return answer.status_code == 200


async def with_cookie(browser: Browser, value: str) -> Http:
    """Another browser holding the session cookie `value`: the attacker's."""
    other = await browser()
    plant(other, value)
    return other


def plant(client: Http, value: str) -> None:
    client.cookies.set(COOKIE, value, domain="testserver.local")


async def test_a_cookie_id_the_server_did_not_issue_is_never_adopted(
    browser: Browser, runtime: Runtime
) -> None:
    await local_account(runtime)
    victim = await with_cookie(browser, PLANTED)
    await sign_in(victim)
    assert victim.cookies[COOKIE] != PLANTED
    assert await signed_in(victim)
    attacker = await with_cookie(browser, PLANTED)
    assert not await signed_in(attacker)
    async with runtime.sessionmaker() as session:
        planted = await session.get(WebSession, hashlib.sha256(PLANTED.encode()).hexdigest())
    assert planted is None


async def _by_password(client: Http, rt: Runtime, mailbox: Mailbox) -> None:
    await local_account(rt)
    await client.get("/sign-in", headers=HTML)
    before = client.cookies[COOKIE]
    await sign_in(client)
    assert client.cookies[COOKIE] != before


async def _by_email_confirmation(client: Http, rt: Runtime, mailbox: Mailbox) -> None:
    await within(
        rt,
        lambda uow: identity.sign_up(
            uow,
            limiter_of(rt),
            email=ADA,
            password=PASSWORD,
            display_name="",
            affiliation="",
            address=None,
        ),
    )
    confirmed = await confirm_email(client, mailbox, ADA)
    assert confirmed.status_code == 302, confirmed.text


async def _by_password_reset(client: Http, rt: Runtime, mailbox: Mailbox) -> None:
    await local_account(rt)
    await reset_password(client, mailbox)


async def reset_password(client: Http, mailbox: Mailbox) -> None:
    await submit(client, "/forgot-password", "/forgot-password", {"email": ADA})
    token = mailbox.token(ADA, "/reset-password")
    reset = await submit(
        client,
        f"/reset-password?token={token}",
        "/reset-password",
        {"token": token, "password": "another good passphrase"},
    )
    assert reset.status_code == 302, reset.text


async def _by_setup_link(client: Http, rt: Runtime, mailbox: Mailbox) -> None:
    link = await within(rt, identity.operator_setup_link)
    assert link is not None
    token = link.url.split("token=", 1)[1]
    made = await submit(
        client,
        f"/setup?token={token}",
        "/setup",
        {"token": token, "email": ADA, "password": PASSWORD, "display_name": "Ada"},
    )
    assert made.status_code == 302, made.text


@pytest.mark.parametrize(
    "sign_in_by",
    [_by_password, _by_email_confirmation, _by_password_reset, _by_setup_link],
    ids=["password", "email-confirmation", "password-reset", "setup-link"],
)
async def test_every_sign_in_issues_a_fresh_session_id(
    browser: Browser,
    runtime: Runtime,
    mailbox: Mailbox,
    sign_in_by: Callable[[Http, Runtime, Mailbox], Awaitable[None]],
) -> None:
    victim = await browser()
    # A session the server issued before sign-in, known to whoever planted it.
    await victim.get("/sign-up", headers=HTML)
    before = victim.cookies[COOKIE]
    await sign_in_by(victim, runtime, mailbox)
    assert victim.cookies[COOKIE] != before
    assert await signed_in(victim)
    attacker = await with_cookie(browser, before)
    assert not await signed_in(attacker)


async def test_a_password_reset_ends_every_other_session(
    browser: Browser, runtime: Runtime, mailbox: Mailbox
) -> None:
    laptop, phone = await browser(), await browser()
    await local_account(runtime)
    await sign_in(laptop)
    await sign_in(phone)
    await reset_password(phone, mailbox)
    assert not await signed_in(laptop)
    assert await signed_in(phone)
    async with runtime.sessionmaker() as session:
        rows = (await session.scalars(select(WebSession.account_id))).all()
    assert len([r for r in rows if r is not None]) == 1


@pytest.mark.parametrize("step", [EnforcementStep.SUSPEND, EnforcementStep.TERMINATE])
async def test_suspension_and_termination_end_the_accounts_sessions(
    browser: Browser, runtime: Runtime, step: EnforcementStep
) -> None:
    client = await browser()
    await local_account(runtime)
    await sign_in(client)
    await within(
        runtime,
        lambda uow: enforcement.enforce(
            uow,
            email=ADA,
            step=step,
            reason="shared a link",
            days=None,
            incident_id=None,
            actor="op",
        ),
    )
    assert not await signed_in(client)
    # Signing in again shows the account its standing.
    await sign_in(client)
    standing = await client.get("/account/standing", headers=HTML)
    assert standing.status_code == 200
    assert "shared a link" in standing.text


async def test_a_warning_leaves_the_session_alone(browser: Browser, runtime: Runtime) -> None:
    client = await browser()
    await local_account(runtime)
    await sign_in(client)
    await within(
        runtime,
        lambda uow: enforcement.enforce(
            uow,
            email=ADA,
            step=EnforcementStep.WARN,
            reason="be careful",
            days=None,
            incident_id=None,
            actor="op",
        ),
    )
    assert await signed_in(client)


async def test_a_change_of_role_ends_the_accounts_sessions(
    browser: Browser, runtime: Runtime, mailbox: Mailbox
) -> None:
    before, setup = await browser(), await browser()
    await local_account(runtime)
    await sign_in(before)
    # The first-operator link makes the existing account an operator.
    await _by_setup_link(setup, runtime, mailbox)
    assert not await signed_in(before)
    assert (await setup.get("/ops", headers=HTML)).status_code == 200


async def test_every_replica_knows_every_session(
    browser: Browser, runtime: Runtime, tmp_path: Path
) -> None:
    first = await browser()
    second = await browser(home=tmp_path / "second-replica")
    await local_account(runtime)
    await sign_in(first)
    plant(second, first.cookies[COOKIE])
    assert await signed_in(second)
    await submit(second, "/account", "/sign-out", {})
    assert not await signed_in(first)


async def test_session_ids_are_stored_only_as_their_hash(
    browser: Browser, runtime: Runtime
) -> None:
    client = await browser()
    account_id = await local_account(runtime)
    await sign_in(client)
    cookie = client.cookies[COOKIE]
    async with runtime.sessionmaker() as session:
        rows = (await session.scalars(select(WebSession))).all()
    assert [r.id_sha256 for r in rows if r.account_id] == [
        hashlib.sha256(cookie.encode()).hexdigest()
    ]
    assert all(cookie not in r.id_sha256 and cookie.encode() not in r.data for r in rows)
    assert [r.account_id for r in rows if r.account_id] == [account_id]


async def test_a_session_ended_meanwhile_is_not_brought_back(runtime: Runtime) -> None:
    store = SessionStore(runtime)
    account_id = await local_account(runtime)
    await store.create("some-id", b"{}", account_id=account_id, expires_in=60)
    assert await store.get("some-id") == b"{}"
    async with unit_of_work(runtime) as uow:
        assert await end_sessions(await uow.write(), account_id) == 1
    # A request that loaded the session before it ended answers afterwards.
    assert not await store.update("some-id", b'{"a":1}', account_id=account_id, expires_in=60)
    assert await store.get("some-id") is None


async def test_a_visitor_with_nothing_in_the_session_stores_nothing(
    browser: Browser, runtime: Runtime
) -> None:
    client = await browser()
    for path in ("/no-such-page", "/healthz", "/account"):
        answer = await client.get(path, headers=HTML)
        assert COOKIE not in answer.headers.get("set-cookie", "")
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(WebSession))).all() == []


# --- CSRF -------------------------------------------------------------------------------


async def test_a_csrf_token_planted_with_the_attackers_own_cookie_is_refused(
    browser: Browser, runtime: Runtime
) -> None:
    await local_account(runtime)
    victim, attacker = await browser(), await browser()
    await sign_in(victim)
    # The attacker fetches a form of their own, and plants every cookie that came with it
    # but the session in the victim's browser.
    token = await csrf_token(attacker, "/sign-in")
    for name, value in attacker.cookies.items():
        if name != COOKIE:
            victim.cookies.set(name, value)
    forged = await victim.post(
        "/keys",
        data={"name": "forged", "scopes": "download", "_csrf_token": token},
        headers=HTML,
    )
    assert forged.status_code == 403
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(ApiKey))).all() == []
    # The victim's own form, with the token of the victim's session, works.
    made = await submit(victim, "/keys", "/keys", {"name": "mine", "scopes": "download"})
    assert made.status_code == 201, made.text


async def test_a_sign_in_changes_the_csrf_token(browser: Browser, runtime: Runtime) -> None:
    await local_account(runtime)
    client = await browser()
    before = await csrf_token(client, "/sign-in")
    await sign_in(client)
    after = await csrf_token(client, "/keys")
    assert after != before
    stale = await client.post(
        "/keys", data={"name": "x", "scopes": "download", "_csrf_token": before}, headers=HTML
    )
    assert stale.status_code == 403
