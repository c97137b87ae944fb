"""API keys. The secret is returned once, at creation; only its SHA-256 is stored."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from gateway import evidence
from gateway.credentials.api_key_format import (
    display_prefix,
    is_well_formed,
    key_digest,
    new_api_key,
)
from gateway.db.changes import WRITES_NOTHING_CACHED, detached
from gateway.db.models import Account, ApiKey
from gateway.db.uow import UnitOfWork
from gateway.errors import DatabaseUnavailable, GatewayError, InvalidInput, NotFound
from gateway.identity.accounts import ensure_active, normalise_email
from gateway.identity.repository import find_account
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.access import KeyFacts
from stages.actors import Actor
from stages.keys import KeyState, key_state

logger = logging.getLogger("gateway.keys")
SCOPES = ("download", "apply", "keys", "admin", "verify")
# A service account's keys verify grantees' keys and report their use; nothing else.
SERVICE_SCOPE = "verify"
# last_used_at is for people ("used 2 hours ago"); writing it on every request would turn
# every read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=5)
LAST_USED_LOCK_WAIT_SECONDS = 2.0


class Unauthenticated(GatewayError):
    status = 401
    exit_code = 10


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def parse_scopes(scopes: Sequence[str]) -> str:
    chosen = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in chosen if s not in SCOPES]
    if not chosen or unknown:
        problem = f"unknown scope {unknown[0]!r}" if unknown else "at least one scope is needed"
        raise InvalidInput(f"{problem}; scopes are {', '.join(SCOPES)}", code="invalid_scope")
    return " ".join(chosen)


async def create_key(
    uow: UnitOfWork,
    *,
    account_id: str,
    scopes: Sequence[str],
    days: int | None,
    name: str,
    actor: str,
) -> CreatedKey:
    """A new key for the account, expiring after `days` (the policy's default if None)."""
    rt = uow.rt
    rules = rt.policy.api_keys
    lifetime = rules.default_days if days is None else days
    if not 1 <= lifetime <= rules.max_days:
        raise InvalidInput(
            f"a key may live 1 to {rules.max_days} days (the policy's limit), not {lifetime}",
            code="invalid_expiry",
        )
    name = clean_text(name, field="the key's name", max_length=200, multiline=False) or ""
    chosen = parse_scopes(scopes)
    secret = new_api_key()
    now = rt.clock()
    owner = await uow.session.get(Account, account_id)
    if owner is None:
        raise NotFound("no such account", code="account_not_found")
    ensure_active(owner, "create API keys")
    if "admin" in chosen.split() and not owner.is_operator:
        raise InvalidInput(
            "only operators may hold keys with the 'admin' scope", code="invalid_scope"
        )
    if owner.is_service != (chosen == SERVICE_SCOPE):
        raise InvalidInput(
            "a service account's keys have the 'verify' scope alone"
            if owner.is_service
            else "only service accounts (gateway services create) may hold keys with the "
            "'verify' scope",
            code="invalid_scope",
        )
    session = await uow.write()
    key = ApiKey(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name=name,
        display_prefix=display_prefix(secret),
        secret_sha256=key_digest(secret),
        scopes=chosen,
        created_at=now,
        expires_at=now + timedelta(days=lifetime),
    )
    session.add(key)
    evidence.record(
        session,
        ev.KeyCreated(key=key.id, scopes=tuple(chosen), expires_at=key.expires_at),
        actor=Actor.parse(actor),
        at=now,
        account_id=account_id,
    )
    return CreatedKey(key=key, secret=secret)


async def list_keys(uow: UnitOfWork, account: Account) -> Sequence[ApiKey]:
    """The account's keys, oldest first; refused while the account is suspended."""
    ensure_active(account, "list or use API keys")
    return (
        await uow.session.scalars(
            select(ApiKey).where(ApiKey.account_id == account.id).order_by(ApiKey.created_at)
        )
    ).all()


async def revoke_key(uow: UnitOfWork, *, account_id: str, key_id: str, actor: str) -> ApiKey:
    """Revoke one of the account's keys at once. Another account's key is 'not found'."""
    now = uow.rt.clock()
    key = await uow.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
    )
    if key is None:
        raise NotFound(f"no key {key_id}", code="key_not_found")
    if key.revoked_at is None:
        session = await uow.write()
        key.revoked_at = now
        evidence.record(
            session,
            ev.KeyRevoked(key=key.id),
            actor=Actor.parse(actor),
            at=now,
            account_id=account_id,
        )
    return key


def state_of(key: ApiKey, now: datetime) -> KeyState:
    """Whether the key is active, revoked or expired at `now`."""
    return key_state(revoked=key.revoked_at is not None, expires_at=key.expires_at, now=now)


def key_facts_of(key: ApiKey) -> KeyFacts:
    """What the access decision needs to know about a key."""
    return KeyFacts(
        scopes=frozenset(key.scopes.split()),
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
    )


