"""The queries of sign-in by OpenID provider: identities (issuer, subject) and their accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Account, OidcIdentity


async def identity_by_subject(
    session: AsyncSession, issuer: str, subject: str
) -> OidcIdentity | None:
    """The identity a provider's subject is linked as, if any."""
    return await session.scalar(
        select(OidcIdentity).where(OidcIdentity.issuer == issuer, OidcIdentity.subject == subject)
    )


async def identity_of_account(
    session: AsyncSession, account_id: str, issuer: str
) -> OidcIdentity | None:
    """The identity at `issuer` an account is already linked to, if any."""
    return await session.scalar(
        select(OidcIdentity).where(
            OidcIdentity.account_id == account_id, OidcIdentity.issuer == issuer
        )
    )


async def linked_account(session: AsyncSession, identity: OidcIdentity) -> Account:
    account = await session.get(Account, identity.account_id)
    assert account is not None  # the foreign key cascades deletes
    return account
