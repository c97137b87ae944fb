"""Keys someone found: anyone who comes across an API key (in a repository, a paste, a
log) reports it, and every active key among those reported is revoked at once.

No sign-in: holding a key is enough to end it, as 131 random bits cannot be guessed. The
answer says only how many were revoked, so the report learns nothing of other keys. A
report names at most MAX_KEYS keys and counts against a limit per address. Each owner
is told which of their keys were revoked and where they were said to be found (inbox,
mail, webhooks), and each revocation is evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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

MAX_KEYS: Final = 1000
MAX_KEY_CHARS: Final = 200
MAX_URL_CHARS: Final = 2000


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
    digests = sorted({key_digest(key) for key in texts if is_well_formed(key)})
    if not digests:
        return FoundKeys(received=len(keys), revoked=0)
    session = await uow.write()
    now = uow.rt.clock()
    rows = (
        await session.execute(
            select(ApiKey, Account.email)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.secret_sha256.in_(digests), ApiKey.revoked_at.is_(None))
            .with_for_update(of=ApiKey)
        )
    ).all()
    by_owner: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, email in rows:
        key.revoked_at = now
        evidence.record(
            session,
            ev.KeyRevoked(key=key.id, found=True, found_at=where),
            actor=ev.PUBLIC,
            at=now,
            account_id=key.account_id,
        )
        by_owner[(key.account_id, email)].append(key.display_prefix)
    for (account_id, email), prefixes in sorted(by_owner.items()):
        shown = ", ".join(f"{prefix}…" for prefix in sorted(prefixes))
        notify(
            session,
            uow.rt.settings,
            account_id=account_id,
            kind="key.found",
            subject="Your API key was reported as found and is revoked",
            body=(
                f"Someone reported finding your API key{'s' if len(prefixes) > 1 else ''} "
                f"{shown}{f' at {where}' if where else ''}. It no longer works. Create "
                "a new key, and check where the old one was kept."
            ),
            link="/keys",
            now=now,
            email=email,
            data={"keys": sorted(prefixes), "found_at": where},
        )
    return FoundKeys(received=len(keys), revoked=len(rows))
