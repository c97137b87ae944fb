"""Local accounts in the portal: sign-up, email confirmation, sign-in, password reset, the
first operator; one-time links reach only their mailbox, and no answer tells whether an
address has an account (rate limits: test_rate_limits.py)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.db.models import Account, Application, Notification
from gateway.db.uow import UnitOfWork
from gateway.identity import service as identity
from gateway.identity.pages import landing
from gateway.identity.service import operator_setup_link
from gateway.notify.delivery import deliver_due_email
from gateway.runtime import Runtime
from tests.fixtures.smtp import SmtpTestServer
from tests.grantees import open_release
from tests.http.asgi import AsgiDriver
from tests.http.portal import HTML, Http, Mailbox, confirm_email, limiter_of, submit
from tests.units import within

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
_TOKEN = re.compile(r"token=([\w-]+)")


async def sign_up(client: Http, email: str = "ada@uni.edu") -> object:
    return await submit(
        client,
        "/sign-up",
        "/sign-up",
        {
            "email": email,
            "password": PASSWORD,
            "display_name": "Ada",
            "affiliation": "Uni",
        },
    )


async def sign_in(client: Http, email: str = "ada@uni.edu", password: str = PASSWORD) -> object:
    return await submit(client, "/sign-in", "/sign-in", {"email": email, "password": password})


async def account_of(rt: Runtime, email: str) -> Account:
    async with rt.sessionmaker() as session:
        account = await session.scalar(select(Account).where(Account.email == email))
    assert account is not None
    return account


async def accounts_named(rt: Runtime, email: str) -> int:
    async with rt.sessionmaker() as session:
        return len((await session.scalars(select(Account).where(Account.email == email))).all())


async def own_pages(client: Http) -> str:
    """Everything the signed-in account can read about itself in the portal."""
    pages = [await client.get(path, headers=HTML) for path in ("/account", "/inbox")]
    for page in pages:
        assert page.status_code == 200, page.text
    return "\n".join(page.text for page in pages)


async def rows_text(rt: Runtime, account_id: str) -> str:
    """Every notification row of the account, as the inbox could show it."""
    async with rt.sessionmaker() as session:
        notes = (
            await session.scalars(
                select(Notification).where(
                    Notification.account_id == account_id, Notification.mail_only.is_(False)
                )
            )
        ).all()
    return "\n".join(f"{n.subject}\n{n.body}\n{n.link}" for n in notes)


async def test_sign_up_mails_a_confirmation_link_that_confirms_and_signs_in(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    response = await sign_up(client)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "Check your email" in response.text  # type: ignore[attr-defined]
    # Not signed in: the same answer is given for an address that has an account.
    assert (await client.get("/account", headers=HTML)).status_code == 302
    token = mailbox.token("ada@uni.edu", "/verify-email")
    # Opening the link uses nothing up (a mail scanner may open it); the button does.
    page = await client.get(f"/verify-email?token={token}", headers=HTML)
    assert "Confirm and sign in" in page.text
    confirmed = await confirm_email(client, mailbox, "ada@uni.edu")
    assert confirmed.status_code == 302
    assert confirmed.headers["location"] == "/account?confirmed=1"
    session_cookie = next(
        c for c in confirmed.headers.get_list("set-cookie") if c.startswith("gw_session=")
    )
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie or "SameSite=Lax" in session_cookie
    account_page = await client.get("/account", headers=HTML)
    assert "ada@uni.edu" in account_page.text
    assert "not confirmed" not in account_page.text
    again = await submit(client, f"/verify-email?token={token}", "/verify-email", {"token": token})
    assert again.status_code == 400
    assert "already used" in again.text
    account = await account_of(runtime, "ada@uni.edu")
    assert account.email_verified_at is not None
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")


async def test_sign_up_refusals_keep_the_form(client: Http) -> None:
    weak = await submit(client, "/sign-up", "/sign-up", {"email": "x@uni.edu", "password": "short"})
    assert weak.status_code == 400
    assert "at least 10 characters" in weak.text
    assert 'value="x@uni.edu"' in weak.text
    assert "short" not in weak.text.split("<main", 1)[1]


def field_errors(page: str) -> dict[str, str]:
    """Each refused field's own message, as shown beside it."""
    found = re.findall(
        r'<p class="field-error" id="f-(\w+)-error"><span class="visually-hidden">Error: '
        r"</span>([^<]+)</p>",
        page,
    )
    return dict(found)


