"""A provider's discovery document and key set: kept for their TTL, fetched once for
sign-ins that arrive together, fetched again for a token naming a key not yet seen, but
never more than once a minute, and refused when they are not the provider's."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc.jwk import RSAKey
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import OidcProvider, Settings
from gateway.identity.oidc_pages import DIRECTORY_STATE
from gateway.identity.oidc_providers import ProviderDirectory, ProviderUnavailable, bounded
from tests.fixtures.oidc import MockIssuer
from tests.fixtures.rogue_provider import RogueProvider
from tests.http.portal import HTML

pytestmark = [
    pytest.mark.anyio,
    # The mock provider calls Authlib server APIs that Authlib has deprecated.
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


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


async def test_the_key_set_is_fetched_again_at_most_once_a_minute(
    oidc_issuer: MockIssuer,
) -> None:
    seen: list[str] = []
    clock = [1000.0]

    async def count(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    directory = ProviderDirectory(
        key_refetch_seconds=60,
        monotonic=lambda: clock[0],
        http=lambda: httpx2.AsyncClient(event_hooks={"request": [count]}),
    )
    provider = OidcProvider("mock", "Mock", oidc_issuer.url, "c", "s")
    await directory.keys(provider)
    assert seen == ["/.well-known/openid-configuration", "/jwks"]
    # Tokens naming keys the set does not hold, one after another: no fetch within the
    # minute after the last one, whatever the tokens say.
    for _ in range(5):
        clock[0] += 11
        await directory.keys(provider, refresh=True)
    assert seen == ["/.well-known/openid-configuration", "/jwks"]
    clock[0] += 5
    await directory.keys(provider, refresh=True)
    assert seen == ["/.well-known/openid-configuration", "/jwks", "/jwks"]
    clock[0] += 59
    await directory.keys(provider, refresh=True)
    await directory.keys(provider)
    assert seen == ["/.well-known/openid-configuration", "/jwks", "/jwks"]


async def test_sign_ins_that_arrive_together_wait_for_one_fetch(oidc_issuer: MockIssuer) -> None:
    seen: list[str] = []

    async def count(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    directory = ProviderDirectory(http=lambda: httpx2.AsyncClient(event_hooks={"request": [count]}))
    provider = OidcProvider("mock", "Mock", oidc_issuer.url, "c", "s")
    found = await asyncio.gather(*(directory.metadata(provider) for _ in range(5)))
    assert len(set(found)) == 1
    assert seen == ["/.well-known/openid-configuration", "/jwks"]


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


async def test_a_token_naming_a_key_not_yet_fetched_fetches_the_key_set_again(
    settings: Settings, rogue_provider: RogueProvider
) -> None:
    # A provider that names its keys: the set fetched first holds only the key it used
    # before it rotated to `rogue-1`.
    old_key = RSAKey.generate_key(2048, parameters={"kid": "rogue-0"})
    rogue_provider.answers["/jwks"] = json.dumps(
        {"keys": [RSAKey.import_key(old_key.as_dict(private=False)).as_dict()]}
    ).encode()
    seen: list[str] = []
    clock = [5000.0]

    async def count(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    provider = OidcProvider("rogue", "Rogue ID", rogue_provider.url, "c", "s")
    app = create_app(settings=replace(settings, oidc=(provider,)))
    app.state[DIRECTORY_STATE] = ProviderDirectory(
        key_refetch_seconds=60,
        monotonic=lambda: clock[0],
        http=lambda: httpx2.AsyncClient(transport=bounded(), event_hooks={"request": [count]}),
    )
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False

        async def come_back() -> Any:
            started = await client.get("/sign-in/oidc/rogue", headers=HTML)
            assert started.status_code == 302, started.text
            asked = query(started.headers["location"])
            now = int(datetime.now(UTC).timestamp())
            claims = {"iss": rogue_provider.url, "sub": "rogue-subject", "aud": "c"}
            claims |= {"exp": now + 300, "iat": now, "nonce": asked["nonce"]}
            claims |= {"email": "rogue@uni.edu", "email_verified": True}
            rogue_provider.answers["/token"] = json.dumps(
                {
                    "access_token": "at",
                    "token_type": "Bearer",
                    "id_token": rogue_provider.id_token(claims),
                }
            ).encode()
            return await client.get(
                f"/sign-in/oidc/rogue/callback?code=c0de&state={asked['state']}", headers=HTML
            )

        refused = await come_back()
        assert refused.status_code == 401, refused.text
        assert "signed with a key the provider does not publish" in refused.text
        assert seen.count("/jwks") == 1
        del rogue_provider.answers["/jwks"]
        clock[0] += 61
        signed_in = await come_back()
        assert signed_in.status_code == 302, signed_in.text
        assert seen.count("/jwks") == 2
        assert seen.count("/.well-known/openid-configuration") == 1
