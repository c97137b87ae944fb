"""The rate limits as settings: which attempts are counted, how many, over what time.

Two kinds of rule. A `Window` allows `limit` attempts per fixed window of `seconds`
(windows are aligned to the epoch, so every process and replica agrees on them without
talking). A `Pace` slows down rather than locks: `free` attempts, then each further one
must wait twice as long as the one before, from `first_delay` up to `max_delay`; the
history is forgotten `forget` seconds into a quiet window. Defaults are here, overrides
come from `[rate_limits]` in gateway.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Final

MAX_SECONDS: Final = 30 * 24 * 3600
MAX_LIMIT: Final = 1_000_000


class RateLimit(StrEnum):
    """Every counted attempt; the value is the setting's name and the counter's scope."""

    SIGN_IN_PER_ADDRESS = "sign_in_per_address"
    SIGN_IN_FAILURES = "sign_in_failures"
    OIDC_SIGN_IN_PER_ADDRESS = "oidc_sign_in_per_address"
    SIGN_UP_PER_ADDRESS = "sign_up_per_address"
    # Names of settings, not passwords.
    PASSWORD_RESET_PER_ADDRESS = "password_reset_per_address"  # noqa: S105
    PASSWORD_RESET_PER_EMAIL = "password_reset_per_email"  # noqa: S105
    INCIDENT_REPORTS_PER_ADDRESS = "incident_reports_per_address"
    FOUND_KEY_REPORTS_PER_ADDRESS = "found_key_reports_per_address"
    APPLICATIONS_PER_ACCOUNT = "applications_per_account"
    KEYS_PER_ACCOUNT = "keys_per_account"
    MANIFESTS_PER_KEY = "manifests_per_key"


# What a refusal says was too much; the limiter adds when to try again.
TOO_MANY: Final[Mapping[RateLimit, str]] = {
    RateLimit.SIGN_IN_PER_ADDRESS: "too many unsuccessful sign-in attempts from this address",
    RateLimit.SIGN_IN_FAILURES: "too many wrong passwords for this account from this address",
    RateLimit.OIDC_SIGN_IN_PER_ADDRESS: "too many sign-in attempts from this address",
    RateLimit.SIGN_UP_PER_ADDRESS: "too many sign-ups from this address",
    RateLimit.PASSWORD_RESET_PER_ADDRESS: "too many password resets asked from this address",
    RateLimit.PASSWORD_RESET_PER_EMAIL: "too many password resets asked for this email address",
    RateLimit.INCIDENT_REPORTS_PER_ADDRESS: "too many reports from this address",
    RateLimit.FOUND_KEY_REPORTS_PER_ADDRESS: "too many reports of found keys from this address",
    RateLimit.APPLICATIONS_PER_ACCOUNT: "too many applications from this account",
    RateLimit.KEYS_PER_ACCOUNT: "too many API keys created by this account",
    RateLimit.MANIFESTS_PER_KEY: "too many download manifests asked with this API key",
}


@dataclass(frozen=True)
class Window:
    """At most `limit` attempts per fixed window of `seconds`."""

    limit: int
    seconds: int


@dataclass(frozen=True)
class Pace:
    """`free` attempts, then exponentially growing delays between further ones."""

    free: int
    first_delay: int
    max_delay: int
    forget: int

    def delays_ms(self) -> tuple[int, ...]:
        """The wait after the free attempts, the one after, ...; the last one repeats."""
        delays = [self.first_delay * 1000]
        while delays[-1] < self.max_delay * 1000:
            delays.append(min(delays[-1] * 2, self.max_delay * 1000))
        return tuple(delays)


Rule = Window | Pace


@dataclass(frozen=True)
class RateLimits:
    """One rule per `RateLimit`, named alike."""

    # Counts attempts that did not succeed: a correct password gives its slot back.
    sign_in_per_address: Window = Window(30, 15 * 60)
    # Wrong passwords per account *and* address: a stranger elsewhere slows down only
    # themselves, never the owner.
    sign_in_failures: Pace = Pace(free=5, first_delay=2, max_delay=15 * 60, forget=24 * 3600)
    oidc_sign_in_per_address: Window = Window(30, 15 * 60)
    sign_up_per_address: Window = Window(10, 3600)
    password_reset_per_address: Window = Window(10, 3600)
    password_reset_per_email: Window = Window(5, 3600)
    incident_reports_per_address: Window = Window(10, 3600)
    # Each report may name up to 1,000 keys.
    found_key_reports_per_address: Window = Window(30, 3600)
    applications_per_account: Window = Window(20, 3600)
    keys_per_account: Window = Window(20, 3600)
    manifests_per_key: Window = Window(120, 600)

    def rule(self, limit: RateLimit) -> Rule:
        rule: Rule = getattr(self, limit.value)
        return rule

    def describe(self) -> str:
        """One line per rule, for `gateway config show`."""
        parts = []
        for limit in RateLimit:
            rule = self.rule(limit)
            if isinstance(rule, Window):
                parts.append(f"{limit.value} {rule.limit}/{rule.seconds}s")
            else:
                parts.append(
                    f"{limit.value} {rule.free} free, then {rule.first_delay}s doubling "
                    f"to {rule.max_delay}s, forgotten after {rule.forget}s"
                )
        return "; ".join(parts)


class RateLimitSettingError(ValueError):
    """A `[rate_limits]` entry the gateway cannot use; the message names it."""


_WINDOW_KEYS: Final = ("limit", "window_seconds")
_PACE_KEYS: Final = ("free", "first_delay_seconds", "max_delay_seconds", "forget_seconds")


def read_rate_limits(value: object, where: str) -> RateLimits:
    """`[rate_limits]` from gateway.toml over the defaults; every entry checked."""
    limits = RateLimits()
    if value is None:
        return limits
    if not isinstance(value, dict):
        raise RateLimitSettingError(f"{where}: expected a table like [rate_limits]")
    known = [f.name for f in fields(RateLimits)]
    changes: dict[str, Rule] = {}
    for name, body in value.items():
        here = f"{where}.{name}"
        if name not in known:
            raise RateLimitSettingError(
                f"{here}: unknown rate limit; known ones are {', '.join(known)}"
            )
        default = limits.rule(RateLimit(name))
        keys = _WINDOW_KEYS if isinstance(default, Window) else _PACE_KEYS
        if not isinstance(body, dict) or set(body) - set(keys):
            raise RateLimitSettingError(f"{here}: expected a table with {', '.join(keys)}")
        if isinstance(default, Window):
            changes[name] = Window(
                limit=_number(body, "limit", default.limit, here, MAX_LIMIT),
                seconds=_number(body, "window_seconds", default.seconds, here, MAX_SECONDS),
            )
        else:
            pace = Pace(
                free=_number(body, "free", default.free, here, MAX_LIMIT),
                first_delay=_number(
                    body, "first_delay_seconds", default.first_delay, here, MAX_SECONDS
                ),
                max_delay=_number(body, "max_delay_seconds", default.max_delay, here, MAX_SECONDS),
                forget=_number(body, "forget_seconds", default.forget, here, MAX_SECONDS),
            )
            if pace.max_delay < pace.first_delay:
                raise RateLimitSettingError(
                    f"{here}.max_delay_seconds: expected at least first_delay_seconds "
                    f"({pace.first_delay}), got {pace.max_delay}"
                )
            changes[name] = pace
    return replace(limits, **changes)  # type: ignore[arg-type]


def _number(body: Mapping[str, object], key: str, default: int, where: str, most: int) -> int:
    value = body.get(key, default)
    # bool is an int in Python, but `limit = true` is a mistake, not a 1.
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise RateLimitSettingError(
            f"{where}.{key}: expected a whole number from 1 to {most}, got {value!r}"
        )
    return value
