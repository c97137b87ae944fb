"""Webhooks: POST each event, signed, to the endpoints in `[[webhooks]]`.

What a receiver gets
--------------------
`POST <url>` with the event as a JSON object (UTF-8) and these headers:

* `Content-Type: application/json`
* `X-Gateway-Event`: the event name, e.g. `application.decided`
* `X-Gateway-Delivery`: the delivery id, a UUID. A retry of the same delivery carries
  the same id, so a receiver can drop one it has already handled.
* `X-Gateway-Timestamp`: when this attempt was signed, in Unix seconds
* `X-Gateway-Signature`: `sha256=<hex>`, the HMAC-SHA256 keyed with the endpoint's
  `secret` (its UTF-8 bytes) over the bytes `<timestamp>.<body>`: the timestamp header
  as sent, a full stop, and the request body exactly as received.

How to verify
-------------
Recompute the HMAC over the raw body (not a re-encoded JSON), compare it in constant
time, and refuse a timestamp more than five minutes from your own clock: the timestamp
is signed too, so an old request captured on the way cannot be replayed later.
`verify_signature` does exactly this and can be copied into a receiver.

Answers and retries
-------------------
Any 2xx answer within 10 seconds means delivered. Anything else (another status,
including redirects, which are not followed; a network error; a timeout) is retried
after 30 s, 2 min, 10 min, 1 h and 6 h; the sixth failed attempt is final.

Each endpoint has its own queue, delivered in order and side by side with the others
(at most 8 endpoints at once), so a receiver that hangs delays only its own events: a
failed attempt ends its endpoint's turn in that run, and after 3 failures in a row the
endpoint is left alone for a while (`endpoint_health.py`), as the console shows.

Where they may go
-----------------
Public addresses only, checked after DNS resolution (`addresses.py`), unless the
endpoint sets `allow_private = true`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx2

from gateway.notify.addresses import Target

# After the 1st to 5th failed attempt; the 6th failure is final.
WEBHOOK_RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
TIMEOUT_SECONDS = 10.0
SIGNATURE_TOLERANCE_SECONDS = 300
_SCHEME = "sha256="
_MAX_REASON = 500


class WebhookError(Exception):
    """An attempt that did not end in a 2xx answer; `reason` is short enough to store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:_MAX_REASON]


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON with sorted keys, UTF-8."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Gateway-Signature` value for this timestamp and body."""
    signed = f"{timestamp}.".encode() + body
    return _SCHEME + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes,
    header: str,
    now: datetime | float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `timestamp` and `body` with `secret`, and the timestamp is
    within `tolerance` seconds of `now` (a datetime or Unix seconds) either way."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - sent_at) > tolerance:
        return False
    if not header.startswith(_SCHEME):
        return False
    # Constant-time comparison, so response timing does not leak the right signature.
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), header.strip().encode())


def signed_headers(
    *, secret: str, event: str, delivery_id: str, body: bytes, at: datetime
) -> dict[str, str]:
    """The headers of one attempt, signed at `at`."""
    timestamp = str(int(at.timestamp()))
    return {
        "Content-Type": "application/json",
        "X-Gateway-Event": event,
        "X-Gateway-Delivery": delivery_id,
        "X-Gateway-Timestamp": timestamp,
        "X-Gateway-Signature": sign(secret, timestamp, body),
    }


def webhook_client() -> httpx2.AsyncClient:
    """A client for one delivery run: 10 s timeouts, redirects not followed."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        headers={"User-Agent": "release-gateway-webhooks/1"},
    )


async def post_event(
    client: httpx2.AsyncClient, target: Target, *, headers: Mapping[str, str], body: bytes
) -> None:
    """POST one attempt; returns on a 2xx answer and raises `WebhookError` otherwise."""
    sent = dict(headers)
    extensions: dict[str, Any] = {}
    if target.host_header:
        sent["Host"] = target.host_header
    if target.sni_hostname:
        extensions["sni_hostname"] = target.sni_hostname
    try:
        # The per-phase timeouts above do not bound a server that trickles its answer.
        async with asyncio.timeout(TIMEOUT_SECONDS):
            # Streamed and closed unread: only the status matters, whatever the size.
            async with client.stream(
                "POST", target.url, headers=sent, content=body, extensions=extensions
            ) as answer:
                status, phrase = answer.status_code, answer.reason_phrase
    except TimeoutError as exc:
        raise WebhookError(f"no answer within {TIMEOUT_SECONDS:g} s") from exc
    except httpx2.TimeoutException as exc:
        raise WebhookError(f"no answer within {TIMEOUT_SECONDS:g} s") from exc
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status} {phrase}".rstrip())
