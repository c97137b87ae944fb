"""The OpenID providers of `[oidc.<name>]`: their discovery documents and key sets,
fetched once and kept per provider.

Rules of this module:
- A provider's discovery document and key set are fetched together, once per TTL, and
  one fetch at a time per provider: sign-ins that arrive together wait for the same one.
- A token signed with a key the key set does not hold (a key rotation at the provider)
  fetches the key set again, but never more often than `key_refetch_seconds`: a token
  naming made-up keys cannot make the gateway hammer the provider.
- Every answer (discovery document, key set) is held to jsonlimits.PROVIDER_ANSWER while
  it is read and before it is parsed: a huge or deeply nested one is a ProviderUnavailable
  (502), never a 500. So is a provider that does not answer or answers nonsense.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.config import OidcProvider, Settings
from gateway.errors import GatewayError, NotFound
from gateway.jsonlimits import (
    PROVIDER_ANSWER,
    JsonRefused,
    JsonTooLarge,
    LimitedTransport,
    parse_json,
    read_limited,
)

logger = logging.getLogger("gateway.identity.oidc")

DISCOVERY_TTL_SECONDS = 3600.0
# The least time between two fetches of a provider's key set for tokens naming a key it
# did not hold: a rotation is picked up within this, made-up key ids cost one fetch.
KEY_REFETCH_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 10.0


class ProviderUnavailable(GatewayError):
    status = 502

    def __init__(self, provider: OidcProvider, detail: str) -> None:
        super().__init__(
            f"{provider.title} could not be reached to sign you in ({detail}). "
            "Try again in a moment; if it keeps failing, tell the gateway's operators.",
            code="oidc_provider_unavailable",
        )


def find_provider(settings: Settings, name: str) -> OidcProvider:
    for provider in settings.oidc:
        if provider.name == name:
            return provider
    raise NotFound(f"there is no sign-in provider called {name!r}", code="oidc_provider_unknown")


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a provider's discovery document that sign-in uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str
    signing_algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]

    @property
    def token_auth_method(self) -> str:
        # client_secret_basic is the default the spec gives when the provider says nothing.
        if not self.token_auth_methods or "client_secret_basic" in self.token_auth_methods:
            return "client_secret_basic"
        if "client_secret_post" in self.token_auth_methods:
            return "client_secret_post"
        return "client_secret_basic"


@dataclass
class _Cached:
    metadata: ProviderMetadata
    keys: KeySet
    fetched_at: float
    keys_fetched_at: float


class ProviderDirectory:
    """Discovery documents and key sets of the configured providers, kept for a while.

    One per process (the sign-in pages keep it in the app's state); `http` makes the HTTP
    client of each fetch (tests may pass their own), `monotonic` is the clock of the TTL.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = DISCOVERY_TTL_SECONDS,
        key_refetch_seconds: float = KEY_REFETCH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        http: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.key_refetch_seconds = key_refetch_seconds
        self._monotonic = monotonic
        self._http = http or http_client
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def metadata(self, provider: OidcProvider) -> ProviderMetadata:
        return (await self._entry(provider)).metadata

    async def keys(self, provider: OidcProvider, *, refresh: bool = False) -> KeySet:
        """The provider's public keys.

        `refresh` is for a token signed with a key they do not hold: the key set is
        fetched again unless it was fetched less than `key_refetch_seconds` ago.
        """
        async with self._lock(provider):
            entry = await self._fresh_entry(provider)
            now = self._monotonic()
            if refresh and now - entry.keys_fetched_at >= self.key_refetch_seconds:
                entry.keys = await self._fetch_keys(provider, entry.metadata)
                entry.keys_fetched_at = now
            return entry.keys

    async def _entry(self, provider: OidcProvider) -> _Cached:
        async with self._lock(provider):
            return await self._fresh_entry(provider)

    def _lock(self, provider: OidcProvider) -> asyncio.Lock:
        return self._locks.setdefault(provider.issuer, asyncio.Lock())

    async def _fresh_entry(self, provider: OidcProvider) -> _Cached:
        # Called under the provider's lock: the sign-ins waiting on it find the entry made.
        entry = self._cache.get(provider.issuer)
        now = self._monotonic()
        if entry is None or now - entry.fetched_at >= self.ttl_seconds:
            metadata = await self._fetch_metadata(provider)
            keys = await self._fetch_keys(provider, metadata)
            entry = _Cached(metadata, keys, now, now)
            self._cache[provider.issuer] = entry
        return entry

    async def _get_json(self, provider: OidcProvider, url: str, what: str) -> dict[str, Any]:
        try:
            async with (
                self._http() as client,
                client.stream("GET", url, headers={"accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    logger.warning(
                        "oidc %s: %s answered %s", provider.name, url, response.status_code
                    )
                    raise ProviderUnavailable(
                        provider, f"its {what} answered HTTP {response.status_code}"
                    )
                content = await read_limited(response, PROVIDER_ANSWER)
        except httpx2.HTTPError as exc:
            logger.warning("oidc %s: fetching %s failed: %s", provider.name, url, exc)
            raise ProviderUnavailable(provider, f"its {what} did not answer") from exc
        except JsonTooLarge as exc:
            logger.warning("oidc %s: %s refused: %s", provider.name, url, exc)
            raise ProviderUnavailable(provider, f"its {what} was refused: {exc}") from exc
        try:
            body = parse_json(content, PROVIDER_ANSWER)
        except JsonTooLarge as exc:
            logger.warning("oidc %s: %s refused: %s", provider.name, url, exc)
            raise ProviderUnavailable(provider, f"its {what} was refused: {exc}") from exc
        except JsonRefused:
            body = None
        if not isinstance(body, dict):
            raise ProviderUnavailable(provider, f"its {what} is not a JSON object")
        return body

    async def _fetch_metadata(self, provider: OidcProvider) -> ProviderMetadata:
        document = await self._get_json(
            provider, f"{provider.issuer}/.well-known/openid-configuration", "discovery document"
        )
        try:
            return _parse_metadata(provider, document)
        except ValueError as exc:
            logger.warning("oidc %s: bad discovery document: %s", provider.name, exc)
            raise ProviderUnavailable(provider, "its discovery document is not usable") from exc

    async def _fetch_keys(self, provider: OidcProvider, metadata: ProviderMetadata) -> KeySet:
        document = await self._get_json(provider, metadata.jwks_uri, "key set")
        try:
            return KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            logger.warning("oidc %s: bad JWKS: %s", provider.name, exc)
            raise ProviderUnavailable(provider, "its key set is not usable") from exc


def http_client() -> httpx2.AsyncClient:
    """A client for a provider's answers, each bounded by PROVIDER_ANSWER as it is read."""
    return httpx2.AsyncClient(transport=bounded(), timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS))


def bounded() -> LimitedTransport:
    """A transport that stops reading any provider answer past PROVIDER_ANSWER's size."""
    return LimitedTransport(httpx2.AsyncHTTPTransport(), PROVIDER_ANSWER)


def _parse_metadata(provider: OidcProvider, document: Mapping[str, Any]) -> ProviderMetadata:
    issuer = document.get("issuer")
    # Discovery requires the document's issuer to be the one it was fetched for; a
    # trailing slash is the one difference allowed, since the configuration strips it.
    if not isinstance(issuer, str) or issuer.rstrip("/") != provider.issuer:
        raise ValueError(f"issuer {issuer!r} is not the configured {provider.issuer!r}")
    secure = provider.issuer.startswith("https://")

    def endpoint(name: str) -> str:
        value = document.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{name} is missing")
        scheme = urlsplit(value).scheme
        if scheme != "https" and (secure or scheme != "http"):
            raise ValueError(f"{name} {value!r} is not an https URL")
        return value

    def strings(name: str) -> tuple[str, ...]:
        value = document.get(name) or []
        if not isinstance(value, list):
            raise ValueError(f"{name} is not a list")
        return tuple(str(v) for v in value)

    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoint("authorization_endpoint"),
        token_endpoint=endpoint("token_endpoint"),
        userinfo_endpoint=(
            endpoint("userinfo_endpoint") if document.get("userinfo_endpoint") is not None else None
        ),
        jwks_uri=endpoint("jwks_uri"),
        # RS256 is the algorithm every OpenID provider must support.
        signing_algorithms=strings("id_token_signing_alg_values_supported") or ("RS256",),
        token_auth_methods=strings("token_endpoint_auth_methods_supported"),
    )
