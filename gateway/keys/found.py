"""Keys someone found: anyone who comes across an API key (in a repository, a paste, a
log) reports it, and every active key among those reported is revoked at once.
`revoke_found` does the revoking, telling and recording, for these reports and for those
of secret scanners (secret_scanning.py) alike.

No sign-in: holding a key is enough to end it, as 131 random bits cannot be guessed. The
answer says only how many were revoked, so the report learns nothing of other keys. A
report names at most MAX_KEYS keys and counts against a limit per address. Each owner
is told which of their keys were revoked and where they were said to be found (inbox,
mail, webhooks), and each revocation is evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from gateway import evidence
from gateway.credentials.api_key_format import is_well_formed, key_digest
from gateway.db.models import Account, ApiKey
from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput
from gateway.notify.service import notify
from gateway.ratelimits import RateLimit, RateLimiter
from gateway.text import clean_text
from stages import evidence as ev
from stages.actors import Actor

MAX_KEYS: Final = 1000
MAX_KEY_CHARS: Final = 200
MAX_URL_CHARS: Final = 2000


@dataclass(frozen=True)
class Sighting:
    """Where keys were found and who says so, as their owners are told and evidence keeps."""

    found_at: str | None
    # Who found them, as the owner's notice names them ("Someone", "GitHub's ...").
    finder: str = "Someone"
    # In what kind of content (a secret scanner's `source`, e.g. `commit`).
    source: str | None = None
    kind: str = "key.found"  # the notification's kind, for the inbox and webhooks
    actor: Actor = ev.PUBLIC


@dataclass(frozen=True)
class Revoked:
    """What `revoke_found` did: the digests that are keys of this gateway (active or not),
    and how many of those were active and are now revoked."""

    known: frozenset[str]
    revoked: int


@dataclass(frozen=True)
class FoundKeys:
    """What a report did: keys named, and of those, how many were revoked now."""

    received: int
    revoked: int


def _checked(keys: Sequence[object], found_at: str | None) -> tuple[list[str], str | None]:
    if not keys:
        raise InvalidInput("name at least one key", code="no_keys")
    if len(keys) > MAX_KEYS:
        raise InvalidInput(
            f"at most {MAX_KEYS} keys a report, not {len(keys)}: send the rest in another",
            code="too_many_keys",
        )
    for number, key in enumerate(keys, 1):
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
            raise InvalidInput(
                f"key {number} is not text of 1 to {MAX_KEY_CHARS} characters",
                code="bad_key",
            )
    where = clean_text(
        found_at, field="where the keys were found", max_length=MAX_URL_CHARS, multiline=False
    )
    return [key.strip() for key in keys if isinstance(key, str)], where


async def report_found_keys(
    uow: UnitOfWork,
    keys: Sequence[object],
    *,
    found_at: str | None,
    address: str | None,
    limiter: RateLimiter | None,
) -> FoundKeys:
    """Revoke every active key among `keys` and tell their owners; checks come first."""
    texts, where = _checked(keys, found_at)
    if limiter is not None:
        # The counter takes a connection of its own: none is held while it waits.
        await uow.end_read()
        await limiter.take(RateLimit.FOUND_KEY_REPORTS_PER_ADDRESS, address or "unknown")
    digests = {key_digest(key) for key in texts if is_well_formed(key)}
    if not digests:
        return FoundKeys(received=len(keys), revoked=0)
    done = await revoke_found(uow, dict.fromkeys(digests, Sighting(found_at=where)))
    return FoundKeys(received=len(keys), revoked=done.revoked)


async def revoke_found(uow: UnitOfWork, seen: Mapping[str, Sighting]) -> Revoked:
    """Revoke at once every active key whose digest is a key of `seen`, tell each owner
    which of theirs and where they were seen, and record each revocation as evidence."""
    session = await uow.write()
    now = uow.rt.clock()
    rows = (
        await session.execute(
            select(ApiKey, Account.email)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.secret_sha256.in_(sorted(seen)))
            .with_for_update(of=ApiKey)
        )
    ).all()
    told: dict[tuple[str, str, Sighting], list[str]] = defaultdict(list)
    for key, email in rows:
        if key.revoked_at is not None:
            continue  # known, but already ended: nothing to do, no one to tell again
        where = seen[key.secret_sha256]
        key.revoked_at = now
        evidence.record(
            session,
            ev.KeyRevoked(key=key.id, found=True, found_at=where.found_at, source=where.source),
            actor=where.actor,
            at=now,
            account_id=key.account_id,
        )
        told[(key.account_id, email, where)].append(key.display_prefix)
    for (account_id, email, where), prefixes in sorted(told.items(), key=_by_owner):
        notify(
            session,
            uow.rt.settings,
            account_id=account_id,
            kind=where.kind,
            subject="Your API key was reported as found and is revoked",
            body=_notice(where, prefixes),
            link="/keys",
            now=now,
            email=email,
            data={"keys": sorted(prefixes), "found_at": where.found_at, "source": where.source},
        )
    return Revoked(
        known=frozenset(key.secret_sha256 for key, _ in rows),
        revoked=sum(len(prefixes) for prefixes in told.values()),
    )


def _by_owner(item: tuple[tuple[str, str, Sighting], list[str]]) -> tuple[str, ...]:
    (account_id, email, where), _ = item
    return (account_id, email, where.found_at or "", where.source or "")


def _notice(seen: Sighting, prefixes: Sequence[str]) -> str:
    shown = ", ".join(f"{prefix}…" for prefix in sorted(prefixes))
    where = f" at {seen.found_at}" if seen.found_at else ""
    source = f" (in {seen.source})" if seen.source else ""
    return (
        f"{seen.finder} reported finding your API key{'s' if len(prefixes) > 1 else ''} "
        f"{shown}{where}{source}. It no longer works. Create a new key, and check where "
        "the old one was kept."
    )