async def test_sign_up_names_every_refused_field_at_once_beside_it(
    client: Http, runtime: Runtime
) -> None:
    refused = await submit(
        client,
        "/sign-up",
        "/sign-up",
        {
            "email": "not-an-address",
            "password": "short",
            "display_name": "Ada\x01",
            "affiliation": "U" * 201,
        },
    )
    assert refused.status_code == 400
    errors = field_errors(refused.text)
    assert errors == {
        "email": "invalid email address &#39;not-an-address&#39;",
        "password": "choose a password of at least 10 characters",
        "display_name": "your name may not contain line breaks or control characters",
        "affiliation": "the affiliation is at most 200 characters",
    }
    # The summary links to each field; each input says it is refused and why.
    for name in errors:
        assert f'<a href="#f-{name}">' in refused.text
        assert f'aria-describedby="f-{name}-error" aria-invalid="true"' in refused.text
    assert 'value="not-an-address"' in refused.text
    assert "short" not in refused.text.split("<main", 1)[1]
    assert await accounts_named(runtime, "not-an-address") == 0
    # One field wrong: only that one is marked.
    one = await submit(
        client, "/sign-up", "/sign-up", {"email": "ada@uni.edu", "password": "short"}
    )
    assert field_errors(one.text) == {"password": "choose a password of at least 10 characters"}
    assert 'aria-invalid="true"' not in one.text.split('id="f-password"', 1)[0]


async def test_the_setup_and_reset_forms_name_their_refused_fields(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    link = await within(runtime, operator_setup_link)
    assert link is not None
    secret = link.url.split("token=", 1)[1]
    refused = await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "ops", "password": "aaaaaaaaaaaa", "display_name": "O\x00"},
    )
    assert refused.status_code == 400
    assert set(field_errors(refused.text)) == {"email", "password", "display_name"}
    assert "that password is too easy to guess" in refused.text
    assert 'value="ops"' in refused.text
    # Nothing was used up: the same link still makes the operator.
    made = await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "ops@lab.example", "password": PASSWORD},
    )
    assert made.status_code == 302

    await sign_up(client, "ada@uni.edu")
    await identity.send_password_reset(runtime, "ada@uni.edu")
    token = mailbox.token("ada@uni.edu", "/reset-password")
    weak = await submit(
        client,
        f"/reset-password?token={token}",
        "/reset-password",
        {"token": token, "password": "short"},
    )
    assert weak.status_code == 400
    assert field_errors(weak.text) == {"password": "choose a password of at least 10 characters"}
    assert f'value="{token}"' in weak.text


