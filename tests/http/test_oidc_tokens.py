"""The ID token checks one by one, with tokens minted here: every forgery refused with
its reason, and the refusals that may mean the provider rotated its keys told apart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.identity.oidc_tokens import IdTokenRejected, validate_id_token

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


def test_a_refusal_says_when_the_keys_may_be_older_than_the_token(
    provider_key: RSAKey, other_key: RSAKey
) -> None:
    unnamed = jwt.encode({"alg": "RS256"}, _claims(), other_key, algorithms=["RS256"])
    cases = {
        # A key the set does not hold: perhaps one the provider rotated to.
        FORGERIES["signed by a key the provider does not publish"][1](provider_key, other_key): (
            True
        ),
        # No key named, and the one the set holds fails: perhaps the old one.
        unnamed: True,
        # The provider's own key id with a signature it does not check: a forgery.
        _mint(other_key): False,
        _mint(provider_key, aud="someone-else"): False,
    }
    for token, stale in cases.items():
        with pytest.raises(IdTokenRejected) as refused:
            _check(token, provider_key)
        assert refused.value.stale_keys is stale, refused.value.reason
