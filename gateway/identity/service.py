"""Local accounts: sign-up, email verification, sign-in, password reset, first operator.

Rules of this module:
- A one-time link goes only to the mailbox it proves (`MailOnly`); the inbox and the
  webhooks hear that it was sent, never what it was.
- Nobody learns from an answer whether an address has an account: sign-up answers alike
  (the owner of a taken address is told by mail), and a reset request is only counted
  while the caller answers; the work is `send_password_reset`, run after the answer.
- A reset or a change of role ends every session of the account; the page that made the
  change signs its own browser in again under a new session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account
from gateway.db.uow import UnitOfWork, run_unit
from gateway.errors import Conflict, FieldChecks, GatewayError, InvalidInput
from gateway.identity import repository
from gateway.identity.accounts import create_account, normalise_email
from gateway.identity.links import issue_link, link_state, redeem_link
from gateway.identity.passwords import (
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from gateway.identity.sessions import end_sessions
from gateway.notify.service import MailOnly, notify
from gateway.ratelimits import RateLimit, RateLimiter
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev

logger = logging.getLogger("gateway.identity")


class SignInFailed(GatewayError):
    status = 401

    def __init__(self) -> None:
        # One message for a wrong password and an unknown email alike.
        super().__init__("wrong email or password", code="sign_in_failed")


async def signed_in_account(uow: UnitOfWork, account_id: str) -> Account | None:
    """The account a browser's session names, or None if it was deleted. The read ends at
    once (its connection goes back to the pool): pages not yet on the unit of work write
    through a session of their own, and on SQLite a snapshot kept open would hide it."""
    account = await repository.get_account(uow.session, account_id)
    await uow.end_read()
    return account


async def sign_up(
    uow: UnitOfWork,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    display_name: str,
    affiliation: str,
    address: str | None,
) -> str:
    """A new local account, unconfirmed, with a confirmation link to its address.

    For an address that already has an account nothing is created and its owner is told
    by mail; the caller answers the same either way. Returns the normalised address.
    """
    # The limiter counts on a connection of its own: ours goes back to the pool first.
    await uow.end_read()
    await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, address or "unknown")
    checks = FieldChecks()
    checked_email = checks.check("email", lambda: normalise_email(email))
    checks.check("password", lambda: check_strength(password))
    name = checks.check("display_name", lambda: _one_line(display_name, "your name"))
    works_at = checks.check("affiliation", lambda: _one_line(affiliation, "the affiliation"))
    checks.done()
    assert checked_email is not None
    address_email = checked_email
    password_hash = hash_password(password)
    rt = uow.rt
    session = await uow.write()
    existing = await repository.find_account(session, address_email)
    if existing is None:
        try:
            account = await create_account(
                session,
                address_email,
                now=rt.clock(),
                actor=None,
                payload=ev.AccountSignedUp(email=address_email, client_address=address),
                display_name=name or "",
                affiliation=works_at or "",
                password_hash=password_hash,
            )
        except Conflict:
            # Someone signed up with the same address just now: theirs is the account.
            existing = await repository.find_account(session, address_email)
            if existing is None:
                raise
        else:
            await _send_verification(rt, session, account)
            return address_email
    _tell_owner_of_sign_up(rt, session, existing, address)
    return address_email


def _one_line(text: str, field: str) -> str:
    return clean_text(text, field=field, max_length=200, multiline=False) or ""


def _tell_owner_of_sign_up(
    rt: Runtime, session: AsyncSession, account: Account, address: str | None
) -> None:
    now = rt.clock()
    base = rt.settings.public_url
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind="account.sign_up_attempted",
        subject="Someone tried to create an account with your address",
        body=f"Someone tried to create a Release Gateway account for {account.email}, "
        f"which already has one. If it was you, sign in at {base}/sign-in, or choose a new "
        f"password at {base}/forgot-password. If it was not you, you need do nothing: "
        "no account was created and yours is unchanged.",
        link=f"{base}/sign-in",
        now=now,
        email=account.email,
    )
    evidence.record(
        session,
        ev.AccountSignUpAttempted(client_address=address),
        actor=ev.ANONYMOUS,
        at=now,
        account_id=account.id,
    )


async def _send_verification(rt: Runtime, session: AsyncSession, account: Account) -> None:
    now = rt.clock()
    secret = await issue_link(session, "verify_email", account.id, now)
    link = f"{rt.settings.public_url}/verify-email?token={secret}"
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind="account.verify_email",
        subject="Confirm your email address",
        body=f"A link to confirm {account.email} was sent to that address. "
        "It works once, for three days.",
        link=None,
        now=now,
        email=account.email,
        mail_only=MailOnly(
            body=f"Confirm {account.email} for your Release Gateway account: {link}\n"
            "The link works once, for three days.",
            link=link,
        ),
    )


async def resend_verification(uow: UnitOfWork, account_id: str) -> None:
    account = await repository.get_account(uow.session, account_id)
    if account is None or account.email_verified_at is not None:
        return
    await _send_verification(uow.rt, await uow.write(), account)


async def verify_email(uow: UnitOfWork, secret: str, *, address: str | None = None) -> Account:
    """Confirm the address a link was mailed to; the caller signs the browser in."""
    now = uow.rt.clock()
    session = await uow.write()
    link = await redeem_link(session, "verify_email", secret, now)
    account = await repository.get_account(session, link.account_id or "")
    assert account is not None
    account.email_verified_at = now
    evidence.record(
        session,
        ev.AccountEmailVerified(email=account.email),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    _signed_in_by_link(session, account, now, "email_confirmation", address)
    return account


def _signed_in_by_link(
    session: AsyncSession, account: Account, now: datetime, method: str, address: str | None
) -> None:
    evidence.record(
        session,
        ev.AccountSignedIn(method=method, client_address=address),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )


async def sign_in(
    uow: UnitOfWork, limiter: RateLimiter, *, email: str, password: str, address: str | None
) -> Account:
    """The account for a correct email and password. Failures are limited per address and
    slowed down per account *and* address, so a stranger's wrong guesses never lock the
    owner out; a correct password gives both its counts back, once the sign-in is stored."""
    await uow.end_read()
    from_address = await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, address or "unknown")
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        raise SignInFailed from None
    on_account = await limiter.take(
        RateLimit.SIGN_IN_FAILURES, f"{normalised} {address or 'unknown'}"
    )
    now = uow.rt.clock()
    account = await repository.find_account(uow.session, normalised)
    if not verify_password(account.password_hash if account else None, password):
        raise SignInFailed
    assert account is not None
    assert account.password_hash is not None
    session = await uow.write()
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    evidence.record(
        session,
        ev.AccountSignedIn(method="password", client_address=address),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )

    async def give_back() -> None:
        # After the commit: the limiter writes on a connection of its own.
        await limiter.give_back(from_address)
        await limiter.give_back(on_account)

    uow.after_commit(give_back)
    return account


async def request_password_reset(
    limiter: RateLimiter, email: str, address: str | None = None
) -> str | None:
    """Count a reset request; the address to pass to `send_password_reset`, if well-formed.

    Whether the account exists is not looked at here: the caller answers before the work
    is done, so neither the answer nor its timing tells (no enumeration).
    """
    await limiter.take(RateLimit.PASSWORD_RESET_PER_ADDRESS, address or "unknown")
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        return None
    await limiter.take(RateLimit.PASSWORD_RESET_PER_EMAIL, normalised)
    return normalised


async def send_password_reset(rt: Runtime, normalised: str) -> None:
    """Mail a reset link if the address has an account, in a unit of work of its own: it
    runs after the request's answer, as a background task."""
    try:
        await run_unit(rt, lambda uow: _send_password_reset(uow, normalised))
    except (GatewayError, SQLAlchemyError):
        # Nobody waits for this: the log is the only place the failure can go.
        logger.exception("could not send the password reset link")


