"""Local accounts in the portal: sign-up, email confirmation, sign-in, password reset, the
first operator, sessions and CSRF (rate limits: test_rate_limits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db.models import Account, Notification
from gateway.identity.service import operator_setup_link
from gateway.runtime import Runtime
from tests.http.portal import HTML, Http, link_in, submit

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


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


async def latest_note(rt: Runtime, email: str) -> Notification:
    async with rt.sessionmaker() as session:
        note = await session.scalar(
            select(Notification)
            .join(Account)
            .where(Account.email == email)
            .order_by(Notification.id.desc())
        )
    assert note is not None
    return note


async def test_sign_up_confirms_the_email_through_a_one_time_link(
    client: Http, runtime: Runtime
) -> None:
    response = await sign_up(client)
    assert response.status_code == 302
    assert response.headers["location"] == "/account?welcome=1"
    cookie = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie if c.startswith("gw_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie or "SameSite=Lax" in session_cookie
    page = await client.get("/account", headers=HTML)
    assert "ada@uni.edu" in page.text
    assert "not confirmed" in page.text
    note = await latest_note(runtime, "ada@uni.edu")
    secret = link_in(note.body, "/verify-email")
    confirmed = await client.get(f"/verify-email?token={secret}", headers=HTML)
    assert "Email confirmed" in confirmed.text
    again = await client.get(f"/verify-email?token={secret}", headers=HTML)
    assert again.status_code == 400
    assert "already used" in again.text
    async with runtime.sessionmaker() as session:
        account = await session.scalar(select(Account).where(Account.email == "ada@uni.edu"))
    assert account is not None
    assert account.email_verified_at is not None
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")


async def test_sign_up_refusals_keep_the_form(client: Http) -> None:
    weak = await submit(client, "/sign-up", "/sign-up", {"email": "x@uni.edu", "password": "short"})
    assert weak.status_code == 400
    assert "at least 10 characters" in weak.text
    assert 'value="x@uni.edu"' in weak.text
    assert "short" not in weak.text.split("<main", 1)[1]
    await sign_up(client)
    taken = await sign_up(client)
    assert taken.status_code == 409
    assert "already exists" in taken.text


async def test_sign_in_and_out(client: Http) -> None:
    await sign_up(client)
    await submit(client, "/account", "/sign-out", {})
    assert (await client.get("/account", headers=HTML)).status_code == 302
    wrong = await submit(
        client, "/sign-in", "/sign-in", {"email": "ada@uni.edu", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == 401
    assert "wrong email or password" in wrong.text
    unknown = await submit(
        client, "/sign-in", "/sign-in", {"email": "who@uni.edu", "password": PASSWORD}
    )
    assert "wrong email or password" in unknown.text
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
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(Account).where(Account.email == "e@uni.edu")) is None


async def test_password_reset(client: Http, runtime: Runtime) -> None:
    await sign_up(client)
    await submit(client, "/account", "/sign-out", {})
    asked = await submit(client, "/forgot-password", "/forgot-password", {"email": "ada@uni.edu"})
    assert "If an account exists" in asked.text
    nobody = await submit(client, "/forgot-password", "/forgot-password", {"email": "no@uni.edu"})
    assert nobody.text.count("If an account exists") == 1
    secret = link_in((await latest_note(runtime, "ada@uni.edu")).body, "/reset-password")
    reset = await submit(
        client,
        f"/reset-password?token={secret}",
        "/reset-password",
        {"token": secret, "password": "a brand new passphrase"},
    )
    assert reset.status_code == 302
    await submit(client, "/account", "/sign-out", {})
    old = await submit(
        client, "/sign-in", "/sign-in", {"email": "ada@uni.edu", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await submit(
        client,
        "/sign-in",
        "/sign-in",
        {"email": "ada@uni.edu", "password": "a brand new passphrase"},
    )
    assert new.status_code == 302
    reused = await submit(
        client,
        f"/reset-password?token={secret}",
        "/reset-password",
        {"token": secret, "password": "yet another passphrase"},
    )
    assert reused.status_code == 400


async def test_the_first_operator_comes_from_a_one_time_setup_link(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    link = await operator_setup_link(runtime)
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
    async with runtime.sessionmaker() as session:
        ops = await session.scalar(select(Account).where(Account.email == "ops@lab.example"))
    assert ops is not None
    assert ops.is_operator
    assert await operator_setup_link(runtime) is None
    again = await submit(
        client,
        f"/setup?token={secret}",
        "/setup",
        {"token": secret, "email": "x@lab.example", "password": PASSWORD},
    )
    assert again.status_code == 400
