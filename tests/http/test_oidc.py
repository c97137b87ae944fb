"""Sign-in through an OpenID Connect provider: a real provider (oidc-provider-mock) on
loopback for the whole flow, and the ID token checks one by one with tokens minted here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.config import OidcProvider, Settings
from gateway.db.models import Account, Evidence, OidcIdentity
from gateway.identity.oidc_providers import ProviderDirectory, ProviderUnavailable
from gateway.identity.oidc_tokens import IdTokenRejected, validate_id_token
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


# --- discovery ---------------------------------------------------------------------------


async def test_discovery_is_cached_for_its_ttl(oidc_issuer: MockIssuer) -> None:
    seen: list[str] = []
    clock = [1000.0]

    async def count(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    directory = ProviderDirectory(
        ttl_seconds=60,
        monotonic=lambda: clock[0],
        http=lambda: httpx2.AsyncClient(event_hooks={"request": [count]}),
    )
    provider = OidcProvider("mock", "Mock", oidc_issuer.url, "c", "s")
    first = await directory.metadata(provider)
    assert first.issuer == oidc_issuer.url
    assert first.token_endpoint == f"{oidc_issuer.url}/oauth2/token"
    assert first.signing_algorithms == ("RS256",)
    assert len(list(await directory.keys(provider))) == 1
    clock[0] += 59
    assert await directory.metadata(provider) == first
    assert seen == ["/.well-known/openid-configuration", "/jwks"]
    clock[0] += 1
    await directory.metadata(provider)
    assert seen == ["/.well-known/openid-configuration", "/jwks"] * 2
    await directory.keys(provider, refresh=True)
    assert seen[-1] == "/jwks"


async def test_a_discovery_document_for_another_issuer_is_refused() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            json={
                "issuer": "https://evil.example",
                "authorization_endpoint": "https://evil.example/authorize",
                "token_endpoint": "https://evil.example/token",
                "jwks_uri": "https://evil.example/jwks",
            },
        )

    directory = ProviderDirectory(
        http=lambda: httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    )
    provider = OidcProvider("good", "Good ID", "https://id.good.example", "c", "s")
    with pytest.raises(ProviderUnavailable, match="discovery document is not usable"):
        await directory.metadata(provider)


# --- the ID token, check by check ------------------------------------------------------

ISSUER = "https://id.uni.example"
CLIENT_ID = "release-gateway"
NONCE = "n-0S6_WzA2Mj"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def provider_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "provider-1"})


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "provider-1"})


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
        "iat": int(NOW.timestamp()),
        "nonce": NONCE,
        "email": "jane@uni.example",
        "email_verified": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _mint(key: RSAKey, alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, _claims(**changes), key, algorithms=[alg])


def _check(token: str, key: RSAKey) -> dict[str, Any]:
    public = KeySet([RSAKey.import_key(key.as_dict(private=False))])
    return validate_id_token(
        token, public, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE, now=NOW
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned() -> str:
    header = {"alg": "none", "kid": "provider-1"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}."


def _hmac_with_public_key(provider: RSAKey) -> str:
    # Algorithm confusion: an HS256 "signature" keyed with what the provider publishes.
    # joserfc refuses to build such a key, so the token is put together by hand.
    header = {"alg": "HS256", "kid": "provider-1"}
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}"
    mac = hmac.new(provider.as_pem(private=False), signed.encode(), hashlib.sha256)
    return f"{signed}.{_b64(mac.digest())}"


def test_a_genuine_id_token_passes(provider_key: RSAKey) -> None:
    claims = _check(_mint(provider_key), provider_key)
    assert claims["sub"] == "248289761001"
    assert claims["email"] == "jane@uni.example"
    # A list audience that holds the client id passes; so does a token in its last second,
    # and one that expired within the minute of clock skew the gateway allows.
    assert _check(_mint(provider_key, aud=[CLIENT_ID]), provider_key)["aud"] == [CLIENT_ID]
    assert _check(_mint(provider_key, exp=int(NOW.timestamp()) + 1), provider_key)
    assert _check(_mint(provider_key, exp=int(NOW.timestamp()) - 30), provider_key)


FORGERIES: dict[str, tuple[str, Callable[[RSAKey, RSAKey], str]]] = {
    "signed by another key with the provider's kid": (
        "signature",
        lambda provider, other: _mint(other),
    ),
    "signed by a key the provider does not publish": (
        "unknown_key",
        lambda provider, other: jwt.encode(
            {"alg": "RS256", "kid": "someone-else"}, _claims(), other, algorithms=["RS256"]
        ),
    ),
    "not signed at all": ("algorithm", lambda provider, other: _unsigned()),
    "HMAC with the provider's public key as the secret": (
        "algorithm",
        lambda provider, other: _hmac_with_public_key(provider),
    ),
    "for another application": (
        "audience",
        lambda provider, other: _mint(provider, aud="someone-else"),
    ),
    "for several audiences, ours without azp": (
        "audience",
        lambda provider, other: _mint(provider, aud=["someone-else", CLIENT_ID]),
    ),
    "from another issuer": (
        "issuer",
        lambda provider, other: _mint(provider, iss="https://evil.example"),
    ),
    "for another sign-in attempt": (
        "nonce",
        lambda provider, other: _mint(provider, nonce="another-attempt"),
    ),
    "without a nonce": ("claims", lambda provider, other: _mint(provider, nonce=None)),
    "expired": (
        "expired",
        lambda provider, other: _mint(provider, exp=int((NOW - timedelta(minutes=2)).timestamp())),
    ),
    "without an expiry": ("claims", lambda provider, other: _mint(provider, exp=None)),
    "issued in the future": (
        "issued_at",
        lambda provider, other: _mint(provider, iat=int((NOW + timedelta(hours=1)).timestamp())),
    ),
    "without a subject": ("claims", lambda provider, other: _mint(provider, sub=None)),
    "not a token": ("malformed", lambda provider, other: "not.a.token"),
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_forged_or_wrong_id_token_is_refused_with_its_reason(
    case: str, provider_key: RSAKey, other_key: RSAKey
) -> None:
    reason, make = FORGERIES[case]
    token = make(provider_key, other_key)
    with pytest.raises(IdTokenRejected) as refused:
        _check(token, provider_key)
    assert refused.value.reason == reason
    assert refused.value.status == 401
    assert refused.value.message  # a sentence for the person signing in
