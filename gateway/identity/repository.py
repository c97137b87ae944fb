"""The identity feature's queries: accounts, by address, by id, listed and searched."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Account
from stages.enforcement import AccountStatus


async def find_account(session: AsyncSession, email: str) -> Account | None:
    """The account of an address, in any case."""
    return await session.scalar(select(Account).where(func.lower(Account.email) == email.lower()))


async def get_account(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def count_operators(session: AsyncSession) -> int:
    query = select(func.count()).select_from(Account).where(Account.is_operator.is_(True))
    return await session.scalar(query) or 0


async def list_accounts(
    session: AsyncSession, *, operators_only: bool = False
) -> Sequence[Account]:
    query = select(Account).order_by(Account.created_at, Account.email)
    if operators_only:
        query = query.where(Account.is_operator.is_(True))
    return (await session.scalars(query)).all()


async def search_accounts(
    session: AsyncSession,
    *,
    text: str = "",
    status: str | AccountStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Account], int]:
    """Accounts whose email or name holds `text` (any case; `%` and `_` are plain
    characters), of one status if given, by email; and how many match in all."""
    query = select(Account)
    needle = text.strip().lower()
    if needle:
        query = query.where(
            func.lower(Account.email).contains(needle, autoescape=True)
            | func.lower(Account.display_name).contains(needle, autoescape=True)
        )
    if status is not None:
        query = query.where(Account.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(Account.email, Account.id).limit(limit).offset(offset)
    )
    return rows.all(), total
