"""Counting an attempt against its rule, and the 429 that refuses one over the limit."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import GatewayError
from gateway.ratelimits.rules import TOO_MANY, Pace, RateLimit, RateLimits, Window
from gateway.ratelimits.store import Counter, RateLimitStore


class RateLimited(GatewayError):
    """429: the attempt is not counted; `retry_after` seconds from now it would be."""

    status = 429
    exit_code = 7

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Ticket:
    """A counted attempt, to give back if it turns out not to count."""

    limit: RateLimit
    counter: Counter


class RateLimiter:
    """The gateway's rate limits over a shared store, read from the settings."""

    def __init__(
        self, store: RateLimitStore, rules: RateLimits, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock

    async def take(self, limit: RateLimit, who: str) -> Ticket:
        """Count one attempt by `who` (an address, an account id, a key id...) or raise
        RateLimited, with the seconds until one would be allowed."""
        rule = self.rules.rule(limit)
        now = math.floor(self.clock().timestamp() * 1000)
        subject = hashlib.sha256(who.encode()).hexdigest()
        if isinstance(rule, Window):
            length = rule.seconds * 1000
            counter = Counter(limit.value, subject, now // length)
            ends = (counter.period + 1) * length
            if not await self.store.take(counter, limit=rule.limit, expires_at=ends):
                raise _refusal(limit, ends - now)
            return Ticket(limit, counter)
        return await self._take_paced(limit, rule, subject, now)

    async def _take_paced(self, limit: RateLimit, rule: Pace, subject: str, now: int) -> Ticket:
        # The history lives in a window of `forget` seconds: quiet that long, it starts over.
        length = rule.forget * 1000
        counter = Counter(limit.value, subject, now // length)
        ends = (counter.period + 1) * length
        not_before = await self.store.take_paced(
            counter, now=now, free=rule.free, delays=rule.delays_ms(), expires_at=ends
        )
        if not_before is not None:
            raise _refusal(limit, min(not_before, ends) - now)
        return Ticket(limit, counter)

    async def give_back(self, ticket: Ticket) -> None:
        """The attempt did not count after all: a window gets its slot back, and a pace
        starts over (a correct password ends the slow-down it earned)."""
        if isinstance(self.rules.rule(ticket.limit), Window):
            await self.store.give_back(ticket.counter)
        else:
            await self.store.forget(ticket.counter.scope, ticket.counter.subject)

    async def sweep(self) -> int:
        """Drop the counts of windows that are over."""
        return await self.store.sweep(math.floor(self.clock().timestamp() * 1000))


def _refusal(limit: RateLimit, wait_ms: int) -> RateLimited:
    seconds = max(1, math.ceil(wait_ms / 1000))
    if seconds < 90:
        when = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = math.ceil(seconds / 60)
        when = f"{minutes} minutes" if minutes < 120 else f"{math.ceil(minutes / 60)} hours"
    return RateLimited(f"{TOO_MANY[limit]}; try again in {when}", retry_after=seconds)
