"""Counting and timing every routed request: one middleware, a counter and a histogram by
route template and status class; and, at most once a second, the process's pool use, so
that under several workers each worker's gauges stay current, not only the scraped one's.

Requests that match no route (the router's own 404 and 405) never reach a route's
middleware and are not counted: their paths are not a template anyone wrote.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import GatewayError
from gateway.metrics import registry
from gateway.metrics.service import note_pool
from gateway.runtime import Runtime

_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
# The labelled series of each route and status class, looked up once: a dict lookup costs
# a fraction of prometheus_client's `labels()`. Bounded by the routes times five classes.
_SERIES: dict[tuple[str, str], tuple[Any, Any]] = {}
# Reading the pool takes its lock: once a second is fresh enough for a gauge.
POOL_EVERY_SECONDS = 1.0
_pool_noted_at = [float("-inf")]


def _series(route: str, answered: str) -> tuple[Any, Any]:
    found = _SERIES.get((route, answered))
    if found is None:
        found = _SERIES[route, answered] = (
            registry.REQUESTS.labels(route, answered),
            registry.REQUEST_SECONDS.labels(route, answered),
        )
    return found


class RequestMetrics(ASGIMiddleware):
    """Outermost of the app's middleware, so a request refused by another still counts."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = perf_counter()
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, sending)
        except Exception as exc:
            # Raised by a middleware: the app's handler answers it, after this one.
            if status is None:
                status = _status_of(exc)
            raise
        finally:
            runtime: Runtime = scope["app"].state.runtime
            observe(runtime, scope.get("path_template", ""), status, started)


def observe(runtime: Runtime, route: str, status: int | None, started: float) -> None:
    """Count one answer of `route` (a template) begun at `started` (perf_counter); None
    for no answer sent (counted as a 5xx)."""
    ended = perf_counter()
    answered = _CLASSES.get((status or 500) // 100, "5xx")
    count, seconds = _series(route, answered)
    count.inc()
    seconds.observe(ended - started)
    if ended - _pool_noted_at[0] >= POOL_EVERY_SECONDS:
        _pool_noted_at[0] = ended
        note_pool(runtime)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, GatewayError):
        return exc.status
    return 500
