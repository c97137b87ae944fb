"""Key verification for inference services: may this key use this model's API now, and
how much of its allowance is left.

A service (an account made by `gateway services create`, its key holding the `verify`
scope) sends a grantee's key and a model. The answer comes from the one access decision
(stages/access.py) over the same facts as a download, asked for API use, then from the
tier's rate limit and credits, spent atomically in the shared store. Every lookup goes
through this process's caches, which a revocation or suspension invalidates on every
replica at once, so a revoked key stops verifying within one second.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway.api_access.metering import Allowance
from gateway.api_access.repository import model_releases
from gateway.credentials.api_key_format import is_well_formed, key_digest
from gateway.db.models import Account, Grant, Release
from gateway.db.uow import UnitOfWork
from gateway.downloads.access import best_grant, grants_of, recalled_tiers
from gateway.errors import Denied, InvalidInput, NotFound
from gateway.keys.service import (
    SERVICE_SCOPE,
    Caller,
    Unauthenticated,
    authenticate_cached,
    key_facts_of,
)
from gateway.runtime import Runtime
from stages.access import Deny, Reason, check_key
from stages.names import ModelRef
from stages.tiers import ApiTerms

MAX_COST = 1_000_000


@dataclass(frozen=True)
class Verification:
    """What a service learns of a key. `valid` is true exactly when `reason` is None."""

    valid: bool
    reason: str | None
    message: str | None
    account: str | None = None
    organisation: str | None = None
    grant: str | None = None
    tier: str | None = None
    release: str | None = None
    components: tuple[str, ...] = ()
    allowance: Allowance | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


def require_service(service: Caller, now: datetime) -> None:
    """A live key of a service account, with the `verify` scope; else 403."""
    decision = check_key(key_facts_of(service.key), now, SERVICE_SCOPE)
    if isinstance(decision, Deny):
        raise Denied(decision.reason, decision.message)
    if not service.account.is_service:
        raise Denied(
            Reason.KEY_SCOPE_MISSING,
            "only a service account's key may verify keys or report use "
            "(an operator makes one with `gateway services create`)",
        )


def checked_cost(cost: object) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or not 0 <= cost <= MAX_COST:
        raise InvalidInput(
            f"cost must be a whole number of credits from 0 to {MAX_COST:,}, not {cost!r}",
            code="invalid_cost",
        )
    return cost


NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Decided:
    """What a key may do with a model, as far as it depends on rows and the clock, until
    `until` (the next instant a key or grant starts or ends): a refusal, or the grant and
    release whose tier's terms the request then spends."""

    refused: Verification | None
    described: Verification | None = None
    terms: ApiTerms | None = None
    key_id: str = ""
    grant_id: str = ""
    until: datetime = NEVER


# Every table the decision reads; a change to any of them forgets every decision.
_DECISION_TABLES = ("api_keys", "accounts", "models", "releases", "grants", "recalls")


async def verify_key(
    uow: UnitOfWork,
    service: Caller,
    *,
    secret: str,
    model: ModelRef,
    version: str | None,
    cost: int,
) -> Verification:
    """Whether `secret` may use `model`'s API now; spends one request and `cost` credits
    when it may. An unknown model is 404; everything about the key is in the answer.

    The decision is kept in this process's cache like the rows it is made of (a
    revocation, a suspension, a stage move or a recall forgets it on every replica), and
    no longer than the next start or end of the key's or a grant's validity."""
    rt = uow.rt
    now = rt.clock()
    require_service(service, now)
    cost = checked_cost(cost)
    secret = secret.strip()
    if not secret.isascii():
        return _refused(Reason.KEY_INVALID, "that is not an API key of this gateway")
    cache = rt.changes.cache("verification", _DECISION_TABLES)
    asked = (key_digest(secret), model, version)

    async def load() -> _Decided | None:
        return await _decide(uow, secret, model, version, now)

    # Only known keys' decisions are kept (anyone can make up well-formed keys: kept,
    # their refusals would crowd out the decisions that matter), so a hit needs no
    # checksum.
    decided: _Decided | None = cache.peek(asked)
    if decided is None:
        if not is_well_formed(secret):
            return _refused(Reason.KEY_INVALID, "that is not an API key of this gateway")
        decided = await cache.get(asked, load)
    elif now >= decided.until:
        decided = await load()  # a start or an end passed since it was decided
    if decided is None:
        return _refused(Reason.KEY_INVALID, "this API key is not known to this gateway")
    if decided.refused is not None:
        return decided.refused
    # The counters take connections of their own: none is held while they count.
    await uow.end_read()
    return await _spent(rt, decided, cost, now)


