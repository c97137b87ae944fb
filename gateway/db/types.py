"""Column types shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Enum
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite forgets the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _values(states: type[StrEnum]) -> list[str]:
    return [state.value for state in states]


def status_type(states: type[StrEnum], *, table: str, column: str, length: int) -> Enum:
    """A column of a `stages/` status: stored as its text value, read back as the enum,
    an unknown value refused by SQLAlchemy before it is sent and by the database's CHECK
    constraint `ck_<table>_<column>` if it is written another way."""
    return Enum(
        states,
        name=f"ck_{table}_{column}",
        length=length,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        values_callable=_values,
    )
