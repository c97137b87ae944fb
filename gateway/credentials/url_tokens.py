"""Download tokens: short-lived Ed25519 JWTs, one artifact each, signed with a rotating key.

Keys live in the database so every replica signs and verifies with the same set. A
retired key still verifies until `verify_until` (its last token's expiry), and all keys
that still verify are published as a JWKS so an edge can check tokens too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import UrlSigningKey

ALGORITHM = "EdDSA"
AUDIENCE = "release-gateway:download"
# Clocks of replicas and edges drift a little; a URL a few seconds past its expiry is
# still honoured rather than failing a download that just started.
LEEWAY_SECONDS = 5
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti", "grant", "art", "dl")
# How long a process keeps using the key it loaded; rotation waits this long plus the
# longest URL lifetime before the old key stops verifying.
KEY_CACHE_SECONDS = 60


class TokenExpired(Exception):
    """The signature is good, but the URL's lifetime is over."""


class TokenInvalid(Exception):
    """Not a token this gateway signed, or one that was changed."""


@dataclass(frozen=True)
class DownloadClaims:
    account_id: str
    grant_id: str
    artifact_id: int
    download_id: str
    token_id: str
    expires_at: datetime


@dataclass(frozen=True)
class SigningKeyPair:
    kid: str
    private_key: Ed25519PrivateKey


def _new_key_row(now: datetime) -> UrlSigningKey:
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(public_raw).hexdigest()[:16]
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return UrlSigningKey(kid=kid, private_pem=pem, public_jwk=jwk, created_at=now)


async def active_key(session: AsyncSession, now: datetime) -> SigningKeyPair:
    """The newest unretired key, created on first use."""
    row = await session.scalar(
        select(UrlSigningKey)
        .where(UrlSigningKey.retired_at.is_(None))
        .order_by(UrlSigningKey.created_at.desc())
        .limit(1)
    )
    if row is None:
        row = _new_key_row(now)
        session.add(row)
        await session.flush()
    private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return SigningKeyPair(kid=row.kid, private_key=private)


async def rotate(
    session: AsyncSession, now: datetime, longest_ttl_seconds: int
) -> tuple[str, list[str]]:
    """Start signing with a new key; retire the others. Returns (new kid, retired kids)."""
    grace = timedelta(seconds=longest_ttl_seconds + KEY_CACHE_SECONDS + LEEWAY_SECONDS)
    current = (
        await session.scalars(select(UrlSigningKey).where(UrlSigningKey.retired_at.is_(None)))
    ).all()
    for row in current:
        row.retired_at = now
        row.verify_until = now + grace
    fresh = _new_key_row(now)
    session.add(fresh)
    await session.flush()
    return fresh.kid, [row.kid for row in current]


async def verifying_keys(session: AsyncSession, now: datetime) -> dict[str, dict[str, Any]]:
    """Public JWKs of every key that still verifies, by kid."""
    rows = (
        await session.scalars(
            select(UrlSigningKey)
            .where(or_(UrlSigningKey.retired_at.is_(None), UrlSigningKey.verify_until > now))
            .order_by(UrlSigningKey.created_at.desc())
        )
    ).all()
    return {row.kid: dict(row.public_jwk) for row in rows}


def issue(
    key: SigningKeyPair,
    *,
    issuer: str,
    account_id: str,
    grant_id: str,
    artifact_id: int,
    download_id: str,
    now: datetime,
    ttl_seconds: int,
) -> tuple[str, datetime]:
    """A signed token for one artifact, and when it expires."""
    expires = now + timedelta(seconds=ttl_seconds)
    payload = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": account_id,
        "grant": grant_id,
        "art": artifact_id,
        "dl": download_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, expires


def verify(
    token: str, *, issuer: str, keys: dict[str, dict[str, Any]], now: datetime
) -> DownloadClaims:
    """Check a token's signature and claims; TokenExpired or TokenInvalid otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("this download link is malformed") from exc
    # The algorithm is pinned: a token claiming `none` or HS256 never reaches a key.
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid("this download link was not signed by this gateway")
    jwk = keys.get(str(header.get("kid")))
    if jwk is None:
        raise TokenInvalid("this download link was signed with a key this gateway does not know")
    public = jwt.algorithms.OKPAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(public, Ed25519PublicKey)
    try:
        claims = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],  # pinned, never taken from the token
            audience=AUDIENCE,  # a token minted for another purpose is refused
            issuer=issuer,  # and one from another gateway
            # Expiry is checked below against the gateway's clock, not the library's, so
            # that every decision in a request uses one `now`; presence is still required.
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("this download link is not valid") from exc
    moment = now.timestamp()
    try:
        expires, issued = int(claims["exp"]), int(claims["iat"])
    except (TypeError, ValueError) as exc:
        raise TokenInvalid("this download link is not valid") from exc
    if issued > moment + LEEWAY_SECONDS:
        raise TokenInvalid("this download link is not valid yet")
    # The signature was checked first, so an expired token here is a genuine one.
    if expires + LEEWAY_SECONDS < moment:
        raise TokenExpired("this download link has expired")
    try:
        return DownloadClaims(
            account_id=str(claims["sub"]),
            grant_id=str(claims["grant"]),
            artifact_id=int(claims["art"]),
            download_id=str(claims["dl"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        )
    except (TypeError, ValueError) as exc:
        raise TokenInvalid("this download link is not valid") from exc


class KeyCache:
    """Per-process cache of the signing key and the verifying keys.

    Re-read at most every KEY_CACHE_SECONDS, and at once when a token names a kid this
    process has not seen (a rotation by another process).
    """

    def __init__(self) -> None:
        self._signing: tuple[datetime, SigningKeyPair] | None = None
        self._verifying: tuple[datetime, dict[str, dict[str, Any]]] | None = None

    async def signing(self, rt: Any, now: datetime) -> SigningKeyPair:
        """The key to sign with; `rt` is the Runtime (its write transaction may create one)."""
        if self._signing is None or (now - self._signing[0]).total_seconds() > KEY_CACHE_SECONDS:
            async with rt.transaction() as session:
                self._signing = (now, await active_key(session, now))
        return self._signing[1]

    async def verifying(
        self, session: AsyncSession, now: datetime, kid: str | None
    ) -> dict[str, dict[str, Any]]:
        stale = (
            self._verifying is None
            or (now - self._verifying[0]).total_seconds() > KEY_CACHE_SECONDS
            or (kid is not None and kid not in self._verifying[1])
        )
        if stale:
            self._verifying = (now, await verifying_keys(session, now))
        assert self._verifying is not None
        return self._verifying[1]

    def forget(self) -> None:
        self._signing = None
        self._verifying = None


def unverified_kid(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) else None
