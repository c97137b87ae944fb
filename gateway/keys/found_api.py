"""Report found API keys over HTTP, without signing in: every active one is revoked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from gateway.api_reference import COMMON, answers
from gateway.keys.found import MAX_KEYS, report_found_keys
from gateway.web import Limiter, Uow
from gateway.web.pages import client_address


@dataclass
class FoundKeysIn:
    """`keys`: up to 1,000 strings that look like keys (rgk_...); `found_at`: where they
    were seen (a URL), told to each key's owner."""

    keys: list[str]
    found_at: str | None = None


@dataclass(frozen=True)
class FoundKeysOut:
    received: int
    revoked: int


class FoundKeysController(Controller):
    tags = ["keys"]

    @post(
        "/api/v1/credentials/revoke",
        summary=f"Report found API keys (no sign-in): up to {MAX_KEYS} a report, each "
        "active one revoked at once and its owner told",
        status_code=200,
        responses=answers(*COMMON, 429),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        limiter: Limiter,
        data: JSONBody[FoundKeysIn],
    ) -> FoundKeysOut:
        done = await report_found_keys(
            uow,
            data.keys,
            found_at=data.found_at,
            address=client_address(request),
            limiter=limiter,
        )
        return FoundKeysOut(received=done.received, revoked=done.revoked)
