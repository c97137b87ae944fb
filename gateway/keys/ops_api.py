"""The operator API of an account's API keys: the list (never a secret or its hash) and
revoking one. The same service functions as `gateway keys list|revoke`; the acting
operator is the account of the `admin` key, and the actor of the revocation's evidence.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from litestar import Controller, get, post
from litestar.params import PathParameter

from gateway.api_reference import COMMON, answers
from gateway.keys.api import KeyOut
from gateway.keys.auth import AdminDep
from gateway.keys.service import key_owner, list_keys, revoke_key, state_of
from gateway.web import Uow
from stages.actors import Actor

if TYPE_CHECKING:
    from datetime import datetime

    from gateway.db.models import ApiKey

Email = Annotated[str, PathParameter(description="The account's email")]
KeyId = Annotated[str, PathParameter(description="The key's id")]


@dataclass(frozen=True)
class AccountKeyOut(KeyOut):
    state: str  # active, revoked or expired, now

    @classmethod
    def at(cls, key: ApiKey, now: datetime) -> AccountKeyOut:
        return cls(**KeyOut.of(key).__dict__, state=state_of(key, now).value)


class OpsAccountKeysController(Controller):
    path = "/accounts/{email:str}/keys"
    tags = ["operators: accounts"]

    @get(
        "/",
        summary="An account's API keys, oldest first (prefixes only; never a secret)",
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def listing(
        self, uow: Uow, admin: AdminDep, email: Email
    ) -> builtins.list[AccountKeyOut]:
        account = await key_owner(uow, email)
        now = uow.rt.clock()
        return [AccountKeyOut.at(key, now) for key in await list_keys(uow, account)]

    @post(
        "/{key_id:str}/revoke",
        summary="Revoke one of the account's keys at once",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def revoke(self, uow: Uow, admin: AdminDep, email: Email, key_id: KeyId) -> AccountKeyOut:
        account = await key_owner(uow, email)
        key = await revoke_key(
            uow, account_id=account.id, key_id=key_id, actor=Actor.account(admin.account.id)
        )
        return AccountKeyOut.at(key, uow.rt.clock())
