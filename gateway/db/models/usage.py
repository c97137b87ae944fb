"""Daily rollups of how releases are used, read by `gateway usage` and the console's
usage pages instead of the evidence itself."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base


class UsageDaily(Base):
    """What one account did with one file of one release on one day, by measure:
    `download` (downloads started; `bytes` their files' size), `request` (every request
    for bytes) or `refusal` (with its reason; a refused manifest has no file or tier).
    Empty text, not null, stands for "none", so the key is one unique index."""

    __tablename__ = "usage_daily"
    __table_args__ = (
        Index(
            "ux_usage_daily_key",
            "release_id",
            "day",
            "measure",
            "stage",
            "tier",
            "organisation",
            "artifact",
            "account_id",
            "reason",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    measure: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(NAME))
    tier: Mapped[str] = mapped_column(String(NAME))
    organisation: Mapped[str] = mapped_column(String(200))
    artifact: Mapped[str] = mapped_column(String(1024))
    account_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(NAME))
    count: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class UsageProgress(Base):
    """How far the rollup has read the evidence log: the next leaf to read. Leaves are
    gap-free and final once sealed, so nothing is counted twice or skipped."""

    __tablename__ = "usage_progress"

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    next_leaf: Mapped[int] = mapped_column(BigInteger)
