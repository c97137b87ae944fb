"""Bearer authentication with API keys, as a Litestar dependency."""

from __future__ import annotations

from typing import TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from gateway.downloads.service import Denied
from gateway.keys.service import Caller, Unauthenticated, authenticate
from gateway.web import Db, Rt
from stages.access import Deny, check_account

STANDING = "/account/standing"


async def provide_caller(request: Request[object, object, State], runtime: Rt, db: Db) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(
            "send your API key as `Authorization: Bearer rgk_...`", code="key_invalid"
        )
    caller = await authenticate(runtime, db, secret.strip(), runtime.clock())
    # End the read: on SQLite a snapshot kept open would hide what the handler then writes.
    await db.commit()
    # Every use of a key, whatever the route: a suspended account's keys open nothing.
    decision = check_account(caller.account.status)
    if isinstance(decision, Deny):
        raise Denied(
            decision.reason,
            f"{decision.message}; its API keys cannot be used",
            hint=f"see why and how to appeal at {runtime.settings.public_url}{STANDING}",
        )
    return caller


CallerDep: TypeAlias = NamedDependency[Caller]
