"""Download tokens: short-lived Ed25519 JWTs, one artifact each, signed with a rotating key.

Keys live in the database so every replica signs and verifies with the same set; their
private halves are sealed with the key-encryption key (key_encryption.py), which is not in
the database. A retired key still verifies until `verify_until` (its last token's
expiry), and all keys that still verify are published as a JWKS so an edge can check
tokens too.

A token is accepted only as this gateway writes it: the compact form with each segment in
unpadded base64url exactly as re-encoding gives it back, our claims and no others, each of
the type and range we issue. Anything else is `url_invalid`, never an error of ours.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.utils import base64url_decode, base64url_encode
from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.credentials.key_encryption import KeyEncryptionError, KeyEncryptor, is_sealed
from gateway.db.models import UrlSigningKey
from gateway.db.uow import UnitOfWork

ALGORITHM = "EdDSA"
AUDIENCE = "release-gateway:download"
# Clocks of replicas and edges drift a little; a URL a few seconds past its expiry is
# still honoured rather than failing a download that just started.
LEEWAY_SECONDS = 5
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti", "grant", "art", "dl")
# `key`: the API key the URL was issued under (absent for a portal session's URLs).
CLAIMS = frozenset({*REQUIRED_CLAIMS, "key"})
# How long a process keeps using the keys it loaded (the bound of every cache of the hot
# paths, gateway/db/changes.py, which also forgets them when the keys table changes);
# rotation waits this long plus the longest URL lifetime before the old key stops verifying.
KEY_CACHE_SECONDS = 1
UNKNOWN_KID_RECHECK = 1.0
# Our tokens are about 500 characters; a longer one is not ours and is not parsed.
MAX_TOKEN_LENGTH = 2048
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z0-9-]{1,64}")  # uuids and hex ids, as issued
_LATEST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime holds
_LARGEST_ARTIFACT_ID = 2**31 - 1  # the column is a 32-bit integer
_PREPARE_LOCK = int.from_bytes(hashlib.sha256(b"gateway:url-signing-keys").digest()[:8], "big") >> 1


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
    key_id: str | None  # None: issued to a signed-in portal session


@dataclass(frozen=True)
class SigningKeyPair:
    kid: str
    private_key: Ed25519PrivateKey


def _new_key_row(now: datetime, encryptor: KeyEncryptor) -> UrlSigningKey:
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(public_raw).hexdigest()[:16]
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sealed = encryptor.seal(pem, kid=kid)
    return UrlSigningKey(kid=kid, sealed_private_key=sealed, public_jwk=jwk, created_at=now)


def _private_key(row: UrlSigningKey, encryptor: KeyEncryptor) -> Ed25519PrivateKey:
    stored = row.sealed_private_key
    # A row from before sealing holds PEM until the start-up step seals it.
    pem = encryptor.open(stored, kid=row.kid) if is_sealed(stored) else stored.encode()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private


async def active_key(session: AsyncSession, encryptor: KeyEncryptor) -> SigningKeyPair | None:
    """The newest unretired key, or None if there is none yet (a read: nothing is written)."""
    row = await session.scalar(
        select(UrlSigningKey)
        .where(UrlSigningKey.retired_at.is_(None))
        .order_by(UrlSigningKey.created_at.desc())
        .limit(1)
    )
    if row is None:
        return None
    return SigningKeyPair(kid=row.kid, private_key=_private_key(row, encryptor))


async def _reseal(session: AsyncSession, encryptor: KeyEncryptor) -> tuple[int, int]:
    """Seal plaintext rows and re-seal rows under an older KEK with the current one.

    Every row is opened, so a wrong or missing KEK stops here, naming it, and the
    caller's transaction writes nothing. Returns (rows sealed, rows in all). Idempotent:
    each update is guarded by the value it replaces, so two processes doing it agree.
    """
    rows = (await session.scalars(select(UrlSigningKey))).all()
    if not any(is_sealed(row.sealed_private_key) for row in rows):
        # Nothing is sealed yet: a key-encryption key made now loses nothing.
        encryptor.create_if_missing()
    changed = 0
    for row in rows:
        stored = row.sealed_private_key
        if is_sealed(stored) and encryptor.is_current(stored):
            encryptor.open(stored, kid=row.kid)
            continue
        pem = encryptor.open(stored, kid=row.kid) if is_sealed(stored) else stored.encode()
        if not pem.startswith(b"-----BEGIN PRIVATE KEY-----"):
            raise KeyEncryptionError(f"URL signing key {row.kid} does not hold a private key")
        result = await session.execute(
            update(UrlSigningKey)
            .where(UrlSigningKey.kid == row.kid, UrlSigningKey.sealed_private_key == stored)
            .values(sealed_private_key=encryptor.seal(pem, kid=row.kid))
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount  # type: ignore[attr-defined]
    return changed, len(rows)


async def prepare_keys(session: AsyncSession, encryptor: KeyEncryptor, now: datetime) -> int:
    """At start: check the KEK opens every key, seal what is not, and make the first key.

    Runs in the caller's write transaction. Returns how many rows it (re-)sealed.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # Replicas starting together wait for each other here rather than each making a
        # first key (on SQLite the write transaction already serialises them).
        await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PREPARE_LOCK})
    changed, _ = await _reseal(session, encryptor)
    if await active_key(session, encryptor) is None:
        session.add(_new_key_row(now, encryptor))
        await session.flush()
    return changed


