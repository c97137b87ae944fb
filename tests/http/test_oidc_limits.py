"""A misbehaving OpenID provider never causes a 500: a discovery document, key set, token
or userinfo answer that is huge or nested deeper than any real one is refused with a
clear 502 page, and an ID token whose JSON is such is refused like any unreadable one."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import OidcProvider, Settings
from gateway.jsonlimits import MAX_DEPTH, PROVIDER_ANSWER
from tests.fixtures.rogue_provider import RogueProvider
from tests.http.portal import HTML, Http

pytestmark = pytest.mark.anyio

DEEP = b"[" * 100_000 + b"]" * 100_000
JUST_TOO_DEEP = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)


def huge(document: dict[str, Any]) -> bytes:
    """A valid document, padded past the limit with a field nobody reads."""
    return json.dumps({**document, "padding": "x" * PROVIDER_ANSWER.max_bytes}).encode()


def nested(document: dict[str, Any]) -> bytes:
    """A valid document with a field nested far deeper than the limit."""
    return json.dumps({**document, "extra": 0}).encode().replace(b"0}", DEEP + b"}")


@dataclass
class Gateway:
    client: Http
    rogue: RogueProvider


@pytest.fixture
async def gateway(settings: Settings, rogue_provider: RogueProvider) -> AsyncIterator[Gateway]:
    provider = OidcProvider(
        name="rogue", title="Rogue ID", issuer=rogue_provider.url, client_id="c", client_secret="s"
    )
    app = create_app(settings=replace(settings, oidc=(provider,)))
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        yield Gateway(client, rogue_provider)


def assert_refused(answer: Any, what: str) -> None:
    assert answer.status_code == 502, answer.text
    assert "Rogue ID could not be reached to sign you in" in answer.text
    assert f"its {what} was refused" in answer.text
    assert "Traceback" not in answer.text


async def start(gw: Gateway) -> dict[str, str]:
    """Start a sign-in; the query the gateway sent the browser to the provider with."""
    started = await gw.client.get("/sign-in/oidc/rogue", headers=HTML)
    assert started.status_code == 302, started.text
    return {k: v[0] for k, v in parse_qs(urlsplit(started.headers["location"]).query).items()}


async def come_back(gw: Gateway, query: dict[str, str]) -> Any:
    return await gw.client.get(
        f"/sign-in/oidc/rogue/callback?code=the-code&state={query['state']}", headers=HTML
    )


def claims(rogue: RogueProvider, nonce: str, **more: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": rogue.url,
        "sub": "rogue-subject",
        "aud": "c",
        "exp": now + 300,
        "iat": now,
        "nonce": nonce,
        **more,
    }


@pytest.mark.parametrize("shape", ["huge", "deep", "just-too-deep"])
@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
async def test_a_huge_or_deep_discovery_document_or_key_set_is_a_502(
    gateway: Gateway, path: str, shape: str
) -> None:
    good = gateway.rogue.answer(path)
    assert good is not None
    document = json.loads(good)
    gateway.rogue.answers[path] = {
        "huge": huge(document),
        "deep": nested(document),
        "just-too-deep": json.dumps({**document, "extra": 0})
        .encode()
        .replace(b"0}", JUST_TOO_DEEP + b"}"),
    }[shape]
    answer = await gateway.client.get("/sign-in/oidc/rogue", headers=HTML)
    assert_refused(answer, "discovery document" if path.startswith("/.well") else "key set")


async def test_a_well_formed_provider_still_gets_to_its_authorization_page(
    gateway: Gateway,
) -> None:
    # Nesting up to the limit is fine: the refusals above are about the limit, not JSON.
    document = gateway.rogue.discovery()
    deep_enough = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    gateway.rogue.answers["/.well-known/openid-configuration"] = (
        json.dumps({**document, "extra": 0}).encode().replace(b"0}", deep_enough + b"}")
    )
    query = await start(gateway)
    assert query["client_id"] == "c"


@pytest.mark.parametrize("shape", ["huge", "deep"])
async def test_a_huge_or_deep_token_answer_is_a_502(gateway: Gateway, shape: str) -> None:
    query = await start(gateway)
    token = {
        "access_token": "at",
        "token_type": "Bearer",
        "id_token": gateway.rogue.id_token(claims(gateway.rogue, query["nonce"])),
    }
    gateway.rogue.answers["/token"] = huge(token) if shape == "huge" else nested(token)
    assert_refused(await come_back(gateway, query), "token answer")


@pytest.mark.parametrize("shape", ["huge", "deep"])
async def test_a_huge_or_deep_userinfo_answer_is_a_502(gateway: Gateway, shape: str) -> None:
    query = await start(gateway)
    # No verified email in the ID token: the gateway asks userinfo for one.
    id_token = gateway.rogue.id_token(claims(gateway.rogue, query["nonce"]))
    gateway.rogue.answers["/token"] = json.dumps(
        {"access_token": "at", "token_type": "Bearer", "id_token": id_token}
    ).encode()
    info = {"sub": "rogue-subject", "email": "r@uni.example", "email_verified": True}
    gateway.rogue.answers["/userinfo"] = huge(info) if shape == "huge" else nested(info)
    assert_refused(await come_back(gateway, query), "userinfo answer")


async def test_an_id_token_with_deeply_nested_claims_is_refused_as_unreadable(
    gateway: Gateway,
) -> None:
    query = await start(gateway)
    deep_claims = claims(gateway.rogue, query["nonce"], extra=0)
    payload = json.dumps(deep_claims).encode().replace(b'"extra": 0', b'"extra": ' + DEEP[:4000])
    id_token = gateway.rogue.id_token(deep_claims)
    header, _, signature = id_token.split(".")
    forged = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    gateway.rogue.answers["/token"] = json.dumps(
        {"access_token": "at", "token_type": "Bearer", "id_token": f"{header}.{forged}.{signature}"}
    ).encode()
    answer = await come_back(gateway, query)
    assert answer.status_code == 401, answer.text
    assert "its sign-in token could not be read" in answer.text
