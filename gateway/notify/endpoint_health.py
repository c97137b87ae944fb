"""The circuit breaker of each webhook endpoint, kept in `webhook_endpoints`.

Rules:
* Every failed attempt to an endpoint adds one to its failures in a row; a delivered
  one sets them back to zero.
* From `OPEN_AFTER` failures in a row the circuit is open: the endpoint is left alone for
  `backoff(failures)` (30 s, doubling, at most 30 min), and its deliveries wait, pending,
  without using their attempts. Once that time has passed, one delivery goes through
  as a probe; its outcome closes the circuit or opens it again for longer.
* The state is in the database, so every replica and the console see the same circuit.
  Both rules are pure functions of the stored values and the time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.db.models import WebhookEndpoint
from gateway.db.uow import UnitOfWork
from gateway.notify import repository
from stages.delivery import WebhookStatus

logger = logging.getLogger("gateway.notify")

OPEN_AFTER = 3
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=30)


def backoff(failures: int) -> timedelta:
    """How long the circuit stays open after `failures` failures in a row."""
    steps = max(0, failures - OPEN_AFTER)
    return min(FIRST_BACKOFF * (1 << min(steps, 16)), MAX_BACKOFF)


@dataclass(frozen=True)
class Health:
    """What the console shows of one endpoint."""

    url: str
    failures: int = 0
    open_until: datetime | None = None
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Whether the endpoint is being left alone now."""
        return self.open_until is not None and now < self.open_until

    def is_probing(self, now: datetime) -> bool:
        """Whether only one delivery may go through now, to see if the endpoint is back."""
        return self.failures >= OPEN_AFTER and not self.is_open(now)


def _health(row: WebhookEndpoint) -> Health:
    return Health(
        url=row.url,
        failures=row.consecutive_failures,
        open_until=row.open_until,
        last_error=row.last_error,
        last_failure_at=row.last_failure_at,
        last_success_at=row.last_success_at,
    )


async def load(uow: UnitOfWork, urls: list[str]) -> dict[str, Health]:
    """The health of these endpoints (a fresh one for each endpoint without a row)."""
    rows = await repository.endpoints(uow.session, urls)
    stored = {row.url: _health(row) for row in rows}
    return {url: stored.get(url, Health(url)) for url in urls}


async def record_failure(uow: UnitOfWork, url: str, reason: str) -> Health:
    """One more failure in a row; opens the circuit from OPEN_AFTER on."""
    now = uow.rt.clock()
    row = await repository.locked_endpoint(await uow.write(), url)
    row.consecutive_failures += 1
    row.last_error = reason[:500]
    row.last_failure_at = now
    if row.consecutive_failures >= OPEN_AFTER:
        row.open_until = now + backoff(row.consecutive_failures)
    health = _health(row)
    if health.open_until is not None:
        logger.warning(
            "webhook endpoint %s failed %d times in a row (%s); left alone until %s",
            url,
            health.failures,
            reason,
            health.open_until.isoformat(),
        )
    return health


async def record_success(uow: UnitOfWork, url: str) -> None:
    """A delivered attempt closes the circuit."""
    row = await repository.locked_endpoint(await uow.write(), url)
    if row.consecutive_failures:
        logger.info("webhook endpoint %s answers again; circuit closed", url)
    row.consecutive_failures = 0
    row.open_until = None
    row.last_success_at = uow.rt.clock()


async def all_health(uow: UnitOfWork) -> list[Health]:
    """Every configured endpoint's health, in the order of the configuration."""
    urls = list(dict.fromkeys(hook.url for hook in uow.rt.settings.webhooks))
    health = await load(uow, urls)
    return [health[url] for url in urls]


@dataclass(frozen=True)
class EndpointStatus:
    """One row of the console's webhook page."""

    health: Health
    pending: int
    failed: int
    allow_private: bool

    def state(self, now: datetime) -> str:
        """`ok`, `failing` (failures in a row, still tried), `left alone` or `probing`."""
        if self.health.is_open(now):
            return "left alone"
        if self.health.is_probing(now):
            return "probing"
        return "failing" if self.health.failures else "ok"


async def console(uow: UnitOfWork) -> list[EndpointStatus]:
    """Every configured endpoint: its circuit, and its deliveries waiting and given up."""
    health = await all_health(uow)
    tally = await repository.waiting_counts(uow.session, [h.url for h in health])
    private = {hook.url: hook.allow_private for hook in uow.rt.settings.webhooks}

    def count(url: str, status: WebhookStatus) -> int:
        return tally.get((url, status.value), 0)

    return [
        EndpointStatus(
            health=h,
            pending=count(h.url, WebhookStatus.PENDING) + count(h.url, WebhookStatus.SENDING),
            failed=count(h.url, WebhookStatus.FAILED),
            allow_private=private.get(h.url, False),
        )
        for h in health
    ]