async def test_a_one_time_link_never_reaches_the_accounts_own_pages(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    # Someone signs up with an address they do not own, and signs in with the password.
    await sign_up(client, "victim@uni.edu")
    assert (await sign_in(client, "victim@uni.edu")).status_code == 302  # type: ignore[attr-defined]
    await submit(client, "/account", "/verify-email/resend", {})
    await submit(client, "/forgot-password", "/forgot-password", {"email": "victim@uni.edu"})
    confirmation = mailbox.token("victim@uni.edu", "/verify-email")
    reset = mailbox.token("victim@uni.edu", "/reset-password")
    seen = await own_pages(client)
    account = await account_of(runtime, "victim@uni.edu")
    stored = await rows_text(runtime, account.id)
    for secret in (confirmation, reset):
        assert secret not in seen
        assert secret not in stored
    assert not _TOKEN.search(seen)
    # The inbox still says what happened.
    assert "Confirm your email address" in seen
    assert "Reset your password" in seen
    assert account.email_verified_at is None


async def test_auto_approval_trusts_only_an_address_its_owner_confirmed(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    # An address under *.edu, which the shipped policy approves at once once confirmed.
    await sign_up(client, "someone@uni.edu")
    await sign_in(client, "someone@uni.edu")
    # Whatever confirmation link the account's own pages show, it uses.
    for token in set(_TOKEN.findall(await own_pages(client))):
        await submit(client, f"/verify-email?token={token}", "/verify-email", {"token": token})
        await client.get(f"/verify-email?token={token}", headers=HTML)
    page = await client.get("/models/acme/sample/apply?tier=researcher", headers=HTML)
    sha = re.search(r'name="license_sha256" value="([0-9a-f]{64})"', page.text)
    assert sha
    applied = await submit(
        client,
        "/models/acme/sample/apply?tier=researcher",
        "/models/acme/sample/apply?tier=researcher",
        {
            "tier": "researcher",
            "license_sha256": sha.group(1),
            "accept_license": "on",
            "answer.affiliation": "Uni",
            "answer.country": "JP",
            "answer.research_purpose": "Measure forgetting.",
            "answer.agree_no_redistribution": "on",
        },
    )
    assert applied.status_code == 302, applied.text
    async with runtime.sessionmaker() as session:
        status = await session.scalar(select(Application.status))
    assert status == "submitted"  # waits for an operator: the address was never proven


async def test_with_smtp_the_link_is_mailed_and_stays_out_of_the_inbox(
    settings: Settings, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    from litestar.testing import AsyncTestClient

    from gateway.app import create_app
    from gateway.runtime import build_runtime

    with_smtp = replace(settings, smtp_url=smtp_server.url())
    rt = build_runtime(with_smtp)
    try:
        async with AsyncTestClient(app=create_app(settings=with_smtp)) as browser:
            browser.follow_redirects = False
            await sign_up(browser, "bea@uni.edu")
            await sign_in(browser, "bea@uni.edu")
            await deliver_due_email(rt)
            [mail] = [m for m in smtp_server.received if "bea@uni.edu" in m.rcpt_tos]
            text = mail.message.get_content()
            [token] = _TOKEN.findall(text)
            assert "/verify-email?token=" in text
            seen = await own_pages(browser)
            assert token not in seen
            assert "Confirm your email address" in seen
            # The inbox entry is not mailed besides: one message, the one with the link.
            assert len(smtp_server.received) == 1
    finally:
        await rt.close()


async def test_sign_in_and_out(client: Http) -> None:
    await sign_up(client)
    await sign_in(client)
    await submit(client, "/account", "/sign-out", {})
    assert (await client.get("/account", headers=HTML)).status_code == 302
    wrong = await sign_in(client, password="nope-nope-nope")
    assert wrong.status_code == 401  # type: ignore[attr-defined]
    assert "wrong email or password" in wrong.text  # type: ignore[attr-defined]
    unknown = await sign_in(client, "who@uni.edu")
    assert "wrong email or password" in unknown.text  # type: ignore[attr-defined]
    ok = await submit(
        client,
        "/sign-in",
        "/sign-in",
        {"email": "ADA@uni.edu", "password": PASSWORD, "next": "/account"},
    )
    assert ok.status_code == 302
    assert ok.headers["location"] == "/account"
    elsewhere = await submit(
        client,
        "/sign-in",
        "/sign-in",
        {"email": "ada@uni.edu", "password": PASSWORD, "next": "//evil.example/"},
    )
    assert elsewhere.headers["location"] == "/account"


async def test_forms_without_a_valid_csrf_token_are_refused(client: Http, runtime: Runtime) -> None:
    await client.get("/sign-up", headers=HTML)
    missing = await client.post(
        "/sign-up", data={"email": "e@uni.edu", "password": PASSWORD}, headers=HTML
    )
    assert missing.status_code == 403
    forged = await client.post(
        "/sign-up",
        data={"email": "e@uni.edu", "password": PASSWORD, "_csrf_token": "forged"},
        headers=HTML,
    )
    assert forged.status_code == 403
    assert await accounts_named(runtime, "e@uni.edu") == 0


async def test_password_reset(client: Http, runtime: Runtime, mailbox: Mailbox) -> None:
    await sign_up(client)
    asked = await submit(client, "/forgot-password", "/forgot-password", {"email": "ada@uni.edu"})
    assert "If an account exists" in asked.text
    secret = mailbox.token("ada@uni.edu", "/reset-password")
    reset = await submit(
        client,
        f"/reset-password?token={secret}",
        "/reset-password",
        {"token": secret, "password": "a brand new passphrase"},
    )
    assert reset.status_code == 302
    assert (await account_of(runtime, "ada@uni.edu")).email_verified_at is not None
    await submit(client, "/account", "/sign-out", {})
    assert (await sign_in(client)).status_code == 401  # type: ignore[attr-defined]
    new = await sign_in(client, password="a brand new passphrase")
    assert new.status_code == 302  # type: ignore[attr-defined]
    reused = await submit(
        client,
        f"/reset-password?token={secret}",
        "/reset-password",
        {"token": secret, "password": "yet another passphrase"},
    )
    assert reused.status_code == 400


async def test_the_first_operator_comes_from_a_one_time_setup_link(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    link = await within(runtime, operator_setup_link)
    assert link is not None
    secret = link.url.split("token=", 1)[1]
    made = await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "ops@lab.example", "password": PASSWORD, "display_name": "Ops"},
    )
    assert made.status_code == 302
    assert made.headers["location"] == "/ops"
    ops = await account_of(runtime, "ops@lab.example")
    assert ops.is_operator
    # The link proves who runs the gateway, not who reads the mailbox: that is confirmed
    # the usual way.
    assert ops.email_verified_at is None
    assert mailbox.token("ops@lab.example", "/verify-email")
    assert await within(runtime, operator_setup_link) is None
    again = await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "x@lab.example", "password": PASSWORD},
    )
    assert again.status_code == 400
    assert "This setup link has already been used" in again.text
    assert await accounts_named(runtime, "x@lab.example") == 0


