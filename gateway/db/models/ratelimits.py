"""The counters behind the rate limits."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base


class RateLimitCounter(Base):
    """Attempts of one rule by one subject in one window, counted by one atomic upsert.

    Times are epoch milliseconds, so that one statement can compare and add them the same
    way on SQLite and PostgreSQL. The subject is a SHA-256 digest: no address or email is
    kept here in clear.
    """

    __tablename__ = "rate_limits"
    __table_args__ = (Index("ix_rate_limits_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(Integer)
    # A pace's next allowed attempt; 0 for windows.
    not_before: Mapped[int] = mapped_column(BigInteger)
    # When the window is over and the row can be swept.
    expires_at: Mapped[int] = mapped_column(BigInteger)
