"""HTTP: an account's own API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter

from gateway.db.models import ApiKey
from gateway.downloads.service import Denied
from gateway.errors import InvalidInput
from gateway.keys.auth import CallerDep
from gateway.keys.service import Caller, create_key, list_keys, revoke_key
from gateway.web import Db, Rt
from stages.access import Reason


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


def _require_keys_scope(caller: Caller) -> None:
    if "keys" not in caller.key.scopes.split():
        raise Denied(Reason.KEY_SCOPE_MISSING, "managing keys needs a key with the 'keys' scope")


class KeysController(Controller):
    path = "/api/v1/keys"
    tags = ["keys"]

    @post("/", summary="Create an API key (the secret is in this response only)", status_code=201)
    async def create(self, runtime: Rt, caller: CallerDep, data: JSONBody[NewKeyIn]) -> NewKeyOut:
        _require_keys_scope(caller)
        if data.expires_in_days is not None and data.expires_in_days < 1:
            raise InvalidInput("expires_in_days: expected a positive number of days")
        created = await create_key(
            runtime,
            account_id=caller.account.id,
            scopes=data.scopes,
            days=data.expires_in_days,
            name=data.name,
            actor=f"account:{caller.account.id}",
        )
        out = KeyOut.of(created.key)
        return NewKeyOut(**out.__dict__, key=created.secret)

    @get("/", summary="Your API keys (never their secrets)")
    async def list(self, db: Db, caller: CallerDep) -> list[KeyOut]:
        _require_keys_scope(caller)
        return [KeyOut.of(k) for k in await list_keys(db, caller.account.id)]

    @delete("/{key_id:str}", summary="Revoke one of your API keys at once", status_code=200)
    async def revoke(
        self,
        runtime: Rt,
        caller: CallerDep,
        key_id: Annotated[str, PathParameter(description="The key's id")],
    ) -> KeyOut:
        _require_keys_scope(caller)
        key = await revoke_key(
            runtime,
            account_id=caller.account.id,
            key_id=key_id,
            actor=f"account:{caller.account.id}",
        )
        return KeyOut.of(key)
