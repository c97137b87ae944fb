"""Accounts: the one way an account is made, the address rule, and standing checks.

Rules of this module:
- Every account (sign-up, first-operator setup, OIDC, `gateway accounts create`) is made
  by `create_account`, in the caller's write phase: one address, one account (a taken
  address is `Conflict(account_exists)`, also when a concurrent write took it first),
  the row and its evidence together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.identity import repository
from stages import evidence as ev
from stages.enforcement import AccountStatus

# Deliberately plain: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"invalid email address {email!r}", code="invalid_email")
    local, _, domain = email.partition("@")
    return f"{local}@{domain.lower()}"


def _taken(address: str) -> Conflict:
    return Conflict(f"an account for {address} already exists", code="account_exists")


async def create_account(
    session: AsyncSession,
    email: str,
    *,
    now: datetime,
    actor: ev.Actor | None,
    payload: ev.Payload | None = None,
    operator: bool = False,
    display_name: str = "",
    affiliation: str = "",
    password_hash: str | None = None,
    email_verified_at: datetime | None = None,
) -> Account:
    """A new active account for `email` (already normalised), with its evidence: `payload`
    (by default `AccountCreated`), by `actor` (by default the new account itself).

    `session` is the caller's write phase (`await uow.write()`). A taken address is
    refused; a row another writer inserted meanwhile is refused alike, and the caller's
    other work in the unit stays intact (the insert runs under a savepoint).
    """
    if await repository.find_account(session, email) is not None:
        raise _taken(email)
    account = Account(
        id=str(uuid.uuid4()),
        email=email,
        display_name=display_name.strip(),
        affiliation=affiliation.strip(),
        is_operator=operator,
        status=AccountStatus.ACTIVE,
        password_hash=password_hash,
        created_at=now,
        email_verified_at=email_verified_at,
    )
    try:
        async with session.begin_nested():
            session.add(account)
    except IntegrityError as exc:
        raise _taken(email) from exc
    evidence.record(
        session,
        payload or ev.AccountCreated(email=email, operator=operator),
        actor=actor or ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    return account


async def add_account(
    uow: UnitOfWork, email: str, *, operator: bool, actor: ev.Actor, display_name: str = ""
) -> Account:
    """An account made by an operator (`gateway accounts create`); refused if the email
    is taken or not an address."""
    address = normalise_email(email)
    session = await uow.write()
    return await create_account(
        session,
        address,
        now=uow.rt.clock(),
        actor=actor,
        operator=operator,
        display_name=display_name,
    )


async def accounts(uow: UnitOfWork, *, operators_only: bool = False) -> Sequence[Account]:
    """Every account, oldest first (only operators, if asked)."""
    return await repository.list_accounts(uow.session, operators_only=operators_only)


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


async def operator_actor(uow: UnitOfWork, email: str) -> ev.Actor:
    """The operator account named by `email`, as the actor a command records; an unknown
    address or an account that is not an operator is refused."""
    account = await repository.find_account(uow.session, normalise_email(email))
    if account is None:
        raise NotFound(f"no account {email}", code="account_not_found")
    if not account.is_operator:
        raise InvalidInput(f"{email} is not an operator", code="not_an_operator")
    return ev.Actor.account(account.id)
