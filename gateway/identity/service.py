"""Local accounts: sign-up, email verification, sign-in, password reset, first operator."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from gateway import evidence
from gateway.accounts.service import find_account, normalise_email
from gateway.db.models import Account
from gateway.errors import Conflict, GatewayError, InvalidInput
from gateway.identity.links import issue_link, redeem_link
from gateway.identity.passwords import hash_password, needs_rehash, verify_password
from gateway.notify.service import notify
from gateway.ratelimits import RateLimit, RateLimiter
from gateway.runtime import Runtime
from gateway.text import clean_text

logger = logging.getLogger("gateway.identity")


class SignInFailed(GatewayError):
    status = 401

    def __init__(self) -> None:
        # One message for a wrong password and an unknown email alike.
        super().__init__("wrong email or password", code="sign_in_failed")


async def sign_up(
    rt: Runtime,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    display_name: str,
    affiliation: str,
    address: str | None,
) -> Account:
    """A new local account; a verification link goes to its inbox and email."""
    await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, address or "unknown")
    address_email = normalise_email(email)
    password_hash = hash_password(password)
    display_name = (
        clean_text(display_name, field="your name", max_length=200, multiline=False) or ""
    )
    affiliation = (
        clean_text(affiliation, field="the affiliation", max_length=200, multiline=False) or ""
    )
    now = rt.clock()
    async with rt.transaction() as session:
        if await find_account(session, address_email) is not None:
            raise Conflict(
                f"an account for {address_email} already exists; sign in or reset the password",
                code="account_exists",
            )
        account = Account(
            id=str(uuid.uuid4()),
            email=address_email,
            display_name=display_name.strip(),
            affiliation=affiliation.strip(),
            is_operator=False,
            status="active",
            password_hash=password_hash,
            created_at=now,
        )
        session.add(account)
        await session.flush()
        await _send_verification(rt, session, account)
        evidence.record(
            session,
            "account.signed_up",
            actor=f"account:{account.id}",
            at=now,
            account_id=account.id,
            data={"email": address_email, "client_address": address},
        )
    return account


async def _send_verification(rt: Runtime, session: object, account: Account) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    now = rt.clock()
    secret = await issue_link(session, "verify_email", account.id, now)
    link = f"{rt.settings.public_url}/verify-email?token={secret}"
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind="account.verify_email",
        subject="Confirm your email address",
        body=f"Confirm {account.email} for your Release Gateway account: {link}\n"
        "The link works once, for three days.",
        link=link,
        now=now,
        email=account.email,
    )


async def resend_verification(rt: Runtime, account_id: str) -> None:
    async with rt.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None or account.email_verified_at is not None:
            return
        await _send_verification(rt, session, account)


async def verify_email(rt: Runtime, secret: str) -> Account:
    now = rt.clock()
    async with rt.transaction() as session:
        link = await redeem_link(session, "verify_email", secret, now)
        account = await session.get(Account, link.account_id)
        assert account is not None
        account.email_verified_at = now
        evidence.record(
            session,
            "account.email_verified",
            actor=f"account:{account.id}",
            at=now,
            account_id=account.id,
            data={"email": account.email},
        )
    return account


async def sign_in(
    rt: Runtime, limiter: RateLimiter, *, email: str, password: str, address: str | None
) -> Account:
    """The account for a correct email and password. Failures are limited per address and
    slowed down per account *and* address, so a stranger's wrong guesses never lock the
    owner out; a correct password gives both its counts back."""
    from_address = await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, address or "unknown")
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        raise SignInFailed from None
    on_account = await limiter.take(
        RateLimit.SIGN_IN_FAILURES, f"{normalised} {address or 'unknown'}"
    )
    now = rt.clock()
    async with rt.transaction() as session:
        account = await find_account(session, normalised)
        if not verify_password(account.password_hash if account else None, password):
            raise SignInFailed
        assert account is not None
        assert account.password_hash is not None
        if needs_rehash(account.password_hash):
            account.password_hash = hash_password(password)
        evidence.record(
            session,
            "account.signed_in",
            actor=f"account:{account.id}",
            at=now,
            account_id=account.id,
            data={"method": "password", "client_address": address},
        )
    await limiter.give_back(from_address)
    await limiter.give_back(on_account)
    return account


async def request_password_reset(
    rt: Runtime, limiter: RateLimiter, email: str, address: str | None = None
) -> None:
    """Send a reset link if the account exists; say nothing either way (no enumeration)."""
    await limiter.take(RateLimit.PASSWORD_RESET_PER_ADDRESS, address or "unknown")
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        return
    await limiter.take(RateLimit.PASSWORD_RESET_PER_EMAIL, normalised)
    now = rt.clock()
    async with rt.transaction() as session:
        account = await find_account(session, normalised)
        if account is None:
            return
        secret = await issue_link(session, "reset_password", account.id, now)
        link = f"{rt.settings.public_url}/reset-password?token={secret}"
        notify(
            session,
            rt.settings,
            account_id=account.id,
            kind="account.reset_password",
            subject="Reset your password",
            body=f"Someone asked to reset the password of {account.email}. If it was you: {link}\n"
            "The link works once, for one hour. If it was not you, ignore this message.",
            link=link,
            now=now,
            email=account.email,
        )


async def reset_password(rt: Runtime, secret: str, password: str) -> Account:
    new_hash = hash_password(password)
    now = rt.clock()
    async with rt.transaction() as session:
        link = await redeem_link(session, "reset_password", secret, now)
        account = await session.get(Account, link.account_id)
        assert account is not None
        account.password_hash = new_hash
        # Reaching the inbox proves the address.
        account.email_verified_at = account.email_verified_at or now
        evidence.record(
            session,
            "account.password_reset",
            actor=f"account:{account.id}",
            at=now,
            account_id=account.id,
            data={},
        )
    return account


@dataclass(frozen=True)
class SetupLink:
    url: str


async def operator_setup_link(rt: Runtime) -> SetupLink | None:
    """A one-time link that creates the first operator, while there is none."""
    now = rt.clock()
    async with rt.transaction() as session:
        operators = await session.scalar(
            select(func.count()).select_from(Account).where(Account.is_operator.is_(True))
        )
        if operators:
            return None
        secret = await issue_link(session, "operator_setup", None, now)
    return SetupLink(url=f"{rt.settings.public_url}/setup?token={secret}")


async def create_first_operator(
    rt: Runtime, secret: str, *, email: str, password: str, display_name: str
) -> Account:
    address = normalise_email(email)
    password_hash = hash_password(password)
    display_name = (
        clean_text(display_name, field="your name", max_length=200, multiline=False) or ""
    )
    now = rt.clock()
    async with rt.transaction() as session:
        await redeem_link(session, "operator_setup", secret, now)
        operators = await session.scalar(
            select(func.count()).select_from(Account).where(Account.is_operator.is_(True))
        )
        if operators:
            raise Conflict("an operator already exists; sign in instead", code="setup_done")
        account = await find_account(session, address)
        if account is None:
            account = Account(
                id=str(uuid.uuid4()),
                email=address,
                display_name=display_name.strip(),
                is_operator=True,
                status="active",
                password_hash=password_hash,
                created_at=now,
                email_verified_at=now,
            )
            session.add(account)
            await session.flush()
        else:
            account.is_operator = True
            account.password_hash = password_hash
        evidence.record(
            session,
            "account.operator_setup",
            actor=f"account:{account.id}",
            at=now,
            account_id=account.id,
            data={"email": address},
        )
    return account
