"""A grant's use of the API against its tier's terms: requests a minute per key, credits a
calendar month per grant. Both are counted in the shared store by one atomic statement
each (gateway/ratelimits/store.py), so of N concurrent verifications with K left, on any
number of replicas, exactly K get through."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.ratelimits.store import Counter, RateLimitStore
from stages.tiers import ApiTerms

if TYPE_CHECKING:
    from gateway.db.models import Grant
    from gateway.runtime import Runtime

MINUTE_MS = 60_000
# Scopes of the counters in the shared store.
REQUESTS = "api.requests"
CREDITS = "api.credits"


@dataclass(frozen=True)
class Window:
    """A counter and when its window ends (epoch milliseconds)."""

    counter: Counter
    ends_ms: int

    @property
    def resets_at(self) -> datetime:
        return datetime.fromtimestamp(self.ends_ms / 1000, UTC)


def minute_of(key_id: str, now: datetime) -> Window:
    now_ms = math.floor(now.timestamp() * 1000)
    period = now_ms // MINUTE_MS
    return Window(Counter(REQUESTS, key_id, period), (period + 1) * MINUTE_MS)


def month_of(grant_id: str, now: datetime) -> Window:
    at = now.astimezone(UTC)
    period = at.year * 12 + at.month - 1
    year, month = divmod(period + 1, 12)
    ends = datetime(year, month + 1, 1, tzinfo=UTC)
    return Window(Counter(CREDITS, grant_id, period), math.floor(ends.timestamp() * 1000))


@dataclass(frozen=True)
class Allowance:
    """Where a key and its grant stand: the minute's requests and the month's credits."""

    limit: int
    remaining: int
    reset: datetime
    credits_limit: int
    credits_remaining: int
    credits_reset: datetime


@dataclass(frozen=True)
class Spent:
    """The outcome of spending: `refused` is None, "rate_limited" or "credits_exhausted"."""

    allowance: Allowance
    refused: str | None


async def spend(
    store: RateLimitStore, terms: ApiTerms, *, key_id: str, grant_id: str, cost: int, now: datetime
) -> Spent:
    """One request of the key, and `cost` credits of the grant. A request over the minute's
    limit spends nothing; one within it but over the month's credits is still counted as
    a request (it was made), and spends no credit."""
    minute, month = minute_of(key_id, now), month_of(grant_id, now)
    requests = await store.spend(
        minute.counter, amount=1, limit=terms.requests_per_minute, expires_at=minute.ends_ms
    )
    if requests is None:
        used = await store.count(month.counter)
        return Spent(
            allowance(terms, minute, month, terms.requests_per_minute, used), "rate_limited"
        )
    credits = await store.spend(
        month.counter, amount=cost, limit=terms.credits_per_month, expires_at=month.ends_ms
    )
    if credits is None:
        used = await store.count(month.counter)
        return Spent(allowance(terms, minute, month, requests, used), "credits_exhausted")
    return Spent(allowance(terms, minute, month, requests, credits), None)


async def standing(
    store: RateLimitStore, terms: ApiTerms, *, key_id: str | None, grant_id: str, now: datetime
) -> Allowance:
    """Where a grant (and one of its keys, if named) stands now, spending nothing."""
    minute, month = minute_of(key_id or "", now), month_of(grant_id, now)
    requests = await store.count(minute.counter) if key_id is not None else 0
    return allowance(terms, minute, month, requests, await store.count(month.counter))


def allowance(
    terms: ApiTerms, minute: Window, month: Window, requests: int, credits: int
) -> Allowance:
    return Allowance(
        limit=terms.requests_per_minute,
        remaining=max(0, terms.requests_per_minute - requests),
        reset=minute.resets_at,
        credits_limit=terms.credits_per_month,
        credits_remaining=max(0, terms.credits_per_month - credits),
        credits_reset=month.resets_at,
    )


async def grant_allowance(rt: Runtime, grant: Grant, now: datetime) -> Allowance | None:
    """What an active grant has left of its tier's API terms now (None: the tier has
    none, or the grant is not active), for the grantee's own pages."""
    if grant.status != "active" or grant.tier not in rt.policy.ladder:
        return None
    terms = rt.policy.ladder.get(grant.tier).api
    if terms is None:
        return None
    return await rt.meter.standing(terms, key_id=None, grant_id=grant.id, now=now)
