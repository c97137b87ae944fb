"""The ID token of an OpenID sign-in: trusted only after every check passes.

Rules of this module:
- The signature must check against the provider's key set with a pinned list of
  asymmetric algorithms (joserfc, Authlib's JOSE library), and `iss`, `aud` (and `azp`),
  `exp`, `iat` and the `nonce` of this very sign-in attempt must all match (Authlib's
  CodeIDToken claims rules), within LEEWAY_SECONDS of clock skew.
- The token's own JSON is held to jsonlimits.PROVIDER_ANSWER before any parser sees it:
  a huge or deeply nested header or payload is refused as unreadable.
- Every refusal is an IdTokenRejected whose `reason` names the check that failed.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from datetime import datetime
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
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

from gateway.errors import GatewayError
from gateway.jsonlimits import PROVIDER_ANSWER, JsonRefused, check_json

# Clock skew allowed between the provider and the gateway, for exp, iat and nbf.
LEEWAY_SECONDS = 60
# Only asymmetric signatures: an HS* token would be checked with a key the provider
# publishes (algorithm confusion), and "none" is no signature at all.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
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
    """An ID token that must not be trusted; `reason` says which check it failed.

    `stale_keys` says the keys it was checked with may be older than the token: it names
    a key they do not hold, or names none and fails against the ones they hold (after a
    rotation, a set of one key holds the old one).
    """

    status = 401

    def __init__(self, reason: str, detail: str = "", *, stale_keys: bool = False) -> None:
        self.reason = reason
        self.detail = detail
        self.stale_keys = stale_keys
        super().__init__(_TOKEN_REASONS[reason], code="oidc_token_invalid")


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
        raise IdTokenRejected("unknown_key", str(exc), stale_keys=True) from exc
    except BadSignatureError as exc:
        stale = _names_no_key(id_token)
        raise IdTokenRejected("signature", str(exc), stale_keys=stale) from exc
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


def _names_no_key(id_token: str) -> bool:
    try:
        header = jws.extract_compact(id_token.encode("ascii")).protected
    except (JoseError, ValueError, TypeError):
        return False
    return header.get("kid") is None


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