async def rotate(
    session: AsyncSession, encryptor: KeyEncryptor, now: datetime, longest_ttl_seconds: int
) -> tuple[str, list[str]]:
    """Start signing with a new key; retire the others; every key ends up sealed with the
    current key-encryption key. Returns (new kid, retired kids)."""
    await _reseal(session, encryptor)
    grace = timedelta(seconds=longest_ttl_seconds + KEY_CACHE_SECONDS + LEEWAY_SECONDS)
    current = (
        await session.scalars(select(UrlSigningKey).where(UrlSigningKey.retired_at.is_(None)))
    ).all()
    for row in current:
        row.retired_at = now
        row.verify_until = now + grace
    fresh = _new_key_row(now, encryptor)
    session.add(fresh)
    await session.flush()
    return fresh.kid, [row.kid for row in current]


async def reseal_keys(session: AsyncSession, encryptor: KeyEncryptor) -> tuple[int, int]:
    """Seal every key with the current key-encryption key; (rows re-sealed, rows in all)."""
    return await _reseal(session, encryptor)


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
    key_id: str | None,
    now: datetime,
    ttl_seconds: int,
) -> tuple[str, datetime]:
    """A signed token for one artifact, and when it expires; `key_id` is the API key it is
    issued under, so that revoking the key stops the URL (None for a portal session)."""
    expires = now + timedelta(seconds=ttl_seconds)
    payload: dict[str, Any] = {
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
    if key_id is not None:
        payload["key"] = key_id
    token = jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, expires


def is_canonical(token: str) -> bool:
    """Three segments, each unpadded base64url that re-encodes to itself.

    Base64 decoders forgive padding, stray characters and spare bits; a token that only
    decodes to ours is a different string, and a URL we never issued is refused.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        return False
    segments = token.split(".")
    if len(segments) != 3:
        return False
    for segment in segments:
        if _SEGMENT.fullmatch(segment) is None:
            return False
        try:
            if base64url_encode(base64url_decode(segment)).decode() != segment:
                return False
        except (binascii.Error, ValueError):
            return False
    return True


def verify(
    token: str, *, issuer: str, keys: dict[str, dict[str, Any]], now: datetime
) -> DownloadClaims:
    """Check a token's form, signature and claims; TokenExpired or TokenInvalid otherwise."""
    if not is_canonical(token):
        raise TokenInvalid("this download link is malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("this download link is malformed") from exc
    # The algorithm is pinned: a token claiming `none` or HS256 never reaches a key.
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid("this download link was not signed by this gateway")
    kid = header.get("kid")
    jwk = keys.get(kid) if isinstance(kid, str) else None
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
            options={
                "require": list(REQUIRED_CLAIMS),
                # `aud` is the one string we write, never a list that happens to hold it.
                "strict_aud": True,
                # Expiry is checked below against the gateway's clock, not the library's,
                # so that every decision in a request uses one `now`.
                "verify_exp": False,
                "verify_iat": False,
                # We never write `nbf`; a token that carries it is refused below.
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("this download link is not valid") from exc
    return _claims(claims, now)


def _claims(claims: dict[str, Any], now: datetime) -> DownloadClaims:
    """Our claims, each of the type and range we issue, judged against `now`.

    Only a holder of the signing key reaches here with odd values, but even they get a
    refusal, never an overflow: numbers must be integers a datetime or a column can hold.
    """
    invalid = TokenInvalid("this download link is not valid")
    if set(claims) - CLAIMS:
        raise invalid
    expires, issued, artifact = claims["exp"], claims["iat"], claims["art"]
    if not all(_is_int(v, 0, _LATEST_TIMESTAMP) for v in (expires, issued)):
        raise invalid
    if not _is_int(artifact, 1, _LARGEST_ARTIFACT_ID):
        raise invalid
    names = ("sub", "grant", "dl", "jti", *(("key",) if "key" in claims else ()))
    if not all(isinstance(claims[n], str) and _IDENTIFIER.fullmatch(claims[n]) for n in names):
        raise invalid
    moment = now.timestamp()
    if issued > moment + LEEWAY_SECONDS:
        raise TokenInvalid("this download link is not valid yet")
    # The signature was checked first, so an expired token here is a genuine one.
    if expires + LEEWAY_SECONDS < moment:
        raise TokenExpired("this download link has expired")
    return DownloadClaims(
        account_id=claims["sub"],
        grant_id=claims["grant"],
        artifact_id=artifact,
        download_id=claims["dl"],
        token_id=claims["jti"],
        expires_at=datetime.fromtimestamp(expires, tz=now.tzinfo or UTC),
        key_id=claims.get("key"),
    )


def _is_int(value: object, low: int, high: int) -> bool:
    # bool is an int to Python, and a float may be huge or not a number at all.
    return type(value) is int and low <= value <= high


class KeyCache:
    """Per-process cache of the signing key and the verifying keys.

    Re-read at most every KEY_CACHE_SECONDS, and at once when a token names a kid this
    process has not seen (a rotation by another process).
    """

    def __init__(self) -> None:
        self._signing: tuple[datetime, SigningKeyPair] | None = None
        self._verifying: tuple[datetime, dict[str, dict[str, Any]]] | None = None
        self._refreshing = asyncio.Lock()

    async def signing(self, uow: UnitOfWork, now: datetime) -> SigningKeyPair:
        """The key to sign with, read (when stale) in the caller's unit of work, which
        enters its write phase only if no key exists yet.

        Call it before the unit's other reads: a request waiting here for another's
        refresh then holds no connection. A key read by a unit that has written is cached
        only once that unit has committed, so this process never signs with a key that a
        rollback takes away (one no other process could verify).
        """
        cached = self._fresh_signing(now)
        if cached is not None:
            return cached
        # One refresh per process at a time; the others wait for it, not for the pool.
        async with self._refreshing:
            cached = self._fresh_signing(now)
            if cached is not None:
                return cached
            encryptor = uow.rt.key_encryptor
            found = await active_key(uow.session, encryptor)
            if found is None:
                session = await uow.write()
                await prepare_keys(session, encryptor, now)
                found = await active_key(session, encryptor)
                assert found is not None
            if uow.writing:
                uow.after_commit(self._remember_signing(now, found))
            else:
                self._signing = (now, found)
            return found

    def _remember_signing(
        self, now: datetime, key: SigningKeyPair
    ) -> Callable[[], Awaitable[None]]:
        async def remember() -> None:
            self._signing = (now, key)

        return remember

    def _fresh_signing(self, now: datetime) -> SigningKeyPair | None:
        if self._signing is None or (now - self._signing[0]).total_seconds() > KEY_CACHE_SECONDS:
            return None
        return self._signing[1]

    async def verifying(
        self, uow: UnitOfWork, now: datetime, kid: str | None
    ) -> dict[str, dict[str, Any]]:
        """Public keys by kid, read in the caller's unit of work when stale."""
        age = None if self._verifying is None else (now - self._verifying[0]).total_seconds()
        stale = (
            self._verifying is None
            or age is None
            or age > KEY_CACHE_SECONDS
            # A kid not seen yet may be another process's rotation; re-read, but at most
            # once a second, so that made-up kids cannot turn every request into a query.
            or (kid is not None and kid not in self._verifying[1] and age >= UNKNOWN_KID_RECHECK)
        )
        if stale:
            self._verifying = (now, await verifying_keys(uow.session, now))
        assert self._verifying is not None
        return self._verifying[1]

    def forget(self) -> None:
        self._signing = None
        self._verifying = None


def unverified_kid(token: str) -> str | None:
    """The kid a canonical token names, unchecked (to know whether to re-read the keys)."""
    if not is_canonical(token):
        return None
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) and _IDENTIFIER.fullmatch(kid) else None