async def _send_password_reset(uow: UnitOfWork, normalised: str) -> None:
    rt = uow.rt
    now = rt.clock()
    account = await repository.find_account(uow.session, normalised)
    if account is None:
        return
    session = await uow.write()
    secret = await issue_link(session, "reset_password", account.id, now)
    link = f"{rt.settings.public_url}/reset-password?token={secret}"
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind="account.reset_password",
        subject="Reset your password",
        body=f"Someone asked to reset the password of {account.email}. A link to do it "
        "was sent to that address; if it was not you, ignore it.",
        link=None,
        now=now,
        email=account.email,
        mail_only=MailOnly(
            body=f"Someone asked to reset the password of {account.email}. "
            f"If it was you: {link}\n"
            "The link works once, for one hour. If it was not you, ignore this message.",
            link=link,
        ),
    )


async def reset_password(
    uow: UnitOfWork, secret: str, password: str, *, address: str | None = None
) -> Account:
    """Set a new password through a reset link; every session of the account ends."""
    checks = FieldChecks()
    checks.check("password", lambda: check_strength(password))
    checks.done()
    new_hash = hash_password(password)
    now = uow.rt.clock()
    session = await uow.write()
    link = await redeem_link(session, "reset_password", secret, now)
    account = await repository.get_account(session, link.account_id or "")
    assert account is not None
    account.password_hash = new_hash
    # Reaching the mailbox proves the address.
    account.email_verified_at = account.email_verified_at or now
    ended = await end_sessions(session, account.id)
    evidence.record(
        session,
        ev.AccountPasswordReset(sessions_ended=ended),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    _signed_in_by_link(session, account, now, "password_reset", address)
    return account


@dataclass(frozen=True)
class SetupLink:
    url: str


async def operator_setup_link(uow: UnitOfWork) -> SetupLink | None:
    """A one-time link that creates the first operator, while there is none."""
    rt = uow.rt
    if await repository.count_operators(uow.session):
        return None
    session = await uow.write()
    # Counted again under the write lock: an operator made meanwhile needs no link.
    if await repository.count_operators(session):
        return None
    secret = await issue_link(session, "operator_setup", None, rt.clock())
    return SetupLink(url=f"{rt.settings.public_url}/setup?token={secret}")


async def setup_link_used(uow: UnitOfWork, secret: str) -> bool:
    """Whether a setup link has done its work: it was used, or an operator exists now."""
    session = uow.session
    state = await link_state(session, "operator_setup", secret, uow.rt.clock())
    if state in ("used", "unknown"):
        return state == "used"
    return bool(await repository.count_operators(session))


async def create_first_operator(
    uow: UnitOfWork, secret: str, *, email: str, password: str, display_name: str
) -> Account:
    checks = FieldChecks()
    checked_email = checks.check("email", lambda: normalise_email(email))
    checks.check("password", lambda: check_strength(password))
    name = checks.check("display_name", lambda: _one_line(display_name, "your name"))
    checks.done()
    assert checked_email is not None
    address = checked_email
    password_hash = hash_password(password)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    # Refused before the link is used: the page answers a refusal, and the unit commits.
    if await repository.count_operators(session):
        raise Conflict("an operator already exists; sign in instead", code="setup_done")
    await redeem_link(session, "operator_setup", secret, now)
    set_up = ev.AccountOperatorSetUp(email=address)
    account = await repository.find_account(session, address)
    if account is None:
        account = await create_account(
            session,
            address,
            now=now,
            actor=None,
            payload=set_up,
            operator=True,
            display_name=name or "",
            password_hash=password_hash,
        )
        # The setup link proves who runs the gateway, not who reads this mailbox.
        await _send_verification(rt, session, account)
        return account
    account.is_operator = True
    account.password_hash = password_hash
    # A new role and a new password: the sessions opened before hold neither.
    await end_sessions(session, account.id)
    evidence.record(
        session, set_up, actor=ev.Actor.account(account.id), at=now, account_id=account.id
    )
    return account
