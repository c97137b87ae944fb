"""The account of an identity a provider proved: the one it is linked to, or one linked
(or made) by the email the provider verified.

Rules of this module:
- An identity is found by (issuer, subject), never by email alone. An email links to an
  existing account, or creates one, only when the provider says it verified that email:
  linking on an unverified email would hand an account to whoever typed its address.
- An account already linked to another identity of the same provider stays with it.
- Linking an account whose email nobody had proved removes its password and ends its
  sessions: the provider's proof outranks a password set by whoever typed the address.
- All of it happens in the caller's unit of work, in its write phase; two sign-ins that
  link the same identity at once both end on the one account the first made.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.config import OidcProvider
from gateway.db.models import Account, OidcIdentity
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, GatewayError, InvalidInput
from gateway.identity import oidc_repository as repository
from gateway.identity.accounts import create_account, normalise_email
from gateway.identity.oidc_flow import ProviderIdentity, SignInRefused
from gateway.identity.repository import find_account
from gateway.identity.sessions import end_sessions
from stages import evidence as ev


class EmailNotVerified(GatewayError):
    status = 403

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(
            f"Sign-in with {provider.title} failed: {provider.title} has not verified the "
            "email address of your account there, so it cannot be used to sign you in here. "
            f"Verify your email with {provider.title}, or sign in with a password.",
            code="oidc_email_unverified",
        )


async def sign_in_with(
    uow: UnitOfWork, provider: OidcProvider, identity: ProviderIdentity, *, address: str | None
) -> Account:
    """The account of a provider identity: the linked one, or one linked by verified email."""
    session = await uow.write()
    now = uow.rt.clock()
    try:
        return await _in_savepoint(session, provider, identity, now, address)
    except IntegrityError:
        pass
    except Conflict as exc:
        if exc.code != "account_exists":
            raise
    # Another request linked the same identity or created the same email just now (the
    # account's creation refuses a taken address as account_exists); the second attempt
    # finds what it made.
    return await _in_savepoint(session, provider, identity, now, address)


async def _in_savepoint(
    session: AsyncSession,
    provider: OidcProvider,
    identity: ProviderIdentity,
    now: datetime,
    address: str | None,
) -> Account:
    # A refusal is answered with a page, and the unit still commits: the savepoint makes
    # sure a refused sign-in leaves nothing behind.
    async with session.begin_nested():
        return await _account_for(session, provider, identity, now, address)


async def _account_for(
    session: AsyncSession,
    provider: OidcProvider,
    identity: ProviderIdentity,
    now: datetime,
    address: str | None,
) -> Account:
    link = await repository.identity_by_subject(session, provider.issuer, identity.subject)
    if link is not None:
        account = await repository.linked_account(session, link)
        if identity.email and identity.email != link.email:
            link.email = identity.email
    else:
        account = await _link_by_email(session, provider, identity, now, address)
    evidence.record(
        session,
        ev.AccountSignedIn(
            method=f"oidc:{provider.name}",
            client_address=address,
            issuer=provider.issuer,
            subject=identity.subject,
        ),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    return account


async def _link_by_email(
    session: AsyncSession,
    provider: OidcProvider,
    identity: ProviderIdentity,
    now: datetime,
    address: str | None,
) -> Account:
    if identity.email is None or not identity.email_verified:
        raise EmailNotVerified(provider)
    try:
        email = normalise_email(identity.email)
    except InvalidInput as exc:
        raise SignInRefused(
            provider,
            f"the email address it gave ({identity.email!r}) is not one the gateway can use",
            code="oidc_email_invalid",
        ) from exc
    method = f"oidc:{provider.name}"
    account = await find_account(session, email)
    password_removed = False
    if account is None:
        account = await _new_account(session, email, identity.name, now, address, method)
    else:
        other = await repository.identity_of_account(session, account.id, provider.issuer)
        if other is not None:
            # The provider gave this email to another of its users (a reused address):
            # the account stays with the identity it was linked to.
            raise Conflict(
                f"Sign-in with {provider.title} failed: the account for {email} is linked to "
                f"another {provider.title} identity. Sign in with that one, or with a password.",
                code="oidc_linked_elsewhere",
            )
        if account.email_verified_at is None:
            # Nobody proved this address before: a password set on it may belong to someone
            # who registered another person's email in advance. The provider's proof wins,
            # and that password stops working (the owner can reset it by email).
            account.email_verified_at = now
            password_removed = account.password_hash is not None
            account.password_hash = None
            # Whoever signed in with that password is signed out everywhere.
            await end_sessions(session, account.id)
    session.add(
        OidcIdentity(
            account_id=account.id,
            provider=provider.name,
            issuer=provider.issuer,
            subject=identity.subject,
            email=identity.email,
            linked_at=now,
        )
    )
    await session.flush()
    evidence.record(
        session,
        ev.AccountOidcLinked(
            provider=provider.name,
            issuer=provider.issuer,
            subject=identity.subject,
            email=email,
            password_removed=password_removed,
        ),
        actor=ev.Actor.account(account.id),
        at=now,
        account_id=account.id,
    )
    return account


async def _new_account(
    session: AsyncSession,
    email: str,
    display_name: str,
    now: datetime,
    address: str | None,
    method: str,
) -> Account:
    """An account for an email the provider verified, with no password."""
    return await create_account(
        session,
        email,
        now=now,
        actor=None,
        payload=ev.AccountSignedUp(email=email, client_address=address, method=method),
        display_name=display_name,
        email_verified_at=now,
    )
