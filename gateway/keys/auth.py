"""Bearer authentication with API keys: the one place that reads `Authorization`, and the
`caller` dependency every key-guarded route declares."""

from __future__ import annotations

from typing import TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from gateway.db.uow import UnitOfWork
from gateway.errors import Denied, Forbidden
from gateway.keys.service import (
    Caller,
    Unauthenticated,
    authenticate,
    authenticate_cached,
    key_facts_of,
    note_key_use,
)
from gateway.web import Uow
from stages.access import Deny, check_account, check_key

STANDING = "/account/standing"
_HOW = "send your API key as `Authorization: Bearer rgk_...`"


def bearer_secret(request: Request[object, object, State], *, optional: bool = False) -> str | None:
    """The secret of an `Authorization: Bearer ...` header; None when `optional` and the
    request sent no header at all. A header that is not a bearer key is refused (401)."""
    header = request.headers.get("authorization", "").strip()
    if optional and not header:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        how = f"{_HOW}, or no key at all" if optional else _HOW
        raise Unauthenticated(how, code="key_invalid")
    return secret.strip()


async def caller_of(uow: UnitOfWork, secret: str, *, cached: bool = False) -> Caller:
    """The account and key behind `secret`, read in the request's unit (or, `cached`,
    through this process's cache: rows to read, never to change); its use is noted after
    the unit commits."""
    now = uow.rt.clock()
    caller = await (
        authenticate_cached(uow, secret) if cached else authenticate(uow.session, secret)
    )
    note_key_use(uow, caller.key, now)
    return caller


async def provide_caller(request: Request[object, object, State], uow: Uow) -> Caller:
    """The caller of a route that may change its account or key: rows of the unit."""
    return await _standing_caller(request, uow, cached=False)


async def provide_grantee(request: Request[object, object, State], uow: Uow) -> Caller:
    """The caller of a hot path that only reads its account and key (the download
    manifest): through this process's cache."""
    return await _standing_caller(request, uow, cached=True)


async def _standing_caller(
    request: Request[object, object, State], uow: UnitOfWork, *, cached: bool
) -> Caller:
    secret = bearer_secret(request)
    assert secret is not None
    caller = await caller_of(uow, secret, cached=cached)
    # Every use of a key, whatever the route: a suspended account's keys open nothing.
    decision = check_account(caller.account.status)
    if isinstance(decision, Deny):
        public_url = uow.rt.settings.public_url
        raise Denied(
            decision.reason,
            f"{decision.message}; its API keys cannot be used",
            hint=f"see why and how to appeal at {public_url}{STANDING}",
        )
    return caller


CallerDep: TypeAlias = NamedDependency[Caller]
# Named `admin` in a handler: an operator's key with the `admin` scope (provide_admin).
AdminDep: TypeAlias = NamedDependency[Caller]
# Named `grantee` in a handler: the read-only, cached caller (provide_grantee).
GranteeDep: TypeAlias = NamedDependency[Caller]


async def provide_admin(caller: CallerDep, uow: Uow) -> Caller:
    """The caller of an operator route (`/api/v1/ops/...`): a live key with the `admin`
    scope, held by an active operator. A key is refused when its account is no longer an
    operator, though it kept the scope: the role is read at every call. An account that
    is suspended was refused already, by the caller's standing check."""
    decision = check_key(key_facts_of(caller.key), uow.rt.clock(), "admin")
    if isinstance(decision, Deny):
        raise Denied(decision.reason, decision.message)
    if not caller.account.is_operator:
        raise Forbidden(
            "this key's account is not an operator; operator routes are for operators only",
            code="not_operator",
        )
    return caller
