"""Service accounts: the accounts of inference services. An operator makes one; it holds
`verify` keys, with which it checks grantees' keys and reports their use. It has no
password and no grants: it cannot sign in, apply or download."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.api_access import repository
from gateway.db.models import Account
from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput, NotFound
from gateway.identity.accounts import create_account
from gateway.keys.service import SERVICE_SCOPE, CreatedKey, create_key
from stages import evidence as ev
from stages.actors import Actor

# Service accounts' addresses: under a domain reserved never to resolve (RFC 2606), so no
# mail is ever sent to one, and no person can sign up with one.
DOMAIN: Final = "services.invalid"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    account: Account


def _checked(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"a service's name is 1 to 63 lower-case letters, digits and '-', not {name!r}",
            code="invalid_name",
        )
    return name


def name_of(account: Account) -> str:
    return account.email.partition("@")[0]


async def create_service(
    uow: UnitOfWork, name: str, *, days: int | None, actor: str
) -> tuple[ServiceAccount, CreatedKey]:
    """A new service account called `name`, and its first `verify` key."""
    name = _checked(name)
    session = await uow.write()
    account = await create_account(
        session,
        f"{name}@{DOMAIN}",
        now=uow.rt.clock(),
        actor=Actor.parse(actor),
        payload=ev.ServiceAccountCreated(name=name),
        display_name=name,
    )
    account.is_service = True
    await session.flush()
    key = await create_key(
        uow, account_id=account.id, scopes=[SERVICE_SCOPE], days=days, name=name, actor=actor
    )
    return ServiceAccount(name, account), key


async def new_service_key(
    uow: UnitOfWork, name: str, *, days: int | None, actor: str
) -> CreatedKey:
    """Another `verify` key for the service (to rotate: make one, deploy it, revoke the old)."""
    account = await service_account(uow, name)
    return await create_key(
        uow, account_id=account.id, scopes=[SERVICE_SCOPE], days=days, name=name, actor=actor
    )


async def service_account(uow: UnitOfWork, name: str) -> Account:
    account = await repository.service_by_email(uow.session, f"{_checked(name)}@{DOMAIN}")
    if account is None:
        raise NotFound(f"no service account {name}", code="account_not_found")
    return account


async def services(uow: UnitOfWork) -> Sequence[ServiceAccount]:
    found = await repository.service_accounts(uow.session)
    return [ServiceAccount(name_of(account), account) for account in found]
