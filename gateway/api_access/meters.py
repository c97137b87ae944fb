"""Where API use is counted: the database (the embedded default), or Redis (`redis_url`).

Both are exact across replicas: the database by one guarded upsert a counter
(gateway/ratelimits/store.py), Redis by one script that checks and counts the key's
minute and the grant's month together, atomically, in one round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.api_access import metering
from gateway.api_access.metering import Allowance, Spent, Window
from gateway.errors import Unavailable
from gateway.ratelimits.store import RateLimitStore
from stages.tiers import ApiTerms


class RedisUnavailable(Unavailable):
    part = "Redis"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="redis_unavailable")


class ApiMeter(Protocol):
    async def spend(
        self, terms: ApiTerms, *, key_id: str, grant_id: str, cost: int, now: datetime
    ) -> Spent:
        """One request of the key and `cost` credits of the grant, or the refusal."""
        ...

    async def standing(
        self, terms: ApiTerms, *, key_id: str | None, grant_id: str, now: datetime
    ) -> Allowance:
        """Where a grant (and one of its keys) stands, spending nothing."""
        ...

    async def check(self) -> None:
        """Raise if the counts cannot be reached (for /readyz)."""
        ...

    async def close(self) -> None: ...


class DatabaseMeter:
    def __init__(self, store: RateLimitStore) -> None:
        self.store = store

    async def spend(
        self, terms: ApiTerms, *, key_id: str, grant_id: str, cost: int, now: datetime
    ) -> Spent:
        return await metering.spend(
            self.store, terms, key_id=key_id, grant_id=grant_id, cost=cost, now=now
        )

    async def standing(
        self, terms: ApiTerms, *, key_id: str | None, grant_id: str, now: datetime
    ) -> Allowance:
        return await metering.standing(self.store, terms, key_id=key_id, grant_id=grant_id, now=now)

    async def check(self) -> None:
        return None  # the database is checked on its own

    async def close(self) -> None:
        return None


# KEYS: the key's minute, the grant's month. ARGV: requests a minute, credits a month,
# the cost, and when each window ends (epoch ms, for PEXPIREAT). Answers
# {outcome, requests counted, credits counted}: outcome 0 rate limited (nothing counted),
# 1 credits exhausted (the request counted), 2 spent.
_SPEND: Final = """
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local credits = tonumber(redis.call('GET', KEYS[2]) or '0')
if requests + 1 > tonumber(ARGV[1]) then return {0, requests, credits} end
requests = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
local cost = tonumber(ARGV[3])
if credits + cost > tonumber(ARGV[2]) then return {1, requests, credits} end
credits = redis.call('INCRBY', KEYS[2], cost)
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return {2, requests, credits}
"""
_OUTCOMES: Final = {0: "rate_limited", 1: "credits_exhausted", 2: None}


def _name(window: Window) -> str:
    counter = window.counter
    return f"gateway:{counter.scope}:{counter.subject}:{counter.period}"


class RedisMeter:
    def __init__(self, url: str) -> None:
        self.client: Any = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script: Any = self.client.register_script(_SPEND)

    async def spend(
        self, terms: ApiTerms, *, key_id: str, grant_id: str, cost: int, now: datetime
    ) -> Spent:
        minute, month = metering.minute_of(key_id, now), metering.month_of(grant_id, now)
        try:
            outcome, requests, credits = await self.script(
                keys=[_name(minute), _name(month)],
                args=[
                    terms.requests_per_minute,
                    terms.credits_per_month,
                    cost,
                    minute.ends_ms,
                    month.ends_ms,
                ],
            )
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from exc
        allowance = metering.allowance(terms, minute, month, int(requests), int(credits))
        return Spent(allowance, _OUTCOMES[int(outcome)])

    async def standing(
        self, terms: ApiTerms, *, key_id: str | None, grant_id: str, now: datetime
    ) -> Allowance:
        minute, month = metering.minute_of(key_id or "", now), metering.month_of(grant_id, now)
        try:
            requests, credits = await self.client.mget(_name(minute), _name(month))
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from exc
        counted = int(requests or 0) if key_id is not None else 0
        return metering.allowance(terms, minute, month, counted, int(credits or 0))

    async def check(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.client.aclose()


def meter_for(redis_url: str | None, store: RateLimitStore) -> ApiMeter:
    return RedisMeter(redis_url) if redis_url else DatabaseMeter(store)
