# The end of a grant: warnings before it expires, the renewal window, and the deadline
# for attesting deletion afterwards.
#
# Rules:
# - Pure: the clock and every fact come in as arguments; datetimes are aware, in UTC.
# - A grant's window is [starts_at, expires_at), as in stages.grants: at `expires_at`
#   it has ended, so no warning is due and renewal is closed.
# - The moments here are inclusive: a warning is due, and renewal opens, at the very
#   moment it falls; the closeout deadline may be met up to and including its moment.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.schema import LifecycleRules


def expiry_warnings_due(
    rules: LifecycleRules, expires_at: datetime, now: datetime, already_sent: frozenset[int]
) -> tuple[int, ...]:
    """The expiry warnings (in days before `expires_at`) that are due now and not yet sent.

    Nearest first. When several are due at once (the scheduler was down, or a grant was
    issued shorter than a warning) the caller sends ONE message, saying how long is
    actually left, and records every returned warning as sent: a grantee is never told
    "30 days left" after being told "7 days left".
    """
    if now >= expires_at:
        return ()
    due = (
        days
        for days in rules.expiry_warning_days
        if days not in already_sent and now >= expires_at - timedelta(days=days)
    )
    return tuple(sorted(due))


@dataclass(frozen=True)
class RenewalWindow:
    """When a grantee may ask to renew: from `opens_at` until the grant ends at `closes_at`."""

    opens_at: datetime
    closes_at: datetime
    open: bool


def renewal_open(rules: LifecycleRules, expires_at: datetime, now: datetime) -> RenewalWindow:
    """The renewal window of a grant ending at `expires_at`, and whether `now` is in it."""
    opens_at = expires_at - timedelta(days=rules.renewal_opens_days)
    return RenewalWindow(opens_at=opens_at, closes_at=expires_at, open=opens_at <= now < expires_at)


@dataclass(frozen=True)
class CloseoutClock:
    """The deadline for a former grantee to attest that their copies are deleted."""

    due_at: datetime
    overdue: bool


def closeout_clock(rules: LifecycleRules, ended_at: datetime, now: datetime) -> CloseoutClock:
    """The attestation deadline of a grant that ended (expired or revoked) at `ended_at`."""
    due_at = ended_at + timedelta(days=rules.closeout_days)
    return CloseoutClock(due_at=due_at, overdue=now > due_at)
