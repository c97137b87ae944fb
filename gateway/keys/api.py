"""HTTP: an account's own API keys."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter

from gateway.api_reference import BEARER, COMMON, answers
from gateway.errors import Denied, InvalidInput
from gateway.keys.auth import CallerDep
from gateway.keys.service import Caller, create_key, key_facts_of, list_keys, revoke_key
from gateway.ratelimits import RateLimit
from gateway.web import Limiter, Uow
from stages.access import Deny, Reason, check_key
from stages.actors import Actor

if TYPE_CHECKING:
    from gateway.db.models import ApiKey


@dataclass(frozen=True)
class KeyOut:
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.display_prefix,
            scopes=key.scopes.split(),
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


@dataclass(frozen=True)
class NewKeyOut(KeyOut):
    key: str = ""  # the secret, shown this once


@dataclass
class NewKeyIn:
    scopes: list[str]
    name: str = ""
    expires_in_days: int | None = None


def _require_keys_scope(caller: Caller, now: datetime) -> None:
    """A live key (not revoked, not expired) with the `keys` scope."""
    decision = check_key(key_facts_of(caller.key), now, "keys")
    if isinstance(decision, Deny):
        raise Denied(decision.reason, decision.message)


def _check_new_scopes(caller: Caller, wanted: list[str]) -> None:
    # A key can hand out no more than it holds, and `admin` only ever goes to operators.
    held = set(caller.key.scopes.split())
    beyond = sorted(set(wanted) - held)
    if beyond:
        raise Denied(
            Reason.KEY_SCOPE_MISSING,
            f"this key cannot create a key with scope {beyond[0]!r}, which it does not have itself",
        )
    if "admin" in wanted and not caller.account.is_operator:
        raise Denied(
            Reason.KEY_SCOPE_MISSING, "only operators may hold keys with the 'admin' scope"
        )


class KeysController(Controller):
    path = "/api/v1/keys"
    tags = ["keys"]

    @post(
        "/",
        summary="Create an API key (the secret is in this response only)",
        status_code=201,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 429),
    )
    async def create(
        self, uow: Uow, limiter: Limiter, caller: CallerDep, data: JSONBody[NewKeyIn]
    ) -> NewKeyOut:
        _require_keys_scope(caller, uow.rt.clock())
        _check_new_scopes(caller, data.scopes)
        # The limiter counts in a connection of its own: ours goes back to the pool first.
        await uow.end_read()
        await limiter.take(RateLimit.KEYS_PER_ACCOUNT, caller.account.id)
        if data.expires_in_days is not None and data.expires_in_days < 1:
            raise InvalidInput("expires_in_days: expected a positive number of days")
        created = await create_key(
            uow,
            account_id=caller.account.id,
            scopes=data.scopes,
            days=data.expires_in_days,
            name=data.name,
            actor=Actor.account(caller.account.id),
        )
        out = KeyOut.of(created.key)
        return NewKeyOut(**out.__dict__, key=created.secret)

    @get(
        "/",
        summary="Your API keys (never their secrets)",
        security=BEARER,
        responses=answers(*COMMON, 401, 403),
    )
    async def list(self, uow: Uow, caller: CallerDep) -> builtins.list[KeyOut]:
        _require_keys_scope(caller, uow.rt.clock())
        return [KeyOut.of(k) for k in await list_keys(uow, caller.account)]

    @delete(
        "/{key_id:str}",
        summary="Revoke one of your API keys at once",
        status_code=200,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def revoke(
        self,
        uow: Uow,
        caller: CallerDep,
        key_id: Annotated[str, PathParameter(description="The key's id")],
    ) -> KeyOut:
        _require_keys_scope(caller, uow.rt.clock())
        key = await revoke_key(
            uow,
            account_id=caller.account.id,
            key_id=key_id,
            actor=Actor.account(caller.account.id),
        )
        return KeyOut.of(key)
