"""Sign-in through an OpenID Connect provider: a real provider (oidc-provider-mock) on
loopback for the whole flow, and its discovery document and key set kept across sign-ins.
The ID token checks one by one are in test_oidc_tokens.py, the directory's own rules in
test_oidc_discovery.py."""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import KeySet, RSAKey
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.config import OidcProvider, Settings
from gateway.db.models import Account, Evidence, OidcIdentity
from gateway.identity.oidc_pages import DIRECTORY_STATE
from gateway.identity.oidc_providers import ProviderDirectory, bounded
from gateway.runtime import Runtime
from tests.fixtures.oidc import MockIssuer
from tests.http.portal import HTML, Http, Mailbox, confirm_email, submit

pytestmark = [
    pytest.mark.anyio,
    # The mock provider calls Authlib server APIs that Authlib has deprecated.
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]
PASSWORD = "correct horse battery"
CALLBACK = "http://testserver/sign-in/oidc/mock/callback"


@dataclass
class Gateway:
    client: Http
    provider: OidcProvider
    issuer: MockIssuer


@pytest.fixture
async def gateway(settings: Settings, oidc_issuer: MockIssuer) -> AsyncIterator[Gateway]:
    """The gateway with the mock provider configured as `[oidc.mock]`, and a fresh client."""
    client_id, client_secret = oidc_issuer.register_client(CALLBACK)
    provider = OidcProvider(
        name="mock",
        title="Mock ID",
        issuer=oidc_issuer.url,
        client_id=client_id,
        client_secret=client_secret,
    )
    app = create_app(settings=replace(settings, oidc=(provider,)))
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        yield Gateway(client, provider, oidc_issuer)


def new_subject() -> str:
    return f"sub-{uuid.uuid4().hex[:12]}"


@dataclass
class Trip:
    """One sign-in through the provider: where each hop went, and the gateway's answer."""

    authorization_url: str
    callback_url: str
    answer: Any


async def go_to_provider(gw: Gateway, next_path: str = "/account") -> str:
    started = await gw.client.get(f"/sign-in/oidc/mock?next={next_path}", headers=HTML)
    assert started.status_code == 302, started.text
    location: str = started.headers["location"]
    assert location.startswith(f"{gw.issuer.url}/oauth2/authorize?")
    return location


async def authorize_at_provider(authorization_url: str, subject: str) -> str:
    """What a person does at the provider: open the form, submit it as `subject`."""
    async with httpx2.AsyncClient() as browser:
        form = await browser.get(authorization_url)
        assert form.status_code == 200, form.text
        assert 'name="sub"' in form.text
        answer = await browser.post(authorization_url, data={"sub": subject})
    assert answer.status_code == 302, answer.text
    callback: str = answer.headers["location"]
    assert callback.startswith(f"{CALLBACK}?")
    return callback


