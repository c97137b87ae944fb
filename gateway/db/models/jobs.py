"""When each scheduled job last ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base


class JobRun(Base):
    """When each scheduled job last ran, so /readyz can tell a stalled scheduler."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(default=0)
