"""What a scrape answers: the metric objects' values (this process's, or every worker's
from the shared folder), plus what is read at the moment of the scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.pool import QueuePool

from gateway.db.uow import UnitOfWork
from gateway.evidence_log.service import sealing_lag
from gateway.metrics import registry
from gateway.metrics.processes import shared_folder
from gateway.runtime import Runtime


def note_pool(runtime: Runtime) -> None:
    """Set this process's pool gauges from its engine's pool, as it is now."""
    pool = runtime.engine.pool
    if isinstance(pool, QueuePool):  # the others (NullPool, StaticPool) keep no count
        registry.POOL_CHECKED_OUT.set(pool.checkedout())
        registry.POOL_SIZE.set(pool.size())


class _AtScrape:
    def __init__(self, lag_seconds: float) -> None:
        self.lag_seconds = lag_seconds

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            registry.SEALING_LAG,
            "Seconds since the oldest evidence row still waiting to be sealed was written "
            "(0 when none waits).",
            value=self.lag_seconds,
        )


async def scrape(uow: UnitOfWork) -> bytes:
    """The metrics in Prometheus's text format."""
    lag = await sealing_lag(uow)
    note_pool(uow.rt)
    at_scrape = CollectorRegistry()
    at_scrape.register(_AtScrape(lag.total_seconds()))
    folder = shared_folder()
    if folder is None:
        return generate_latest(REGISTRY) + generate_latest(at_scrape)
    # A registry of its own per scrape, as the client's multiprocess mode requires; the
    # scrape-time gauge is this process's reading, not a file's, so it is never summed.
    every_worker = CollectorRegistry()
    MultiProcessCollector(every_worker, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(every_worker) + generate_latest(at_scrape)
