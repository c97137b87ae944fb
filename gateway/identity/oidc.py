"""Sign-in through OpenID Connect providers: discovery, the authorization code flow with
PKCE, ID token validation and account linking.

Rules of this module:
- An ID token is trusted only after its signature checks against the provider's JWKS
  with a pinned list of asymmetric algorithms, and `iss`, `aud`, `exp`, `iat` and the
  `nonce` of this very sign-in attempt all match.
- An identity is found by (issuer, subject), never by email alone. An email links to an
  existing account, or creates one, only when the provider says it verified that email:
  linking on an unverified email would hand an account to whoever typed its address.
- Every refusal is a GatewayError with a sentence a user understands; nothing here
  answers with a 500 for a provider that misbehaves. Every answer of a provider
  (discovery, key set, token, userinfo, and the ID token's own JSON) is held to
  jsonlimits.PROVIDER_ANSWER before it is parsed: a huge or deeply nested one is a 502.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingAlgorithmError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.config import OidcProvider, Settings
from gateway.db.models import Account, OidcIdentity
from gateway.errors import Conflict, GatewayError, InvalidInput, NotFound
from gateway.identity.accounts import create_account, normalise_email
from gateway.identity.repository import find_account
from gateway.identity.sessions import end_sessions
from gateway.jsonlimits import (
    PROVIDER_ANSWER,
    JsonRefused,
    JsonTooLarge,
    LimitedTransport,
    check_json,
    parse_json,
    read_limited,
)
from gateway.runtime import Runtime
from stages import evidence as ev

logger = logging.getLogger("gateway.identity.oidc")

DISCOVERY_TTL_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10.0
# A sign-in that takes longer than this at the provider starts again.
PENDING_TTL_SECONDS = 10 * 60
# Sign-ins started in other tabs that stay valid side by side.
PENDING_PER_SESSION = 5
# Clock skew allowed between the provider and the gateway, for exp, iat and nbf.
LEEWAY_SECONDS = 60
# Only asymmetric signatures: an HS* token would be checked with a key the provider
# publishes (algorithm confusion), and "none" is no signature at all.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class ProviderUnavailable(GatewayError):
    status = 502

    def __init__(self, provider: OidcProvider, detail: str) -> None:
        super().__init__(
            f"{provider.title} could not be reached to sign you in ({detail}). "
            "Try again in a moment; if it keeps failing, tell the gateway's operators.",
            code="oidc_provider_unavailable",
        )


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


class EmailNotVerified(GatewayError):
    status = 403

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(
            f"Sign-in with {provider.title} failed: {provider.title} has not verified the "
            "email address of your account there, so it cannot be used to sign you in here. "
            f"Verify your email with {provider.title}, or sign in with a password.",
            code="oidc_email_unverified",
        )


# Why an ID token was refused, in words for the person signing in.
_TOKEN_REASONS = {
    "malformed": "its sign-in token could not be read",
    "algorithm": "its sign-in token uses a signature algorithm the gateway does not accept",
    "unknown_key": "its sign-in token is signed with a key the provider does not publish",
    "signature": "the signature of its sign-in token does not match the provider's keys",
    "issuer": "its sign-in token was issued by someone other than the provider",
    "audience": "its sign-in token was issued for another application",
    "expired": "its sign-in token has expired (check that your computer's clock is right)",
    "issued_at": "its sign-in token is dated in the future",
    "not_yet_valid": "its sign-in token is not valid yet",
    "nonce": "its sign-in token belongs to another sign-in attempt",
    "access_token_hash": "its sign-in token does not match its access token",
    "claims": "its sign-in token lacks a required field or has an invalid one",
}


class IdTokenRejected(GatewayError):
    """An ID token that must not be trusted; `reason` says which check it failed."""

    status = 401

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(_TOKEN_REASONS[reason], code="oidc_token_invalid")


def find_provider(settings: Settings, name: str) -> OidcProvider:
    for provider in settings.oidc:
        if provider.name == name:
            return provider
    raise NotFound(f"there is no sign-in provider called {name!r}", code="oidc_provider_unknown")


def redirect_uri(settings: Settings, provider: OidcProvider) -> str:
    """The callback registered with the provider for this gateway."""
    return f"{settings.public_url}/sign-in/oidc/{provider.name}/callback"


# --- discovery ---------------------------------------------------------------------------


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


class ProviderDirectory:
    """Discovery documents and key sets of the configured providers, kept for a while.

    One per process; `http` is the HTTP client factory (tests may pass their own).
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = DISCOVERY_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        http: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._http = http or _http_client
        self._cache: dict[str, _Cached] = {}

    async def metadata(self, provider: OidcProvider) -> ProviderMetadata:
        return (await self._entry(provider)).metadata

    async def keys(self, provider: OidcProvider, *, refresh: bool = False) -> KeySet:
        """The provider's public keys; `refresh` fetches them again (after a key rotation)."""
        entry = await self._entry(provider)
        if refresh:
            entry.keys = await self._fetch_keys(provider, entry.metadata)
        return entry.keys

    async def _entry(self, provider: OidcProvider) -> _Cached:
        entry = self._cache.get(provider.issuer)
        now = self._monotonic()
        if entry is None or now - entry.fetched_at >= self.ttl_seconds:
            metadata = await self._fetch_metadata(provider)
            keys = await self._fetch_keys(provider, metadata)
            entry = _Cached(metadata, keys, now)
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


