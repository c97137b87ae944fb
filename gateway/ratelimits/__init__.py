"""Rate limits shared by every process and replica: rules from the settings, counts in
the database, one atomic statement per attempt."""

from __future__ import annotations

from gateway.ratelimits.limiter import RateLimited, RateLimiter, Ticket
from gateway.ratelimits.rules import Pace, RateLimit, RateLimits, Window
from gateway.ratelimits.store import DatabaseRateLimitStore, RateLimitStore

__all__ = [
    "DatabaseRateLimitStore",
    "Pace",
    "RateLimit",
    "RateLimitStore",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "Ticket",
    "Window",
]