async def test_a_used_setup_link_says_so_before_any_form(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    link = await within(runtime, operator_setup_link)
    assert link is not None
    secret = link.url.split("token=", 1)[1]
    fresh = await client.get(f"/setup?token={secret}", headers=HTML)
    assert fresh.status_code == 200
    assert 'name="password"' in fresh.text
    await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "ops@lab.example", "password": PASSWORD},
    )
    await submit(client, "/account", "/sign-out", {})
    used = await client.get(f"/setup?token={secret}", headers=HTML)
    assert used.status_code == 400
    main = used.text.split("<main", 1)[1]
    assert "This setup link has already been used" in main
    assert 'href="/sign-in?next=/ops"' in main
    assert 'name="password"' not in main
    # A link nobody issued is not "used": the form answers it when it is posted.
    unknown = await client.get("/setup?token=never-issued", headers=HTML)
    assert "already been used" not in unknown.text


@pytest.mark.parametrize(
    ("target", "operator", "lands"),
    [
        ("", True, "/ops"),
        ("", False, "/account"),
        ("/grants", True, "/grants"),
        ("//evil.example/", True, "/ops"),
        ("https://evil.example/", False, "/account"),
    ],
)
def test_a_sign_in_lands_on_a_safe_next_or_the_accounts_home(
    target: str, operator: bool, lands: str
) -> None:
    # The same rule for a password sign-in and a provider's.
    assert landing(target, operator=operator) == lands


