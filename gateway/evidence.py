"""The one place that writes evidence. Callers pass their open session, so the evidence
row commits or rolls back together with the change it records.

`record(session, payload, actor=Actor, ...)` takes a payload value from `stages.evidence`;
the payload's type names the kind."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Evidence
from stages.evidence import Actor, EvidenceKind, Payload, kind_of_stored, stored_names


def record(
    session: AsyncSession,
    payload: Payload,
    *,
    actor: Actor,
    at: datetime,
    model_id: int | None = None,
    release_id: int | None = None,
    account_id: str | None = None,
) -> Evidence:
    """Add an evidence row of the payload's kind to the session's transaction."""
    row = Evidence(
        kind=payload.KIND.value,
        actor=str(actor),
        at=at,
        model_id=model_id,
        release_id=release_id,
        account_id=account_id,
        data=payload.data(),
    )
    session.add(row)
    return row


def kind_of(row: Evidence) -> EvidenceKind | None:
    """The kind of a stored row, whichever version wrote it (None: a name never used)."""
    return kind_of_stored(row.kind)


def actor_of(row: Evidence) -> Actor:
    """Who a stored row says acted."""
    return Actor.parse(row.actor)


def of_kind(*kinds: EvidenceKind) -> ColumnElement[bool]:
    """A filter on `Evidence.kind` matching rows of `kinds` under old names and new."""
    names: Collection[str] = sorted(set().union(*(stored_names(k) for k in kinds)))
    return Evidence.kind.in_(names)
