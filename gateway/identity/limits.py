"""Fixed-window rate limits kept in a Litestar store (shared by every worker process)."""

from __future__ import annotations

import hashlib

from litestar.stores.base import Store

from gateway.errors import GatewayError


class RateLimited(GatewayError):
    status = 429
    exit_code = 7

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def hit(self, scope: str, who: str, *, limit: int, window_seconds: int) -> None:
        """Count one attempt; RateLimited once `limit` attempts fell in the window."""
        key = f"{scope}:{hashlib.sha256(who.lower().encode()).hexdigest()[:32]}"
        raw = await self.store.get(key)
        count = int(raw or b"0") + 1
        if count > limit:
            left = await self.store.expires_in(key) or window_seconds
            raise RateLimited(
                f"too many attempts; try again in {max(1, left // 60)} minute(s)", retry_after=left
            )
        # The window starts with the first attempt and is not extended by later ones.
        ttl = (
            window_seconds if raw is None else (await self.store.expires_in(key) or window_seconds)
        )
        await self.store.set(key, str(count).encode(), expires_in=ttl)

    async def clear(self, scope: str, who: str) -> None:
        await self.store.delete(f"{scope}:{hashlib.sha256(who.lower().encode()).hexdigest()[:32]}")
