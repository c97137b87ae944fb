"""GET /metrics: the gateway's metrics in Prometheus's text format, for its scraper.

Not in the API reference, carries no session and no rate limit, as /healthz; only
loopback and private addresses, or the metrics token, may read it (access.py).
"""

from __future__ import annotations

from litestar import Response, get

from gateway.metrics.access import metrics_access
from gateway.metrics.service import scrape
from gateway.web import Uow

# The classic text format, which every Prometheus reads; our names need none of the
# newer format's escaping. Litestar adds the charset.
_TEXT_FORMAT = "text/plain; version=0.0.4"


@get("/metrics", guards=[metrics_access], include_in_schema=False, cache=False)
async def metrics(uow: Uow) -> Response[bytes]:
    return Response(
        await scrape(uow),
        media_type=_TEXT_FORMAT,
        headers={"cache-control": "no-store"},
    )
