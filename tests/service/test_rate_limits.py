"""The rate limiter over the real database: exact counts under concurrency, windows that
start over, slow-down that doubles and forgives, and the rules as settings."""

from __future__ import annotations

import asyncio
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import ConfigError, load_settings
from gateway.db.models import RateLimitCounter
from gateway.ratelimits import (
    DatabaseRateLimitStore,
    Pace,
    RateLimit,
    RateLimited,
    RateLimiter,
    RateLimits,
    Ticket,
    Window,
)
from gateway.ratelimits.rules import TOO_MANY
from gateway.runtime import Runtime

pytestmark = pytest.mark.anyio

START = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def limiter_for(runtime: Runtime, rules: RateLimits, clock: Clock) -> RateLimiter:
    return RateLimiter(DatabaseRateLimitStore(runtime.engine), rules, clock=clock)


async def attempt(limiter: RateLimiter, limit: RateLimit, who: str) -> Ticket | RateLimited:
    try:
        return await limiter.take(limit, who)
    except RateLimited as refused:
        return refused


async def rows(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(RateLimitCounter)) or 0


async def test_of_many_concurrent_attempts_exactly_the_limit_is_counted(runtime: Runtime) -> None:
    rules = replace(RateLimits(), sign_up_per_address=Window(limit=7, seconds=3600))
    limiter = limiter_for(runtime, rules, Clock())
    results = await asyncio.gather(
        *(attempt(limiter, RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.1") for _ in range(40))
    )
    taken = [r for r in results if isinstance(r, Ticket)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(taken) == 7
    assert len(refused) == 33
    # 12:00:00 is a window boundary: the refusals wait for the next hour, in seconds.
    assert {r.retry_after for r in refused} == {3600}
    assert {r.status for r in refused} == {429}
    assert all("too many sign-ups from this address" in r.message for r in refused)


async def test_a_window_starts_over_and_subjects_and_rules_count_apart(runtime: Runtime) -> None:
    clock = Clock(START + timedelta(seconds=30))
    rules = replace(
        RateLimits(),
        sign_up_per_address=Window(limit=2, seconds=60),
        password_reset_per_address=Window(limit=1, seconds=60),
    )
    limiter = limiter_for(runtime, rules, clock)
    for _ in range(2):
        await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.1")
    with pytest.raises(RateLimited) as refused:
        await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.1")
    assert refused.value.retry_after == 30
    assert "30 seconds" in refused.value.message
    # Another address, and another rule for the same address, have their own counts.
    await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.2")
    await limiter.take(RateLimit.PASSWORD_RESET_PER_ADDRESS, "192.0.2.1")
    clock.advance(30)
    await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.1")


async def test_a_slot_given_back_can_be_taken_again(runtime: Runtime) -> None:
    rules = replace(RateLimits(), sign_in_per_address=Window(limit=2, seconds=900))
    limiter = limiter_for(runtime, rules, Clock())
    first = await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, "192.0.2.1")
    await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, "192.0.2.1")
    with pytest.raises(RateLimited):
        await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, "192.0.2.1")
    await limiter.give_back(first)
    await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, "192.0.2.1")
    with pytest.raises(RateLimited):
        await limiter.take(RateLimit.SIGN_IN_PER_ADDRESS, "192.0.2.1")


async def test_a_pace_allows_the_free_attempts_then_doubles_the_wait(runtime: Runtime) -> None:
    clock = Clock()
    rules = replace(
        RateLimits(), sign_in_failures=Pace(free=3, first_delay=10, max_delay=40, forget=86400)
    )
    limiter = limiter_for(runtime, rules, clock)
    who = "ada@uni.edu 192.0.2.1"
    for _ in range(3):
        await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    waits = []
    for _ in range(4):
        with pytest.raises(RateLimited) as refused:
            await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
        waits.append(refused.value.retry_after)
        # Not a lockout: after the wait, the next attempt is let through.
        clock.advance(refused.value.retry_after)
        await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    assert waits == [10, 20, 40, 40]
    # The same account from another address is not slowed down at all.
    for _ in range(3):
        await limiter.take(RateLimit.SIGN_IN_FAILURES, "ada@uni.edu 198.51.100.7")