async def test_an_operator_signing_in_lands_on_the_console(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    link = await within(runtime, operator_setup_link)
    assert link is not None
    secret = link.url.split("token=", 1)[1]
    await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "ops@lab.example", "password": PASSWORD},
    )
    await submit(client, "/account", "/sign-out", {})
    plain = await sign_in(client, "ops@lab.example")
    assert plain.headers["location"] == "/ops"  # type: ignore[attr-defined]
    for target, lands in (("/models/acme/x", "/models/acme/x"), ("//evil.example/", "/ops")):
        signed = await submit(
            client,
            f"/sign-in?next={target}",
            "/sign-in",
            {"email": "ops@lab.example", "password": PASSWORD, "next": target},
        )
        assert signed.headers["location"] == lands
    # Someone who is not an operator still lands on their account.
    await sign_up(client, "ada@uni.edu")
    await confirm_email(client, mailbox, "ada@uni.edu")
    await submit(client, "/account", "/sign-out", {})
    applicant = await sign_in(client, "ada@uni.edu")
    assert applicant.headers["location"] == "/account"  # type: ignore[attr-defined]


# --- no account enumeration -------------------------------------------------------------


def _comparable(text: str, *words: str) -> str:
    """A page with its CSRF token and the given words blanked out."""
    text = re.sub(r'name="_csrf_token" value="[^"]+"', "", text)
    for word in words:
        text = text.replace(word, "ADDRESS")
    return text


async def test_sign_up_with_a_taken_address_answers_as_for_a_new_one(
    client: Http, runtime: Runtime, mailbox: Mailbox
) -> None:
    fresh = await sign_up(client, "new@uni.edu")
    await sign_up(client, "ada@uni.edu")
    taken = await sign_up(client, "ada@uni.edu")
    for answer in (fresh, taken):
        assert answer.status_code == 200  # type: ignore[attr-defined]
        assert not any(
            c.startswith("gw_session=") and "null" not in c
            for c in answer.headers.get_list("set-cookie")  # type: ignore[attr-defined]
        )
    assert _comparable(fresh.text, "new@uni.edu") == _comparable(  # type: ignore[attr-defined]
        taken.text,  # type: ignore[attr-defined]
        "ada@uni.edu",
    )
    assert await accounts_named(runtime, "ada@uni.edu") == 1
    # The owner hears of it, with no link that does anything by itself.
    [*_, told] = mailbox.to("ada@uni.edu")
    assert told.startswith("Someone tried to create an account with your address")
    assert "token=" not in told
    # The password of the account is the one its owner chose.
    assert (await sign_in(client, "ada@uni.edu")).status_code == 302  # type: ignore[attr-defined]


async def test_forgot_password_answers_alike_before_any_work_is_done(
    settings: Settings, runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await within(
        runtime,
        lambda uow: identity.sign_up(
            uow,
            limiter_of(runtime),
            email="ada@uni.edu",
            password=PASSWORD,
            display_name="",
            affiliation="",
            address=None,
        ),
    )
    # The work of a reset (looking the account up, issuing its link) waits until the test
    # lets it go; it holds no transaction while it waits.
    go = asyncio.Event()
    work = identity._send_password_reset

    async def held_work(uow: UnitOfWork, normalised: str) -> None:
        await go.wait()
        await work(uow, normalised)

    monkeypatch.setattr(identity, "_send_password_reset", held_work)
    async with AsgiDriver(settings) as browser:
        answers = {}
        for email in ("ada@uni.edu", "nobody@uni.edu"):
            token = await browser.csrf_token("/forgot-password")
            answers[email] = await browser.post(
                "/forgot-password", {"email": email, "_csrf_token": token}
            )
        # Both answers were complete while the reset for ada was still waiting.
        assert not go.is_set()
        for email, answer in answers.items():
            assert answer.status == 200
            assert "If an account exists" in answer.text, email
        assert _comparable(answers["ada@uni.edu"].text) == _comparable(
            answers["nobody@uni.edu"].text
        )
        go.set()
        await browser.finish()
    assert mailbox.token("ada@uni.edu", "/reset-password")
    assert mailbox.to("nobody@uni.edu") == []