async def _spent(rt: Runtime, decided: _Decided, cost: int, now: datetime) -> Verification:
    """The allowed decision with one request and `cost` credits spent, or refused when the
    key's minute or the grant's month has none left."""
    terms = decided.terms
    assert terms is not None
    assert decided.described is not None
    spent = await rt.meter.spend(
        terms, key_id=decided.key_id, grant_id=decided.grant_id, cost=cost, now=now
    )
    described = replace(decided.described, allowance=spent.allowance)
    if spent.refused == "rate_limited":
        limit = terms.requests_per_minute
        return _with(
            described, Reason.RATE_LIMITED, f"this key made its {limit} requests of the minute"
        )
    if spent.refused == "credits_exhausted":
        return _with(
            described,
            Reason.CREDITS_EXHAUSTED,
            f"this grant's {terms.credits_per_month:,} credits of the month are spent "
            f"(they refill on {spent.allowance.credits_reset:%Y-%m-%d})",
        )
    return described


async def _decide(
    uow: UnitOfWork, secret: str, model: ModelRef, version: str | None, now: datetime
) -> _Decided | None:
    """What the key may do with the model now, or None when no key has that secret."""
    rt = uow.rt
    try:
        grantee = await authenticate_cached(uow, secret)
    except Unauthenticated:
        return None
    releases = await model_releases(uow, model)
    if version is not None:
        releases = tuple(r for r in releases if r.version == version)
        if not releases:
            raise _no_release(model, version)
    grants = await grants_of(uow, grantee.account.id, releases[0].model_id if releases else 0)
    until = _next_change(now, grantee, grants)
    found = await _best(uow, grantee, releases, grants, now)
    if isinstance(found, Verification):
        return _Decided(found, until=until)
    grant, release = found
    tier = rt.policy.ladder.get(grant.tier)
    assert tier.api is not None  # the decision allowed API use
    return _Decided(
        None,
        described=_described(rt, grantee, grant, release),
        terms=tier.api,
        key_id=grantee.key.id,
        grant_id=grant.id,
        until=until,
    )


def _next_change(now: datetime, grantee: Caller, grants: tuple[Grant, ...]) -> datetime:
    """The next instant after `now` at which the key or one of the grants starts or ends."""
    instants = [grantee.key.expires_at]
    for grant in grants:
        instants += [grant.starts_at, grant.expires_at]
    return min((t for t in instants if t > now), default=NEVER)


async def _best(
    uow: UnitOfWork,
    grantee: Caller,
    releases: tuple[Release, ...],
    grants: tuple[Grant, ...],
    now: datetime,
) -> tuple[Grant, Release] | Verification:
    """The grant and release that allow API use now (the newest release not yanked, a
    yanked one only when nothing else allows it; the widest tier), else the refusal that
    tells most: the key's, the account's, then the first grant's."""
    rt = uow.rt
    first: Deny | None = None
    newest_first = sorted(
        releases, key=lambda r: (r.yanked_at is None, r.published_at), reverse=True
    )
    for release in newest_first:
        recalled = await recalled_tiers(uow, release.id)
        grant, decision = best_grant(rt, now, grantee, release, grants, recalled, api_use=True)
        if grant is not None:
            return grant, release
        assert isinstance(decision, Deny)
        first = first or decision
    if first is None:  # a model with no release
        first = Deny(Reason.TIER_NOT_OPEN, "this model has no release yet")
    revoked = grantee.key.revoked_at if first.reason is Reason.KEY_REVOKED else None
    return Verification(
        valid=False,
        reason=first.reason.value,
        message=first.message,
        account=grantee.account.id,
        organisation=organisation_of(grantee.account),
        expires_at=grantee.key.expires_at,
        revoked_at=revoked,
    )


def organisation_of(account: Account) -> str:
    """An account's organisation as the gateway counts them: its email's domain."""
    return account.email.rpartition("@")[2].lower()


def _described(rt: Runtime, grantee: Caller, grant: Grant, release: Release) -> Verification:
    return Verification(
        valid=True,
        reason=None,
        message=None,
        account=grantee.account.id,
        organisation=organisation_of(grantee.account),
        grant=grant.id,
        tier=grant.tier,
        release=f"{release.model.ref}:{release.version}",
        components=tuple(sorted(rt.policy.ladder.visible_components(grant.tier))),
        expires_at=min(grantee.key.expires_at, grant.expires_at),
    )


def _with(verification: Verification, reason: Reason, message: str) -> Verification:
    return replace(verification, valid=False, reason=reason.value, message=message)


def _refused(reason: Reason, message: str) -> Verification:
    return Verification(valid=False, reason=reason.value, message=message)


def _no_release(model: ModelRef, version: str) -> NotFound:
    return NotFound(f"no release {model}:{version}", code="release_not_found")
