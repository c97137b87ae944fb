"""The authorization code flow with a provider: the request that sends the browser there
(state, nonce and PKCE S256, by Authlib's client), the pending sign-in kept in the
session until the browser comes back, and the code exchange that proves who signed in.

Rules of this module:
- A pending sign-in is used once, by the browser session that started it, for the
  provider it was started with, within PENDING_TTL_SECONDS; anything else is
  SignInStateInvalid.
- Every answer of the provider (token, userinfo) is held to jsonlimits.PROVIDER_ANSWER
  before it is parsed: a huge or deeply nested one is a ProviderUnavailable (502).
- The userinfo answer counts only for the subject the ID token proved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.jwk import KeySet

from gateway.config import OidcProvider, Settings
from gateway.errors import GatewayError
from gateway.identity.oidc_providers import (
    HTTP_TIMEOUT_SECONDS,
    ProviderDirectory,
    ProviderMetadata,
    ProviderUnavailable,
    bounded,
)
from gateway.identity.oidc_tokens import IdTokenRejected, validate_id_token
from gateway.jsonlimits import PROVIDER_ANSWER, JsonTooLarge, check_json, parse_json
from gateway.runtime import Runtime

logger = logging.getLogger("gateway.identity.oidc")

# A sign-in that takes longer than this at the provider starts again.
PENDING_TTL_SECONDS = 10 * 60
# Sign-ins started in other tabs that stay valid side by side.
PENDING_PER_SESSION = 5
# Random values of the authorization request, in characters of [A-Za-z0-9]: state and
# nonce far past guessing, the PKCE verifier within RFC 7636's 43..128.
STATE_LENGTH = 48
NONCE_LENGTH = 48
CODE_VERIFIER_LENGTH = 64
SESSION_PENDING = "oidc_pending"


class SignInStateInvalid(GatewayError):
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "This sign-in attempt is not valid: it has expired, was already used, or was "
            "started in another browser. Start again from the sign-in page.",
            code="oidc_state_invalid",
        )


class SignInRefused(GatewayError):
    status = 401

    def __init__(self, provider: OidcProvider, reason: str, *, code: str) -> None:
        super().__init__(f"Sign-in with {provider.title} failed: {reason}.", code=code)


def redirect_uri(settings: Settings, provider: OidcProvider) -> str:
    """The callback registered with the provider for this gateway."""
    return f"{settings.public_url}/sign-in/oidc/{provider.name}/callback"


def _client(
    settings: Settings, provider: OidcProvider, metadata: ProviderMetadata
) -> AsyncOAuth2Client:
    """Authlib's client for one sign-in: the same settings build the authorization URL
    and exchange the code, and every answer it reads is bounded as it arrives."""
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method=metadata.token_auth_method,
        redirect_uri=redirect_uri(settings, provider),
        scope=" ".join(provider.scopes),
        code_challenge_method="S256",
        timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS),
        transport=bounded(),
    )


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in sent to a provider, kept in the server-side session until it comes back."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    next: str
    started_at: float

    def as_session(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "next": self.next,
            "started_at": self.started_at,
        }

    @classmethod
    def from_session(cls, state: str, value: object) -> PendingSignIn | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                provider=str(value["provider"]),
                state=state,
                nonce=str(value["nonce"]),
                code_verifier=str(value["code_verifier"]),
                next=str(value["next"]),
                started_at=float(value["started_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


async def authorization_request(
    settings: Settings,
    provider: OidcProvider,
    metadata: ProviderMetadata,
    *,
    next_path: str,
    now: float,
) -> tuple[str, PendingSignIn]:
    """The URL that sends the browser to the provider, and what to remember until it returns."""
    pending = PendingSignIn(
        provider=provider.name,
        state=generate_token(STATE_LENGTH),
        nonce=generate_token(NONCE_LENGTH),
        code_verifier=generate_token(CODE_VERIFIER_LENGTH),
        next=next_path,
        started_at=now,
    )
    async with _client(settings, provider, metadata) as client:
        url, _ = client.create_authorization_url(
            metadata.authorization_endpoint,
            state=pending.state,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
        )
    return str(url), pending


def remember(
    session: Mapping[str, Any], pending: PendingSignIn, now: float
) -> dict[str, dict[str, Any]]:
    """The session's pending sign-ins with `pending` added and stale ones dropped."""
    kept = {
        state: value
        for state, value in _pending(session).items()
        if (p := PendingSignIn.from_session(state, value))
        and now - p.started_at < PENDING_TTL_SECONDS
    }
    kept[pending.state] = pending.as_session()
    newest = sorted(kept.items(), key=lambda item: item[1]["started_at"])[-PENDING_PER_SESSION:]
    return dict(newest)


def take_pending(
    session: Mapping[str, Any], provider: OidcProvider, state: str | None, now: float
) -> tuple[PendingSignIn, dict[str, dict[str, Any]]]:
    """The pending sign-in that `state` names, once; SignInStateInvalid otherwise.

    Returns it with the pending sign-ins left in the session, which no longer hold it.
    """
    remaining = dict(_pending(session))
    value = remaining.pop(state, None) if state else None
    pending = PendingSignIn.from_session(state, value) if state else None
    if (
        pending is None
        or pending.provider != provider.name
        or not 0 <= now - pending.started_at < PENDING_TTL_SECONDS
    ):
        raise SignInStateInvalid
    return pending, remaining


