"""How a 429 is documented in the OpenAPI schema: the error body, and Retry-After."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec


@dataclass(frozen=True)
class RateLimitedOut:
    """The body of every 429; the `Retry-After` header says how many seconds to wait."""

    error: str
    message: str
    status: int


def rate_limited_response(description: str) -> ResponseSpec:
    return ResponseSpec(RateLimitedOut, description=f"{description}; see Retry-After (seconds)")
