"""Create and list accounts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account
from gateway.errors import Conflict, InvalidInput
from gateway.runtime import Runtime
from stages import evidence as ev

# Deliberately plain: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"invalid email address {email!r}", code="invalid_email")
    local, _, domain = email.partition("@")
    return f"{local}@{domain.lower()}"


async def create_account(
    rt: Runtime, email: str, *, operator: bool, actor: str, display_name: str = ""
) -> Account:
    """A new account; refused if the email is taken."""
    address = normalise_email(email)
    now = rt.clock()
    try:
        async with rt.transaction() as session:
            if await find_account(session, address) is not None:
                raise Conflict(f"an account for {address} already exists", code="account_exists")
            account = Account(
                id=str(uuid.uuid4()),
                email=address,
                display_name=display_name,
                is_operator=operator,
                status="active",
                created_at=now,
            )
            session.add(account)
            await session.flush()
            evidence.record(
                session,
                ev.AccountCreated(email=address, operator=operator),
                actor=ev.Actor.parse(actor),
                at=now,
                account_id=account.id,
            )
    except IntegrityError as exc:
        raise Conflict(f"an account for {address} already exists", code="account_exists") from exc
    return account


def ensure_active(account: Account, doing: str) -> None:
    """Refuse `doing` (e.g. "apply") to a suspended or terminated account."""
    standing = "; your standing page says why and how to appeal"
    if account.status == "terminated":
        raise Conflict(
            f"your account was terminated and may not {doing}{standing}",
            code="account_terminated",
        )
    if account.status == "suspended":
        raise Conflict(
            f"your account is suspended and may not {doing}{standing}", code="account_suspended"
        )


async def find_account(session: AsyncSession, email: str) -> Account | None:
    return await session.scalar(select(Account).where(func.lower(Account.email) == email.lower()))


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
    status: str | None = None,
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
