"""Every query of publishing: the model and license rows a new release points at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.catalog.repository import find_model
from gateway.db.models import License, Model
from stages.names import ModelRef


async def model_to_publish(session: AsyncSession, ref: ModelRef, now: datetime) -> Model:
    """The model `ref`, added (and flushed, so it has an id) if this is its first release."""
    model = await find_model(session, ref)
    if model is None:
        model = Model(org=ref.org, name=ref.name, created_at=now)
        session.add(model)
        await session.flush()
    return model


async def license_of(session: AsyncSession, sha256: str, text: str, now: datetime) -> License:
    """The license row with this text, added once: releases under the same text share it."""
    row = await session.scalar(select(License).where(License.sha256 == sha256))
    if row is None:
        row = License(sha256=sha256, text=text, created_at=now)
        session.add(row)
        await session.flush()
    return row
