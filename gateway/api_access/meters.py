"""Where API use is counted: the database (the embedded default), or Redis (`redis_url`).

Both are exact across replicas: the database by one guarded upsert a counter
(gateway/ratelimits/store.py), Redis by one script that checks and counts the key's
minute and the grant's month together, atomically. The spends a process asks for in the
same turn of its event loop go to Redis in one pipeline (`_Pipelined`): each script still
runs on its own, atomically, so the counts are exactly those of one call each, while the
round trip and the client's work per call are shared. At a few thousand verifications a
second that work, not Redis, was the verification's largest cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

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


# The most spends one pipeline carries; more wait for the next.
MAX_PIPELINE = 256
Call = tuple[Sequence[object], "asyncio.Future[Any]"]


class _Pipelined:
    """One script, called by many requests: the calls asked for while a pipeline is out
    (or in the same turn of the loop) go together in the next one. One pipeline is out at
    a time per process, so under load each round trip carries many calls, and a lone call
    waits for nothing but its own round trip."""

    def __init__(self, client: Any, script: str) -> None:
        self.client = client
        self.script = script
        self.sha: str = client.register_script(script).sha
        self._waiting: list[Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, *args: object) -> Any:
        """The script's answer for EVALSHA `args` (numkeys, keys, argv)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                calls, self._waiting = (
                    self._waiting[:MAX_PIPELINE],
                    self._waiting[MAX_PIPELINE:],
                )
                await self._run(calls)
        finally:
            self._sender = None

    async def _run(self, calls: list[Call]) -> None:
        try:
            answers = await self._pipeline(calls)
            if any(isinstance(a, NoScriptError) for a in answers):
                # Redis lost its scripts (a restart, SCRIPT FLUSH): none of those ran.
                await self.client.script_load(self.script)
                again = [
                    c for c, a in zip(calls, answers, strict=True) if isinstance(a, NoScriptError)
                ]
                retried = iter(await self._pipeline(again))
                answers = [next(retried) if isinstance(a, NoScriptError) else a for a in answers]
        except BaseException as exc:  # each caller meets the failure, then it goes on
            for _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(calls, answers, strict=True):
            if future.done():
                continue  # its request was cancelled meanwhile
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args, _ in calls:
            pipe.execute_command("EVALSHA", self.sha, *args)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers


class RedisMeter:
    def __init__(self, url: str) -> None:
        self.client: Any = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.spend_script = _Pipelined(self.client, _SPEND)

    async def spend(
        self, terms: ApiTerms, *, key_id: str, grant_id: str, cost: int, now: datetime
    ) -> Spent:
        minute, month = metering.minute_of(key_id, now), metering.month_of(grant_id, now)
        try:
            outcome, requests, credits = await self.spend_script(
                2,
                _name(minute),
                _name(month),
                terms.requests_per_minute,
                terms.credits_per_month,
                cost,
                minute.ends_ms,
                month.ends_ms,
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
