"""When to try again, and how long to wait: shared by API calls and file transfers.

A transient failure (a dropped connection, a timeout, a 5xx or 429 answer) is retried a
few times with exponential backoff; a refusal with a reason (403, 404, 410...) is not,
because asking again gets the same answer.
"""

from __future__ import annotations

import httpx2

# Seconds to wait before each retry; the length is the number of retries. About 15 s
# in all: enough to ride out a gateway restart, short enough not to look hung.
DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (httpx2.TransportError,)


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def describe(exc: Exception) -> str:
    """A short, human description of a network error (httpx's messages can be empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