async def sign_in(gw: Gateway, subject: str, next_path: str = "/account") -> Trip:
    authorization_url = await go_to_provider(gw, next_path)
    callback = await authorize_at_provider(authorization_url, subject)
    answer = await gw.client.get(callback.removeprefix("http://testserver"), headers=HTML)
    return Trip(authorization_url, callback, answer)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def evidence_kinds(rt: Runtime, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(
            select(Evidence).where(Evidence.account_id == account_id).order_by(Evidence.id)
        )
        return [(row.kind, row.data) for row in rows]


async def accounts_with(rt: Runtime, email: str) -> list[Account]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(select(Account).where(Account.email == email))
        return list(rows)


async def identities_of(rt: Runtime, account_id: str) -> list[OidcIdentity]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(
            select(OidcIdentity).where(OidcIdentity.account_id == account_id)
        )
        return list(rows)


# --- the whole flow, against the provider ----------------------------------------------


async def test_first_sign_in_creates_a_verified_account_and_the_next_one_reuses_it(
    gateway: Gateway, runtime: Runtime
) -> None:
    subject = new_subject()
    gateway.issuer.set_user(
        subject, {"email": "alice@uni.edu", "email_verified": True, "name": "Alice Liddell"}
    )
    trip = await sign_in(gateway, subject, next_path="/account?from=oidc")
    assert trip.answer.status_code == 302, trip.answer.text
    assert trip.answer.headers["location"] == "/account?from=oidc"

    # Authorization code flow with PKCE (S256), state and nonce.
    asked = query(trip.authorization_url)
    assert asked["response_type"] == "code"
    assert asked["client_id"] == gateway.provider.client_id
    assert asked["redirect_uri"] == CALLBACK
    assert asked["scope"] == "openid email profile"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32
    assert len(asked["nonce"]) >= 32
    # The code went back with the verifier of that challenge and the client's secret.
    code = query(trip.callback_url)["code"]
    exchange = next(r for r in gateway.issuer.token_requests if r.form.get("code") == code)
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == CALLBACK
    assert create_s256_code_challenge(exchange.form["code_verifier"]) == asked["code_challenge"]
    basic = f"{gateway.provider.client_id}:{gateway.provider.client_secret}".encode()
    assert exchange.authorization == f"Basic {base64.b64encode(basic).decode()}"

    page = await gateway.client.get("/account", headers=HTML)
    assert page.status_code == 200
    assert "alice@uni.edu" in page.text
    assert "confirmed" in page.text
    assert "Alice Liddell" in page.text

    [account] = await accounts_with(runtime, "alice@uni.edu")
    assert account.email_verified_at is not None
    assert account.password_hash is None
    assert account.display_name == "Alice Liddell"
    [identity] = await identities_of(runtime, account.id)
    assert (identity.provider, identity.issuer, identity.subject) == (
        "mock",
        gateway.issuer.url,
        subject,
    )
    kinds = await evidence_kinds(runtime, account.id)
    assert [k for k, _ in kinds] == [
        "account.signed_up",
        "account.oidc_linked",
        "account.signed_in",
    ]
    assert kinds[2][1]["method"] == "oidc:mock"
    assert kinds[2][1]["subject"] == subject

    # Signed out, and in again: the same account, found by (issuer, subject).
    await submit(gateway.client, "/account", "/sign-out", {})
    assert (await gateway.client.get("/account", headers=HTML)).status_code == 302
    again = await sign_in(gateway, subject)
    assert again.answer.status_code == 302
    assert again.answer.headers["location"] == "/account"
    assert "alice@uni.edu" in (await gateway.client.get("/account", headers=HTML)).text
    assert [a.id for a in await accounts_with(runtime, "alice@uni.edu")] == [account.id]
    assert len(await identities_of(runtime, account.id)) == 1
    kinds = await evidence_kinds(runtime, account.id)
    assert [k for k, _ in kinds].count("account.signed_in") == 2
    assert [k for k, _ in kinds].count("account.oidc_linked") == 1


async def test_an_oidc_sign_in_issues_a_fresh_session_id(
    gateway: Gateway, settings: Settings
) -> None:
    subject = new_subject()
    gateway.issuer.set_user(subject, {"email": "fay@uni.edu", "email_verified": True})
    await gateway.client.get("/sign-in", headers=HTML)
    # The session that carries the sign-in to the provider, known to whoever planted it.
    before = gateway.client.cookies["gw_session"]
    trip = await sign_in(gateway, subject)
    assert trip.answer.status_code == 302, trip.answer.text
    assert gateway.client.cookies["gw_session"] != before
    assert (await gateway.client.get("/account", headers=HTML)).status_code == 200
    async with AsyncTestClient(app=create_app(settings=settings)) as attacker:
        attacker.follow_redirects = False
        attacker.cookies.set("gw_session", before, domain="testserver.local")
        assert (await attacker.get("/account", headers=HTML)).status_code == 302


async def test_a_verified_email_links_the_existing_local_account(
    gateway: Gateway, runtime: Runtime, mailbox: Mailbox
) -> None:
    client = gateway.client
    made = await submit(
        client,
        "/sign-up",
        "/sign-up",
        {"email": "bob@uni.edu", "password": PASSWORD, "display_name": "Bob", "affiliation": ""},
    )
    assert made.status_code == 200
    [local] = await accounts_with(runtime, "bob@uni.edu")
    assert (await confirm_email(client, mailbox, "bob@uni.edu")).status_code == 302
    await submit(client, "/account", "/sign-out", {})

    subject = new_subject()
    gateway.issuer.set_user(
        subject, {"email": "bob@uni.edu", "email_verified": True, "name": "Robert"}
    )
    trip = await sign_in(gateway, subject)
    assert trip.answer.status_code == 302, trip.answer.text
    [account] = await accounts_with(runtime, "bob@uni.edu")
    assert account.id == local.id
    assert account.display_name == "Bob"  # the account keeps its own name
    [identity] = await identities_of(runtime, account.id)
    assert identity.subject == subject
    kinds = [k for k, _ in await evidence_kinds(runtime, account.id)]
    assert kinds[-2:] == ["account.oidc_linked", "account.signed_in"]
    # The password the owner set and confirmed keeps working.
    await submit(client, "/account", "/sign-out", {})
    by_password = await submit(
        client, "/sign-in", "/sign-in", {"email": "bob@uni.edu", "password": PASSWORD}
    )
    assert by_password.status_code == 302


async def test_linking_an_unconfirmed_local_account_removes_its_unproven_password(
    gateway: Gateway, runtime: Runtime
) -> None:
    # Someone registered carol's address in advance and never confirmed it.
    squatter = await submit(
        gateway.client,
        "/sign-up",
        "/sign-up",
        {"email": "carol@uni.edu", "password": PASSWORD, "display_name": "", "affiliation": ""},
    )
    assert squatter.status_code == 200
    signed_in = await submit(
        gateway.client, "/sign-in", "/sign-in", {"email": "carol@uni.edu", "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    squatters_cookie = gateway.client.cookies["gw_session"]
    gateway.client.cookies.clear()
    subject = new_subject()
    gateway.issuer.set_user(subject, {"email": "carol@uni.edu", "email_verified": True})
    trip = await sign_in(gateway, subject)
    assert trip.answer.status_code == 302, trip.answer.text
    [account] = await accounts_with(runtime, "carol@uni.edu")
    assert account.email_verified_at is not None
    assert account.password_hash is None
    linked = [d for k, d in await evidence_kinds(runtime, account.id) if k == "account.oidc_linked"]
    assert linked == [
        {
            "provider": "mock",
            "issuer": gateway.issuer.url,
            "subject": subject,
            "email": "carol@uni.edu",
            "password_removed": True,
        }
    ]
    await submit(gateway.client, "/account", "/sign-out", {})
    by_password = await submit(
        gateway.client, "/sign-in", "/sign-in", {"email": "carol@uni.edu", "password": PASSWORD}
    )
    assert by_password.status_code == 401
    # The session opened with that password ended too.
    gateway.client.cookies.clear()
    gateway.client.cookies.set("gw_session", squatters_cookie)
    assert (await gateway.client.get("/account", headers=HTML)).status_code == 302


async def test_an_email_the_provider_has_not_verified_is_refused(
    gateway: Gateway, runtime: Runtime, mailbox: Mailbox
) -> None:
    made = await submit(
        gateway.client,
        "/sign-up",
        "/sign-up",
        {"email": "dave@uni.edu", "password": PASSWORD, "display_name": "", "affiliation": ""},
    )
    assert made.status_code == 200
    [local] = await accounts_with(runtime, "dave@uni.edu")
    assert (await confirm_email(gateway.client, mailbox, "dave@uni.edu")).status_code == 302
    await submit(gateway.client, "/account", "/sign-out", {})

    for claims in (
        {"email": "dave@uni.edu", "email_verified": False},
        {"email": "dave@uni.edu"},
        {"email": "erin@uni.edu", "email_verified": False},
    ):
        subject = new_subject()
        gateway.issuer.set_user(subject, claims)
        trip = await sign_in(gateway, subject)
        assert trip.answer.status_code == 403, trip.answer.text
        assert "has not verified the email address" in trip.answer.text
        assert (await gateway.client.get("/account", headers=HTML)).status_code == 302
    assert await identities_of(runtime, local.id) == []
    assert await accounts_with(runtime, "erin@uni.edu") == []
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OidcIdentity)) == 0


async def test_a_tampered_missing_or_replayed_state_is_refused(gateway: Gateway) -> None:
    subject = new_subject()
    gateway.issuer.set_user(subject, {"email": "frank@uni.edu", "email_verified": True})
    callback = await authorize_at_provider(await go_to_provider(gateway), subject)
    path = callback.removeprefix("http://testserver")
    code = query(callback)["code"]

    tampered = await gateway.client.get(
        f"/sign-in/oidc/mock/callback?code={code}&state=forged", headers=HTML
    )
    missing = await gateway.client.get(f"/sign-in/oidc/mock/callback?code={code}", headers=HTML)
    for answer in (tampered, missing):
        assert answer.status_code == 400
        assert "This sign-in attempt is not valid" in answer.text
    # Another browser (no session) cannot finish this sign-in either.
    async with AsyncTestClient(app=gateway.client.app) as stranger:
        stranger.follow_redirects = False
        elsewhere = await stranger.get(path, headers=HTML)
    assert elsewhere.status_code == 400

    # The genuine answer still works, once.
    genuine = await gateway.client.get(path, headers=HTML)
    assert genuine.status_code == 302, genuine.text
    assert genuine.headers["location"] == "/account"
    replayed = await gateway.client.get(path, headers=HTML)
    assert replayed.status_code == 400
    assert "already used" in replayed.text


async def test_a_refusal_at_the_provider_is_shown(gateway: Gateway) -> None:
    authorization_url = await go_to_provider(gateway)
    async with httpx2.AsyncClient() as browser:
        denied = await browser.post(authorization_url, data={"action": "deny"})
    assert denied.status_code == 302
    callback = denied.headers["location"]
    assert query(callback)["error"] == "access_denied"
    # RFC 6749 4.1.2.1 returns the state with the error; the mock leaves it out.
    assert "state" not in query(callback)
    callback += f"&state={query(authorization_url)['state']}"
    answer = await gateway.client.get(callback.removeprefix("http://testserver"), headers=HTML)
    assert answer.status_code == 401
    assert "Sign-in with Mock ID failed: you did not allow it" in answer.text


async def test_an_unknown_provider_is_not_found(gateway: Gateway) -> None:
    for path in ("/sign-in/oidc/nope?next=/account", "/sign-in/oidc/nope/callback?code=x"):
        answer = await gateway.client.get(path, headers=HTML)
        assert answer.status_code == 404
        assert "no sign-in provider called &#39;nope&#39;" in answer.text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_provider_is_a_clear_502(settings: Settings) -> None:
    down = OidcProvider(
        name="down",
        title="Down ID",
        issuer=f"http://127.0.0.1:{_closed_port()}",
        client_id="c",
        client_secret="s",
    )
    app = create_app(settings=replace(settings, oidc=(down,)))
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        answer = await client.get("/sign-in/oidc/down", headers=HTML)
    assert answer.status_code == 502
    assert "Down ID could not be reached" in answer.text


# --- discovery and keys, kept across sign-ins ---------------------------------------


async def test_two_sign_ins_fetch_the_discovery_document_and_key_set_once(
    gateway: Gateway,
) -> None:
    discovery = gateway.issuer.fetches("/.well-known/openid-configuration")
    jwks = gateway.issuer.fetches("/jwks")
    for name in ("gail", "hank"):
        subject = new_subject()
        gateway.issuer.set_user(subject, {"email": f"{name}@uni.edu", "email_verified": True})
        trip = await sign_in(gateway, subject)
        assert trip.answer.status_code == 302, trip.answer.text
        await submit(gateway.client, "/account", "/sign-out", {})
    assert gateway.issuer.fetches("/.well-known/openid-configuration") == discovery + 1
    assert gateway.issuer.fetches("/jwks") == jwks + 1


class _KeysBeforeRotation(httpx2.AsyncBaseTransport):
    """The provider's answers, except that the first key set fetched is the one it had
    before it rotated to the key that signs its tokens now."""

    def __init__(self, old_keys: dict[str, Any], seen: list[str]) -> None:
        self._inner = bounded()
        self._old_keys = old_keys
        self._seen = seen

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self._seen.append(request.url.path)
        if request.url.path == "/jwks" and self._seen.count("/jwks") == 1:
            return httpx2.Response(200, json=self._old_keys)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_token_signed_with_a_key_not_yet_fetched_fetches_the_key_set_again(
    gateway: Gateway,
) -> None:
    seen: list[str] = []
    clock = [5000.0]
    old_key = RSAKey.generate_key(2048, parameters={"kid": "retired"})
    old_keys = KeySet([RSAKey.import_key(old_key.as_dict(private=False))]).as_dict()
    gateway.client.app.state[DIRECTORY_STATE] = ProviderDirectory(
        key_refetch_seconds=60,
        monotonic=lambda: clock[0],
        http=lambda: httpx2.AsyncClient(transport=_KeysBeforeRotation(old_keys, seen)),
    )
    subjects = []
    for name in ("ivy", "jon", "kim"):
        subject = new_subject()
        gateway.issuer.set_user(subject, {"email": f"{name}@uni.edu", "email_verified": True})
        subjects.append(subject)

    # The key set was fetched a moment ago: a token its keys do not check (the mock
    # names no key in its tokens) is refused without asking the provider again.
    first = await sign_in(gateway, subjects[0])
    assert first.answer.status_code == 401, first.answer.text
    assert "signature of its sign-in token does not match" in first.answer.text
    assert seen == ["/.well-known/openid-configuration", "/jwks"]

    # A minute on, the same refusal fetches the key set again, finds the new key, and
    # the sign-in goes through; the next one fetches nothing.
    clock[0] += 61
    second = await sign_in(gateway, subjects[1])
    assert second.answer.status_code == 302, second.answer.text
    assert seen == ["/.well-known/openid-configuration", "/jwks", "/jwks"]
    await submit(gateway.client, "/account", "/sign-out", {})
    clock[0] += 1
    third = await sign_in(gateway, subjects[2])
    assert third.answer.status_code == 302, third.answer.text
    assert seen == ["/.well-known/openid-configuration", "/jwks", "/jwks"]
