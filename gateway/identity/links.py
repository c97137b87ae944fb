"""One-time links (email verification, password reset, first-operator setup).

The link carries a random secret; only its SHA-256 is stored, and a link works once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import AccountToken
from gateway.errors import InvalidInput

LIFETIMES = {
    "verify_email": timedelta(days=3),
    "reset_password": timedelta(hours=1),
    "operator_setup": timedelta(days=7),
}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_link(
    session: AsyncSession, purpose: str, account_id: str | None, now: datetime
) -> str:
    """A new one-time secret for `purpose`; earlier unused ones of the account lapse."""
    if account_id is not None:
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.account_id == account_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
    secret = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            id=str(uuid.uuid4()),
            purpose=purpose,
            account_id=account_id,
            token_sha256=_digest(secret),
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return secret


async def link_state(session: AsyncSession, purpose: str, secret: str, now: datetime) -> str:
    """What a link is now, without using it: "open", "used", "expired" or "unknown"."""
    row = await session.scalar(
        select(AccountToken).where(
            AccountToken.token_sha256 == _digest(secret), AccountToken.purpose == purpose
        )
    )
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    return "expired" if row.expires_at <= now else "open"


async def redeem_link(
    session: AsyncSession, purpose: str, secret: str, now: datetime
) -> AccountToken:
    """Use a link once; InvalidInput if it is unknown, used or expired."""
    row = await session.scalar(
        select(AccountToken)
        .where(AccountToken.token_sha256 == _digest(secret), AccountToken.purpose == purpose)
        .with_for_update()
    )
    if row is None or row.used_at is not None:
        raise InvalidInput("this link is not valid or was already used", code="link_invalid")
    if row.expires_at <= now:
        raise InvalidInput("this link has expired; ask for a new one", code="link_expired")
    row.used_at = now
    return row