async def test_giving_back_a_paced_attempt_starts_the_pace_over(runtime: Runtime) -> None:
    rules = replace(
        RateLimits(), sign_in_failures=Pace(free=2, first_delay=60, max_delay=900, forget=86400)
    )
    limiter = limiter_for(runtime, rules, Clock())
    who = "ada@uni.edu 192.0.2.1"
    await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    last = await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    with pytest.raises(RateLimited):
        await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    await limiter.give_back(last)
    await limiter.take(RateLimit.SIGN_IN_FAILURES, who)
    await limiter.take(RateLimit.SIGN_IN_FAILURES, who)


async def test_of_many_concurrent_paced_attempts_exactly_the_free_ones_pass(
    runtime: Runtime,
) -> None:
    rules = replace(
        RateLimits(), sign_in_failures=Pace(free=4, first_delay=60, max_delay=900, forget=86400)
    )
    limiter = limiter_for(runtime, rules, Clock())
    results = await asyncio.gather(
        *(attempt(limiter, RateLimit.SIGN_IN_FAILURES, "ada@uni.edu 192.0.2.1") for _ in range(30))
    )
    assert sum(isinstance(r, Ticket) for r in results) == 4
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 26
    assert {r.retry_after for r in refused} == {60}


async def test_the_sweep_drops_only_windows_that_are_over(runtime: Runtime) -> None:
    clock = Clock()
    rules = replace(
        RateLimits(),
        sign_up_per_address=Window(limit=5, seconds=60),
        keys_per_account=Window(limit=5, seconds=3600),
    )
    limiter = limiter_for(runtime, rules, clock)
    await limiter.take(RateLimit.SIGN_UP_PER_ADDRESS, "192.0.2.1")
    await limiter.take(RateLimit.KEYS_PER_ACCOUNT, "account-1")
    assert await rows(runtime) == 2
    clock.advance(61)
    assert await limiter.sweep() == 1
    assert await rows(runtime) == 1


# --- the rules as settings ----------------------------------------------------------------


def settings_with(tmp_path: Path, text: str) -> RateLimits:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "gateway.toml").write_text(text)
    return load_settings({"GATEWAY_HOME": str(home)}).rate_limits


def test_every_rule_has_a_setting_and_a_message() -> None:
    assert {f.name for f in fields(RateLimits)} == {limit.value for limit in RateLimit}
    assert set(TOO_MANY) == set(RateLimit)


def test_rate_limits_are_settings_with_defaults(tmp_path: Path) -> None:
    assert load_settings({"GATEWAY_HOME": str(tmp_path)}).rate_limits == RateLimits()
    limits = settings_with(
        tmp_path,
        "[rate_limits]\n"
        "sign_up_per_address = { limit = 3, window_seconds = 600 }\n"
        "sign_in_failures = { free = 2, first_delay_seconds = 5 }\n",
    )
    assert limits.sign_up_per_address == Window(limit=3, seconds=600)
    assert limits.sign_in_failures == replace(RateLimits().sign_in_failures, free=2, first_delay=5)
    assert limits.keys_per_account == RateLimits().keys_per_account


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rate_limits]\nsign_ups = { limit = 3 }", "rate_limits.sign_ups: unknown rate limit"),
        ("[rate_limits]\nsign_up_per_address = 3", "expected a table with limit, window_seconds"),
        (
            "[rate_limits]\nsign_up_per_address = { free = 3 }",
            "expected a table with limit, window_seconds",
        ),
        (
            "[rate_limits]\nsign_up_per_address = { limit = 0 }",
            "sign_up_per_address.limit: expected a whole number from 1 to 1000000, got 0",
        ),
        (
            "[rate_limits]\nsign_up_per_address = { limit = true }",
            "sign_up_per_address.limit: expected a whole number",
        ),
        (
            "[rate_limits]\nkeys_per_account = { window_seconds = 1e400 }",
            "keys_per_account.window_seconds: expected a whole number",
        ),
        (
            "[rate_limits]\nsign_in_failures = { first_delay_seconds = 60, max_delay_seconds = 5 }",
            "max_delay_seconds: expected at least first_delay_seconds (60), got 5",
        ),
        ("rate_limits = 5", "rate_limits: expected a table like [rate_limits]"),
    ],
)
def test_bad_rate_limit_settings_are_refused_with_their_path(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, text)
    assert message in str(refused.value)
