"""The rows of each export, as the operator API and `gateway export` write them: read
through each feature's repository a batch at a time (gateway/db/batches.py), shaped
into plain records, never gathered into a list.

The unit of work is the caller's, in its read phase alone: an export changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from gateway.applications import repository as applications
from gateway.enforcement import repository as enforcement
from gateway.exports.filters import AccessFilter, EnforcementFilter
from gateway.grants import repository as grants
from policies.applications import review_clock
from stages.applications import ApplicationStatus
from stages.grants import GrantStatus

if TYPE_CHECKING:
    from gateway.db.uow import UnitOfWork
    from policies.schema import ApplicationRules

Cell: TypeAlias = str | int | bool | datetime | None
Record: TypeAlias = dict[str, Cell]

# Rows a fetch: large enough that round trips do not dominate, small enough to stay cheap.
EXPORT_BATCH: Final = 500
_AWAITING = frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_REVIEW})
_DECIDED = frozenset({ApplicationStatus.APPROVED, ApplicationStatus.DENIED})


@dataclass(frozen=True)
class Export:
    """One export: its kind, its columns in order, and its records as they are read."""

    kind: str
    columns: tuple[str, ...]
    records: AsyncIterator[Record]


APPLICATION_COLUMNS: Final = (
    "id",
    "applicant",
    "model",
    "tier",
    "status",
    "submitted_at",
    "review_started_at",
    "decided_at",
    "decided_by",
    "decision_reason",
    "seconds_to_review",
    "seconds_to_decision",
    "review_due_at",
    "overdue",
)
GRANT_COLUMNS: Final = (
    "id",
    "account",
    "organisation",
    "model",
    "tier",
    "status",
    "created_at",
    "starts_at",
    "expires_at",
    "suspended_at",
    "revoked_at",
    "status_reason",
)
ENFORCEMENT_COLUMNS: Final = (
    "id",
    "account",
    "action",
    "reason",
    "actor",
    "at",
    "until",
    "lifted_at",
    "appeal_until",
    "appeal_status",
)


def _batch(batch: int | None) -> int:
    # Read when called, so a test may make batches small to cross their edges.
    return EXPORT_BATCH if batch is None else batch


def _seconds(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else int((end - start).total_seconds())


def _overdue(
    rules: ApplicationRules, status: ApplicationStatus, row: Any, now: datetime
) -> bool | None:
    """Whether the review ran past its deadline: the decision came after it, or the
    application still waits and the deadline has passed. None for one that left the
    queue without a decision (withdrawn, expired, changes requested)."""
    if status in _AWAITING:
        end = now
    elif status in _DECIDED and row.decided_at is not None:
        end = row.decided_at
    else:
        return None
    return review_clock(rules, row.submitted_at, end).overdue


async def _application_records(
    uow: UnitOfWork, where: AccessFilter[ApplicationStatus], batch: int
) -> AsyncIterator[Record]:
    now = uow.rt.clock()
    policy = uow.rt.policy.applications
    rows = applications.export_rows(
        uow.session, where.status, where.model, where.tier, where.window, batch=batch
    )
    async for row in rows:
        status = ApplicationStatus(row.status)
        # A tier the policy no longer has has no deadline to measure against.
        rules = policy.get(row.tier)
        clock = None if rules is None else review_clock(rules, row.submitted_at, now)
        yield {
            "id": row.id,
            "applicant": row.email,
            "model": f"{row.org}/{row.name}",
            "tier": row.tier,
            "status": status.value,
            "submitted_at": row.submitted_at,
            "review_started_at": row.review_started_at,
            "decided_at": row.decided_at,
            "decided_by": row.decided_by,
            "decision_reason": row.decision_reason,
            "seconds_to_review": _seconds(row.submitted_at, row.review_started_at),
            "seconds_to_decision": _seconds(row.submitted_at, row.decided_at),
            "review_due_at": None if clock is None else clock.due_at,
            "overdue": None if rules is None else _overdue(rules, status, row, now),
        }


def application_export(
    uow: UnitOfWork, where: AccessFilter[ApplicationStatus], *, batch: int | None = None
) -> Export:
    """Every application that matches, oldest submission first, with its review times:
    seconds from submission to the start of review and to the decision, the deadline,
    and whether the review ran past it."""
    return Export(
        "applications", APPLICATION_COLUMNS, _application_records(uow, where, _batch(batch))
    )


async def _grant_records(
    uow: UnitOfWork, where: AccessFilter[GrantStatus], batch: int
) -> AsyncIterator[Record]:
    rows = grants.export_rows(
        uow.session, where.status, where.model, where.tier, where.window, batch=batch
    )
    async for row in rows:
        status = GrantStatus(row.status)
        yield {
            "id": row.id,
            "account": row.email,
            "organisation": row.affiliation,
            "model": f"{row.org}/{row.name}",
            "tier": row.tier,
            "status": status.value,
            "created_at": row.created_at,
            "starts_at": row.starts_at,
            "expires_at": row.expires_at,
            "suspended_at": row.status_changed_at if status is GrantStatus.SUSPENDED else None,
            "revoked_at": row.status_changed_at if status is GrantStatus.REVOKED else None,
            "status_reason": row.status_reason,
        }


def grant_export(
    uow: UnitOfWork, where: AccessFilter[GrantStatus], *, batch: int | None = None
) -> Export:
    """Every grant that matches, oldest first, with its account, window and standing."""
    return Export("grants", GRANT_COLUMNS, _grant_records(uow, where, _batch(batch)))


async def _enforcement_records(
    uow: UnitOfWork, where: EnforcementFilter, batch: int
) -> AsyncIterator[Record]:
    rows = enforcement.export_rows(uow.session, where.action, where.window, batch=batch)
    async for row in rows:
        yield {
            "id": row.id,
            "account": row.email,
            "action": row.action,
            "reason": row.reason,
            "actor": row.created_by,
            "at": row.created_at,
            "until": row.ends_at,
            "lifted_at": row.ended_at,
            "appeal_until": row.appeal_until,
            "appeal_status": None if row.appeal_status is None else str(row.appeal_status),
        }


def enforcement_export(
    uow: UnitOfWork, where: EnforcementFilter, *, batch: int | None = None
) -> Export:
    """Every enforcement action that matches, oldest first, with its appeal's status."""
    return Export(
        "enforcement", ENFORCEMENT_COLUMNS, _enforcement_records(uow, where, _batch(batch))
    )