@dataclass(frozen=True)
class Caller:
    account: Account
    key: ApiKey


async def authenticate(session: AsyncSession, secret: str) -> Caller:
    """The account and key behind a bearer secret, or Unauthenticated (401). A read only.

    Revocation, expiry and scope are not judged here: the access decision does that, so
    every denial has the same reasons everywhere.
    """
    if not is_well_formed(secret):
        raise Unauthenticated(
            "that is not a valid API key (keys look like rgk_ followed by 28 letters and digits)",
            code="key_invalid",
        )
    found = (
        await session.execute(
            select(ApiKey, Account)
            .join(Account, ApiKey.account_id == Account.id)
            .where(ApiKey.secret_sha256 == key_digest(secret))
        )
    ).first()
    if found is None:
        raise Unauthenticated("this API key is not known to this gateway", code="key_invalid")
    key, account = found
    return Caller(account=account, key=key)


# What a key and its account are read from, for this process's caches.
_KEY_TABLES = ("api_keys", "accounts")


async def authenticate_cached(uow: UnitOfWork, secret: str) -> Caller:
    """authenticate for the hot paths, through this process's cache (gateway/db/changes.py):
    a revocation, a suspension or any change to the key or its account invalidates it.
    The rows are shared with other requests: read them, never change or add them."""
    if not secret.isascii():
        return await authenticate(uow.session, secret)  # refused, with its reason
    cache = uow.rt.changes.cache("caller by key", _KEY_TABLES)
    digest = key_digest(secret)
    # Only well-formed keys are kept, so a hit needs no checksum.
    found: Caller | None = cache.peek(digest)
    if found is not None:
        return found
    if not is_well_formed(secret):
        return await authenticate(uow.session, secret)  # refused, with its reason

    async def load() -> Caller:
        caller = await authenticate(uow.session, secret)
        detached(uow.session, caller.key, caller.account)
        return caller

    loaded: Caller | None = await cache.get(digest, load)
    assert loaded is not None
    return loaded


async def key_by_id(uow: UnitOfWork, key_id: str) -> ApiKey | None:
    """An API key by id, through this process's cache (shared: read it only)."""
    cache = uow.rt.changes.cache("key by id", _KEY_TABLES)

    async def load() -> ApiKey | None:
        key = await uow.session.get(ApiKey, key_id)
        if key is not None:
            detached(uow.session, key)
        return key

    found: ApiKey | None = await cache.get(key_id, load)
    return found


def note_key_use(uow: UnitOfWork, key: ApiKey, now: datetime) -> None:
    """Record, once the unit has committed, when the key was last used (at most every
    LAST_USED_RESOLUTION): best effort, after the work, so it never holds the unit's
    write lock or fails the unit."""
    if _recently_used(key, now):
        return
    rt = uow.rt

    async def later() -> None:
        await record_key_use(rt, key, now)

    uow.after_commit(later)


# At most this many keys' uses remembered per process; more start the memory over.
MAX_KEYS_NOTED = 100_000


def _noted_here(rt: Runtime, key_id: str, now: datetime) -> bool:
    """Whether this process wrote the key's use within LAST_USED_RESOLUTION; else note that
    it is writing it now. Of the requests of a busy key that arrive while the first write
    waits for its lock, only that first one writes."""
    noted = rt.keys_noted
    last = noted.get(key_id)
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return True
    if len(noted) >= MAX_KEYS_NOTED:
        noted.clear()
    noted[key_id] = now
    return False


def _recently_used(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION


async def record_key_use(rt: Runtime, key: ApiKey, now: datetime) -> None:
    """Write when a key was last used, at most every LAST_USED_RESOLUTION; best effort.

    Call it holding no connection: it runs a unit of its own for a short write, so a
    request never waits for a second connection while holding one. It waits briefly for
    locks and never fails: the time a key was last used is for people, not worth an error
    or a stall.
    """
    if _recently_used(key, now) or _noted_here(rt, key.id, now):
        return
    try:
        async with rt.unit() as uow:
            session = await uow.write(lock_wait_seconds=LAST_USED_LOCK_WAIT_SECONDS)
            await session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key.id,
                    # Of a burst of first requests, the first write is enough.
                    or_(
                        ApiKey.last_used_at.is_(None),
                        ApiKey.last_used_at <= now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False, **WRITES_NOTHING_CACHED)
            )
    except (SQLAlchemyError, OSError, DatabaseUnavailable):
        logger.warning("could not record the last use of key %s", key.id, exc_info=True)
        rt.keys_noted.pop(key.id, None)  # the next use tries again
        return
    # Shown as written, without marking anything dirty.
    set_committed_value(key, "last_used_at", now)


async def key_owner(uow: UnitOfWork, email: str) -> Account:
    """The account of this email whose keys a command lists, makes or revokes."""
    account = await find_account(uow.session, normalise_email(email))
    if account is None:
        raise NotFound(f"no account {email}", code="account_not_found")
    return account
