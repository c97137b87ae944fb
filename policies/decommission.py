# The clock of a decommission: reminders before the date, retention after it.
#
# Rules:
# - Pure: the clock and every fact come in as arguments; datetimes are aware, in UTC.
# - A decommission is announced at `announce_at` and takes effect at `effective_at`,
#   which must be later: ending hosting at once is a recall, not a decommission.
# - The announcement is the first notice. A reminder that would fall at or before it is
#   not sent; one that falls after it is due from its very moment until the date.
# - The stored files may be purged from `retention_days` after the date, inclusive.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.schema import DecommissionRules


def _check_order(announce_at: datetime, effective_at: datetime) -> None:
    if effective_at <= announce_at:
        raise ValueError(
            f"a decommission takes effect after it is announced: effective "
            f"{effective_at.isoformat()} is not after {announce_at.isoformat()}"
        )


def _reminders(
    rules: DecommissionRules, announce_at: datetime, effective_at: datetime
) -> list[tuple[int, datetime]]:
    return [
        (days, effective_at - timedelta(days=days))
        for days in rules.reminder_days
        if effective_at - timedelta(days=days) > announce_at
    ]


def decommission_schedule(
    rules: DecommissionRules, announce_at: datetime, effective_at: datetime
) -> tuple[datetime, ...]:
    """When the reminders of a decommission fall, earliest first."""
    _check_order(announce_at, effective_at)
    return tuple(sorted(at for _, at in _reminders(rules, announce_at, effective_at)))


def reminders_due(
    rules: DecommissionRules,
    announce_at: datetime,
    effective_at: datetime,
    now: datetime,
    already_sent: frozenset[int],
) -> tuple[int, ...]:
    """The reminders (in days before `effective_at`) due now and not yet sent.

    Nearest first. As with expiry warnings, when several are due at once the caller sends
    ONE message saying how long is actually left, and records every returned reminder as
    sent. Nothing is due once the decommission has taken effect.
    """
    _check_order(announce_at, effective_at)
    if now >= effective_at:
        return ()
    due = (
        days
        for days, at in _reminders(rules, announce_at, effective_at)
        if days not in already_sent and now >= at
    )
    return tuple(sorted(due))


@dataclass(frozen=True)
class RetentionClock:
    """When a decommissioned release's stored files may be purged, and whether now."""

    purge_at: datetime
    purgeable: bool


def retention_clock(
    rules: DecommissionRules, effective_at: datetime, now: datetime
) -> RetentionClock:
    """The retention of a release decommissioned at `effective_at`."""
    purge_at = effective_at + timedelta(days=rules.retention_days)
    return RetentionClock(purge_at=purge_at, purgeable=now >= purge_at)