def _http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=_bounded(), timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS))


def _bounded() -> LimitedTransport:
    """A transport that stops reading any provider answer past PROVIDER_ANSWER's size."""
    return LimitedTransport(httpx2.AsyncHTTPTransport(), PROVIDER_ANSWER)


def _checked_token_answer(response: httpx2.Response) -> httpx2.Response:
    """Authlib's hook before it parses the token answer: refuse it if too large or deep."""
    check_json(response.content, PROVIDER_ANSWER)
    return response


def _parse_metadata(provider: OidcProvider, document: Mapping[str, Any]) -> ProviderMetadata:
    issuer = document.get("issuer")
    # Discovery requires the document's issuer to be the one it was fetched for; a
    # trailing slash is the one difference allowed, since the configuration strips it.
    if not isinstance(issuer, str) or issuer.rstrip("/") != provider.issuer:
        raise ValueError(f"issuer {issuer!r} is not the configured {provider.issuer!r}")
    secure = provider.issuer.startswith("https://")

    def endpoint(name: str, *, required: bool = True) -> str | None:
        value = document.get(name)
        if value is None and not required:
            return None
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

    authorization = endpoint("authorization_endpoint")
    token = endpoint("token_endpoint")
    jwks_uri = endpoint("jwks_uri")
    assert authorization is not None
    assert token is not None
    assert jwks_uri is not None
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=authorization,
        token_endpoint=token,
        userinfo_endpoint=endpoint("userinfo_endpoint", required=False),
        jwks_uri=jwks_uri,
        # RS256 is the algorithm every OpenID provider must support.
        signing_algorithms=strings("id_token_signing_alg_values_supported") or ("RS256",),
        token_auth_methods=strings("token_endpoint_auth_methods_supported"),
    )


# --- the authorization request -------------------------------------------------------


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


