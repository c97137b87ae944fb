"""Rows for the export tests: grants planted in bulk, and exports parsed back."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.db.models import Grant, Model
from gateway.runtime import Runtime
from stages.grants import GrantStatus
from tests.accounts import create_account
from tests.units import writing


async def plant_grants(
    rt: Runtime, email: str, count: int, start: datetime, *, model: str = "acme/sample"
) -> list[str]:
    """`count` active grants of one account, created two at a time (so times tie): ids."""
    account = await create_account(rt, email, operator=False, actor="test")
    org, name = model.split("/")
    ids = []
    async with writing(rt) as session:
        model_id = await session.scalar(
            select(Model.id).where(Model.org == org, Model.name == name)
        )
        assert model_id is not None
        for i in range(count):
            at = start + timedelta(minutes=i // 2)
            grant = Grant(
                id=str(uuid.uuid4()),
                account_id=account.id,
                model_id=model_id,
                tier="trusted_partner",
                status=GrantStatus.ACTIVE,
                starts_at=at,
                expires_at=at + timedelta(days=90),
                download_quota=10,
                quota_period_days=30,
                created_at=at,
                created_by="test",
                status_changed_at=at,
            )
            session.add(grant)
            ids.append(grant.id)
    return ids


def csv_rows(data: bytes) -> list[dict[str, str]]:
    """A CSV export parsed back, one dict a row."""
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def jsonl_rows(data: bytes) -> list[dict[str, Any]]:
    """A JSON Lines export parsed back, one dict a line."""
    return [json.loads(line) for line in data.decode().splitlines()]
