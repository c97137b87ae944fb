"""Accounts and how they sign in: one-time links, OIDC identities, portal sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base
from gateway.db.types import status_type
from stages.enforcement import AccountStatus


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_operator: Mapped[bool] = mapped_column(default=False)
    # A service account (an inference service): it holds `verify` keys only, never signs
    # in, applies or downloads.
    is_service: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[AccountStatus] = mapped_column(
        status_type(AccountStatus, table="accounts", column="status", length=16),
        default=AccountStatus.ACTIVE,
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    email_verified_at: Mapped[datetime | None]
    affiliation: Mapped[str] = mapped_column(String(200), default="")
    # Set when the account is suspended or terminated; the portal shows it to the account.
    status_reason: Mapped[str | None] = mapped_column(Text)


class AccountToken(Base):
    """A one-time link: email verification, password reset, first-operator setup."""

    __tablename__ = "account_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OidcIdentity(Base):
    """An account's identity at an OIDC provider (issuer + subject)."""

    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(NAME))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    linked_at: Mapped[datetime]


class WebSession(Base):
    """A portal session. Only the SHA-256 of its id is kept: the cookie alone opens it."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Set once signed in, so that every session of an account can be ended at once.
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