def s256_challenge(code_verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier (RFC 7636, section 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(
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
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        # 64 characters of the unreserved set: within PKCE's 43..128.
        code_verifier=secrets.token_urlsafe(48),
        next=next_path,
        started_at=now,
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri(settings, provider),
            "scope": " ".join(provider.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": s256_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in metadata.authorization_endpoint else "?"
    return f"{metadata.authorization_endpoint}{separator}{query}", pending


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


# --- the ID token ----------------------------------------------------------------------


def validate_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: datetime,
    algorithms: Collection[str] = ("RS256",),
    access_token: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token that passed every check; IdTokenRejected otherwise."""
    allowed = sorted(a for a in algorithms if a in SIGNING_ALGORITHMS) or ["RS256"]
    _check_token_json(id_token)
    try:
        token = jwt.decode(
            id_token,
            keys,
            # Providers add headers of their own (x5t, ...); only alg and kid matter here.
            registry=JWSRegistry(algorithms=allowed, strict_check_header=False),
        )
    except InvalidKeyIdError as exc:
        raise IdTokenRejected("unknown_key", str(exc)) from exc
    except BadSignatureError as exc:
        raise IdTokenRejected("signature", str(exc)) from exc
    except (UnsupportedAlgorithmError, MissingAlgorithmError) as exc:
        raise IdTokenRejected("algorithm", str(exc)) from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise IdTokenRejected("malformed", str(exc)) from exc

    claims = CodeIDToken(
        token.claims,
        token.header,
        {
            "iss": {"essential": True, "value": issuer},
            # A list audience passes when it contains the client id; azp is checked too.
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=int(now.timestamp()), leeway=LEEWAY_SECONDS)
    except ExpiredTokenError as exc:
        raise IdTokenRejected("expired", str(exc)) from exc
    except MissingClaimError as exc:
        # azp is required only when the token has audiences besides this client.
        reason = "audience" if exc.claim == "azp" else "claims"
        raise IdTokenRejected(reason, str(exc)) from exc
    except ClaimError as exc:
        reason = {
            "iss": "issuer",
            "aud": "audience",
            "azp": "audience",
            "nonce": "nonce",
            "iat": "issued_at",
            "nbf": "not_yet_valid",
            "at_hash": "access_token_hash",
        }.get(exc.claim, "claims")
        raise IdTokenRejected(reason, str(exc)) from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenRejected("claims", "sub is not a string")
    return dict(claims)


def _check_token_json(id_token: str) -> None:
    """Refuse an ID token whose header or claims are JSON too large or deep to parse."""
    if len(id_token) > PROVIDER_ANSWER.max_bytes:
        raise IdTokenRejected("malformed", "the token is larger than a provider answer may be")
    for segment in id_token.split(".")[:2]:
        try:
            decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except ValueError:
            return  # not base64: the decoder below says so in its own words
        try:
            check_json(decoded, PROVIDER_ANSWER)
        except JsonRefused as exc:
            raise IdTokenRejected("malformed", str(exc)) from exc


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


async def verified_identity(
    rt: Runtime,
    directory: ProviderDirectory,
    provider: OidcProvider,
    pending: PendingSignIn,
    code: str,
) -> ProviderIdentity:
    """Exchange the authorization code and return the identity its ID token proves."""
    metadata = await directory.metadata(provider)
    async with AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method=metadata.token_auth_method,
        timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS),
        transport=_bounded(),
    ) as client:
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
            if exc.reason != "unknown_key":
                raise
            # The provider may have rotated its keys since we fetched them.
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


# --- accounts --------------------------------------------------------------------------


async def sign_in_with(
    rt: Runtime, provider: OidcProvider, identity: ProviderIdentity, *, address: str | None
) -> Account:
    """The account of a provider identity: the linked one, or one linked by verified email."""
    try:
        async with rt.transaction() as session:
            return await _account_for(rt, session, provider, identity, address)
    except IntegrityError:
        # Another request linked the same identity or created the same email just now;
        # the second attempt finds what it made.
        async with rt.transaction() as session:
            return await _account_for(rt, session, provider, identity, address)


async def _account_for(
    rt: Runtime,
    session: AsyncSession,
    provider: OidcProvider,
    identity: ProviderIdentity,
    address: str | None,
) -> Account:
    now = rt.clock()
    method = f"oidc:{provider.name}"
    link = await session.scalar(
        select(OidcIdentity).where(
            OidcIdentity.issuer == provider.issuer, OidcIdentity.subject == identity.subject
        )
    )
    if link is not None:
        account = await session.get(Account, link.account_id)
        assert account is not None  # the foreign key cascades deletes
        if identity.email and identity.email != link.email:
            link.email = identity.email
    else:
        account = await _link_by_email(session, provider, identity, now, address)
    evidence.record(
        session,
        ev.AccountSignedIn(
            method=method,
            client_address=address,
            issuer=provider.issuer,
            subject=identity.subject,
        ),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    return account


async def _link_by_email(
    session: AsyncSession,
    provider: OidcProvider,
    identity: ProviderIdentity,
    now: datetime,
    address: str | None,
) -> Account:
    if identity.email is None or not identity.email_verified:
        raise EmailNotVerified(provider)
    try:
        email = normalise_email(identity.email)
    except InvalidInput as exc:
        raise SignInRefused(
            provider,
            f"the email address it gave ({identity.email!r}) is not one the gateway can use",
            code="oidc_email_invalid",
        ) from exc
    method = f"oidc:{provider.name}"
    account = await find_account(session, email)
    password_removed = False
    if account is None:
        account = await create_account(
            session,
            email,
            now=now,
            actor=None,
            payload=ev.AccountSignedUp(email=email, client_address=address, method=method),
            display_name=identity.name,
            email_verified_at=now,
        )
    else:
        other = await session.scalar(
            select(OidcIdentity).where(
                OidcIdentity.account_id == account.id, OidcIdentity.issuer == provider.issuer
            )
        )
        if other is not None:
            # The provider gave this email to another of its users (a reused address):
            # the account stays with the identity it was linked to.
            raise Conflict(
                f"Sign-in with {provider.title} failed: the account for {email} is linked to "
                f"another {provider.title} identity. Sign in with that one, or with a password.",
                code="oidc_linked_elsewhere",
            )
        if account.email_verified_at is None:
            # Nobody proved this address before: a password set on it may belong to someone
            # who registered another person's email in advance. The provider's proof wins,
            # and that password stops working (the owner can reset it by email).
            account.email_verified_at = now
            password_removed = account.password_hash is not None
            account.password_hash = None
            # Whoever signed in with that password is signed out everywhere.
            await end_sessions(session, account.id)
    session.add(
        OidcIdentity(
            account_id=account.id,
            provider=provider.name,
            issuer=provider.issuer,
            subject=identity.subject,
            email=identity.email,
            linked_at=now,
        )
    )
    await session.flush()
    evidence.record(
        session,
        ev.AccountOidcLinked(
            provider=provider.name,
            issuer=provider.issuer,
            subject=identity.subject,
            email=email,
            password_removed=password_removed,
        ),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    return account
