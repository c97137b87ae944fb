"""The one place that writes evidence. Callers pass their open session, so the evidence
row commits or rolls back together with the change it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Evidence


def record(
    session: AsyncSession,
    kind: str,
    *,
    actor: str,
    at: datetime,
    model_id: int | None = None,
    release_id: int | None = None,
    account_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Evidence:
    """Add an evidence row to the session's transaction."""
    row = Evidence(
        kind=kind,
        actor=actor,
        at=at,
        model_id=model_id,
        release_id=release_id,
        account_id=account_id,
        data=data or {},
    )
    session.add(row)
    return row
