"""Bearer authentication with API keys, as a Litestar dependency."""

from __future__ import annotations

from typing import TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from gateway.downloads.service import Denied
from gateway.keys.service import Caller, Unauthenticated, authenticate, note_key_use
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
    now = runtime.clock()
    caller = await authenticate(runtime, db, secret.strip(), now)
    # End the read, which also gives its connection back: on SQLite a snapshot kept open
    # would hide what the handler then writes, and noting the key's use takes a connection
    # of its own, never a second one while this is held.
    await db.commit()
    # Every use of a key, whatever the route: a suspended account's keys open nothing.
    decision = check_account(caller.account.status)
    if isinstance(decision, Deny):
        raise Denied(
            decision.reason,
            f"{decision.message}; its API keys cannot be used",
            hint=f"see why and how to appeal at {runtime.settings.public_url}{STANDING}",
        )
    await note_key_use(runtime, caller.key, now)
    return caller


CallerDep: TypeAlias = NamedDependency[Caller]