SESSION_PENDING = "oidc_pending"


def _pending(session: Mapping[str, Any]) -> dict[str, Any]:
    value = session.get(SESSION_PENDING)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in: the subject, and an email if it vouches for one."""

    subject: str
    email: str | None
    email_verified: bool
    name: str


def _identity(claims: Mapping[str, Any]) -> ProviderIdentity:
    email = claims.get("email")
    verified = claims.get("email_verified")
    name = claims.get("name")
    return ProviderIdentity(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) and email else None,
        # Some providers send the boolean as a string.
        email_verified=verified is True or verified == "true",
        name=name.strip()[:200] if isinstance(name, str) else "",
    )


def _checked_token_answer(response: httpx2.Response) -> httpx2.Response:
    """Authlib's hook before it parses the token answer: refuse it if too large or deep."""
    check_json(response.content, PROVIDER_ANSWER)
    return response


async def verified_identity(
    rt: Runtime,
    directory: ProviderDirectory,
    provider: OidcProvider,
    pending: PendingSignIn,
    code: str,
) -> ProviderIdentity:
    """Exchange the authorization code and return the identity its ID token proves."""
    metadata = await directory.metadata(provider)
    async with _client(rt.settings, provider, metadata) as client:
        client.register_compliance_hook("access_token_response", _checked_token_answer)
        try:
            token = await client.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=code,
                redirect_uri=redirect_uri(rt.settings, provider),
                code_verifier=pending.code_verifier,
            )
        except AuthlibBaseError as exc:
            logger.warning("oidc %s: token endpoint refused: %s", provider.name, exc)
            raise SignInRefused(
                provider,
                "the provider did not accept this sign-in (it may have expired or been "
                "used already); start again from the sign-in page",
                code="oidc_code_refused",
            ) from exc
        except httpx2.HTTPError as exc:
            logger.warning("oidc %s: token endpoint failed: %s", provider.name, exc)
            raise ProviderUnavailable(provider, "its token endpoint did not answer") from exc
        except JsonTooLarge as exc:
            logger.warning("oidc %s: token endpoint answer refused: %s", provider.name, exc)
            raise ProviderUnavailable(provider, f"its token answer was refused: {exc}") from exc
        except ValueError as exc:
            logger.warning("oidc %s: token endpoint answered nonsense: %s", provider.name, exc)
            raise ProviderUnavailable(provider, "its token endpoint answered nonsense") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused(
                provider, "the provider sent no sign-in token", code="oidc_token_missing"
            )
        access_token = token.get("access_token")
        claims = await _validated_claims(
            rt, directory, provider, metadata, id_token, pending, access_token
        )
        identity = _identity(claims)
        if (identity.email is None or not identity.email_verified) and metadata.userinfo_endpoint:
            identity = await _with_userinfo(client, provider, metadata, identity)
    return identity


async def _validated_claims(
    rt: Runtime,
    directory: ProviderDirectory,
    provider: OidcProvider,
    metadata: ProviderMetadata,
    id_token: str,
    pending: PendingSignIn,
    access_token: object,
) -> dict[str, Any]:
    def check(keys: KeySet) -> dict[str, Any]:
        return validate_id_token(
            id_token,
            keys,
            # The discovered issuer equals the configured one (see _parse_metadata), and
            # is the exact string the provider writes into its tokens.
            issuer=metadata.issuer,
            client_id=provider.client_id,
            nonce=pending.nonce,
            now=rt.clock(),
            algorithms=metadata.signing_algorithms,
            access_token=access_token if isinstance(access_token, str) else None,
        )

    try:
        try:
            return check(await directory.keys(provider))
        except IdTokenRejected as exc:
            if not exc.stale_keys:
                raise
            # The provider may have rotated its keys since we fetched them; the directory
            # fetches them again at most once a minute, whatever tokens arrive.
            return check(await directory.keys(provider, refresh=True))
    except IdTokenRejected as exc:
        logger.warning("oidc %s: ID token refused (%s): %s", provider.name, exc.reason, exc.detail)
        raise SignInRefused(provider, exc.message, code="oidc_token_invalid") from exc


async def _with_userinfo(
    client: AsyncOAuth2Client,
    provider: OidcProvider,
    metadata: ProviderMetadata,
    identity: ProviderIdentity,
) -> ProviderIdentity:
    assert metadata.userinfo_endpoint is not None
    try:
        response = await client.get(metadata.userinfo_endpoint)
        info = (
            parse_json(response.content, PROVIDER_ANSWER) if response.status_code == 200 else None
        )
    except JsonTooLarge as exc:
        # Not a sloppy answer but a hostile one: the sign-in stops, as for the others.
        logger.warning("oidc %s: userinfo answer refused: %s", provider.name, exc)
        raise ProviderUnavailable(provider, f"its userinfo answer was refused: {exc}") from exc
    except (AuthlibBaseError, httpx2.HTTPError, ValueError) as exc:
        logger.warning("oidc %s: userinfo failed: %s", provider.name, exc)
        return identity
    # The userinfo answer counts only for the subject the ID token proved.
    if not isinstance(info, dict) or info.get("sub") != identity.subject:
        return identity
    return _identity({"name": identity.name, **info, "sub": identity.subject})
