"""The one place that writes evidence.

`record(session, payload, actor=Actor, ...)` takes a payload value from `stages.evidence`
(the payload's type names the kind) and adds the row to the caller's write phase, so it
commits or rolls back together with the change it records. `append(uow, ...)` is for
evidence that stands alone (of a read, of a refusal): it ends the unit's read phase and
writes the rows by group commit (gateway/db/group_commit.py), returning once they are on
disk."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Evidence
from stages.evidence import Actor, EvidenceKind, Payload, kind_of_stored, stored_names

if TYPE_CHECKING:
    from gateway.db.uow import UnitOfWork


def values(
    payload: Payload,
    *,
    actor: Actor,
    at: datetime,
    model_id: int | None = None,
    release_id: int | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """The column values of the evidence row of `payload`."""
    return {
        "kind": payload.KIND.value,
        "actor": str(actor),
        "at": at,
        "model_id": model_id,
        "release_id": release_id,
        "account_id": account_id,
        "data": payload.data(),
    }


async def append(
    uow: UnitOfWork,
    payloads: Sequence[Payload],
    *,
    actor: Actor,
    at: datetime,
    model_id: int | None = None,
    release_id: int | None = None,
    account_id: str | None = None,
) -> None:
    """Write evidence that stands alone, by group commit: the unit's read phase ends here
    (its connection goes back before the wait). A unit already writing (it made the first
    URL-signing key, say) keeps the rows in its own write phase instead."""
    rows = [
        values(
            payload,
            actor=actor,
            at=at,
            model_id=model_id,
            release_id=release_id,
            account_id=account_id,
        )
        for payload in payloads
    ]
    if uow.writing:
        uow.session.add_all(Evidence(**row) for row in rows)
        return
    await uow.end_read()
    await uow.rt.group_commit.append(rows)


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
        **values(
            payload,
            actor=actor,
            at=at,
            model_id=model_id,
            release_id=release_id,
            account_id=account_id,
        )
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
