"""The mapped tables. Evidence is append-only: the migration adds triggers that refuse
UPDATE and DELETE on it, so not even a bug in the shell can rewrite history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gateway.db.types import UTCDateTime, status_type
from stages.applications import ApplicationStatus
from stages.delivery import EmailStatus, WebhookStatus
from stages.enforcement import AccountStatus, AppealStatus
from stages.grants import GrantStatus
from stages.incidents import IncidentStatus
from stages.release import Status

# Identifiers of at most 64 characters keep indexes small on both backends.
NAME = 64


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_operator: Mapped[bool] = mapped_column(default=False)
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


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("org", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org: Mapped[str] = mapped_column(String(NAME))
    name: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]

    releases: Mapped[list[Release]] = relationship(
        back_populates="model", order_by="Release.published_at", lazy="raise"
    )

    @property
    def ref(self) -> str:
        return f"{self.org}/{self.name}"


class License(Base):
    __tablename__ = "licenses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    version: Mapped[str] = mapped_column(String(NAME))
    stage: Mapped[str] = mapped_column(String(NAME), default="draft")
    status: Mapped[Status] = mapped_column(
        status_type(Status, table="releases", column="status", length=16), default=Status.ACTIVE
    )
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="RESTRICT"))
    guidance: Mapped[str | None] = mapped_column(Text)
    # The OpenSSF model_signing bundle exactly as written, and the digest it signs over.
    signature_bundle: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signing_key_id: Mapped[str] = mapped_column(String(64))
    total_size: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(320))
    stage_changed_at: Mapped[datetime]

    model: Mapped[Model] = relationship(back_populates="releases", lazy="raise")
    license: Mapped[License] = relationship(lazy="raise")
    components: Mapped[list[Component]] = relationship(
        back_populates="release", order_by="Component.name", lazy="raise"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="release", order_by="Artifact.path", lazy="raise"
    )


class Component(Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("release_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME))
    artifact_count: Mapped[int]
    total_size: Mapped[int] = mapped_column(BigInteger)

    release: Mapped[Release] = relationship(back_populates="components", lazy="raise")


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("release_id", "path"),
        Index("ix_artifacts_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    release: Mapped[Release] = relationship(back_populates="artifacts", lazy="raise")
    component: Mapped[Component] = relationship(lazy="raise")


class StageChange(Base):
    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    move: Mapped[str] = mapped_column(String(16))
    from_stage: Mapped[str] = mapped_column(String(NAME))
    to_stage: Mapped[str] = mapped_column(String(NAME))
    from_status: Mapped[Status] = mapped_column(
        status_type(Status, table="stage_changes", column="from_status", length=16)
    )
    to_status: Mapped[Status] = mapped_column(
        status_type(Status, table="stage_changes", column="to_status", length=16)
    )
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime]


class Evidence(Base):
    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_release_kind", "release_id", "kind"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(NAME))
    actor: Mapped[str] = mapped_column(String(320))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    data: Mapped[dict[str, Any]]


class Grant(Base):
    """Access to one model's releases at one tier, for a window of time."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_account_model", "account_id", "model_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    tier: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[GrantStatus] = mapped_column(
        status_type(GrantStatus, table="grants", column="status", length=16),
        default=GrantStatus.ACTIVE,
    )
    starts_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    download_quota: Mapped[int]
    quota_period_days: Mapped[int]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime]

    account: Mapped[Account] = relationship(lazy="raise")
    model: Mapped[Model] = relationship(lazy="raise")


class ApiKey(Base):
    """An API key: only its SHA-256 is kept; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    display_prefix: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated, sorted
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(lazy="raise")


class UrlSigningKey(Base):
    """Ed25519 keys that sign download tokens. Retired keys verify until `verify_until`.

    The private key is sealed with the key-encryption key (gateway/credentials/
    key_encryption.py); a row from before sealing holds PEM until the next start."""

    __tablename__ = "url_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    verify_until: Mapped[datetime | None]


class Download(Base):
    """One download of one artifact under one grant: it uses one unit of the quota,
    however many requests (retries, resumes, refreshed URLs) it takes."""

    __tablename__ = "downloads"
    __table_args__ = (Index("ix_downloads_grant_artifact", "grant_id", "artifact_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="RESTRICT"))
    period: Mapped[int]
    started_at: Mapped[datetime]


class QuotaUsage(Base):
    """Units used per grant, artifact and quota period; incremented with a guarded UPDATE."""

    __tablename__ = "quota_usage"

    grant_id: Mapped[str] = mapped_column(
        ForeignKey("grants.id", ondelete="RESTRICT"), primary_key=True
    )
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="RESTRICT"), primary_key=True
    )
    period: Mapped[int] = mapped_column(primary_key=True)
    used: Mapped[int] = mapped_column(default=0)


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


class Notification(Base):
    """An account's inbox entry; also the outbox for email (delivered by a job)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(NAME))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    # Email delivery: pending -> sending -> sent | failed (after retries) | skipped (no SMTP);
    # while sending, email_next_attempt_at is the claim's lease.
    email_status: Mapped[EmailStatus] = mapped_column(
        status_type(EmailStatus, table="notifications", column="email_status", length=16),
        default=EmailStatus.PENDING,
        index=True,
    )
    email_attempts: Mapped[int] = mapped_column(default=0)
    email_next_attempt_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(Text)
    # A message that carries a secret (a one-time link): it exists only to be mailed, and
    # is never shown in the inbox nor sent to a webhook.
    mail_only: Mapped[bool] = mapped_column(default=False, server_default=false())


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


class WebhookDelivery(Base):
    """One event to one webhook endpoint, retried with backoff until it is accepted."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(1000))
    event: Mapped[str] = mapped_column(String(NAME))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    # pending -> sending -> delivered | failed
    status: Mapped[WebhookStatus] = mapped_column(
        status_type(WebhookStatus, table="webhook_deliveries", column="status", length=16),
        default=WebhookStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    """The circuit breaker of one webhook endpoint: failures in a row, and until when the
    endpoint is left alone after them (no row: it has never failed)."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    open_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_failure_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]


class Application(Base):
    """An account asks for a tier of a model: answers, license acceptance, decision."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_account_model_tier", "account_id", "model_id", "tier"),
        Index("ix_applications_status_submitted", "status", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    tier: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[ApplicationStatus] = mapped_column(
        status_type(ApplicationStatus, table="applications", column="status", length=24)
    )
    answers: Mapped[dict[str, Any]]
    license_sha256: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime]
    accepted_from: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    renewal_of: Mapped[str | None] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    usage_report: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account] = relationship(lazy="raise")
    model: Mapped[Model] = relationship(lazy="raise")
    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.id", lazy="raise", back_populates="application"
    )


class ApplicationEvent(Base):
    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    move: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[ApplicationStatus | None] = mapped_column(
        status_type(ApplicationStatus, table="application_events", column="from_status", length=24)
    )
    to_status: Mapped[ApplicationStatus] = mapped_column(
        status_type(ApplicationStatus, table="application_events", column="to_status", length=24)
    )
    reason: Mapped[str | None] = mapped_column(Text)

    application: Mapped[Application] = relationship(back_populates="events", lazy="raise")


class GrantNotice(Base):
    """Which expiry warnings a grant has had, so each is sent once."""

    __tablename__ = "grant_notices"

    grant_id: Mapped[str] = mapped_column(
        ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True
    )
    notice: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. "expiry:7", "ended"
    sent_at: Mapped[datetime]


class Closeout(Base):
    """After a grant ends, the grantee attests that the weights were deleted."""

    __tablename__ = "closeouts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    requested_at: Mapped[datetime]
    due_at: Mapped[datetime]
    attested_at: Mapped[datetime | None]
    statement: Mapped[str | None] = mapped_column(Text)
    attested_from: Mapped[str | None] = mapped_column(String(100))


class JobRun(Base):
    """When each scheduled job last ran, so /readyz can tell a stalled scheduler."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(default=0)


class EvidenceAttachment(Base):
    """A document attached to a release as evidence for a promotion gate (e.g. a red-team
    report). The file itself is in object storage, by SHA-256."""

    __tablename__ = "evidence_attachments"
    __table_args__ = (Index("ix_evidence_attachments_release", "release_id", "kind", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(NAME))
    name: Mapped[str] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(NAME))
    file_name: Mapped[str | None] = mapped_column(String(300))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    attached_by: Mapped[str] = mapped_column(String(320))
    attached_at: Mapped[datetime]


class Approval(Base):
    """One operator's approval of a pending promotion or reinstatement. An approval counts
    once per operator and is used up when the move happens."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_release_action", "release_id", "action", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(16))  # promote | reinstate
    target: Mapped[str] = mapped_column(String(NAME))  # the target stage, or "" for reinstate
    operator: Mapped[str] = mapped_column(String(320))
    approved_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class Recall(Base):
    """A recall in force (lifted_at is None) stops downloads of a release, or of one tier."""

    __tablename__ = "recalls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="RESTRICT"), index=True
    )
    tier: Mapped[str | None] = mapped_column(String(NAME))  # None: every tier
    reason: Mapped[str] = mapped_column(Text)
    recalled_at: Mapped[datetime]
    recalled_by: Mapped[str] = mapped_column(String(320))
    rule: Mapped[str | None] = mapped_column(Text)  # the policy trigger that fired, if any
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(320))


class Decommission(Base):
    """The announced end of hosting of a release."""

    __tablename__ = "decommissions"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="RESTRICT"), primary_key=True
    )
    announced_at: Mapped[datetime]
    effective_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    successor_version: Mapped[str | None] = mapped_column(String(NAME))
    new_license_id: Mapped[int | None] = mapped_column(
        ForeignKey("licenses.id", ondelete="RESTRICT")
    )
    announced_by: Mapped[str] = mapped_column(String(320))
    executed_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]


class Incident(Base):
    """A report of misuse, a safety or security problem, a leak; triaged by operators."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    links: Mapped[dict[str, Any]]
    contact: Mapped[str | None] = mapped_column(String(320))
    reporter_account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    reporter_address: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[IncidentStatus] = mapped_column(
        status_type(IncidentStatus, table="incidents", column="status", length=16)
    )
    severity: Mapped[str | None] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IncidentEvent(Base):
    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    move: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[IncidentStatus | None] = mapped_column(
        status_type(IncidentStatus, table="incident_events", column="from_status", length=16)
    )
    to_status: Mapped[IncidentStatus] = mapped_column(
        status_type(IncidentStatus, table="incident_events", column="to_status", length=16)
    )
    note: Mapped[str | None] = mapped_column(Text)


class IncidentAccount(Base):
    """An account linked to an incident (e.g. the grantee whose copy leaked)."""

    __tablename__ = "incident_accounts"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), primary_key=True
    )


class EnforcementAction(Base):
    """A warning, suspension or termination of an account, with its reason."""

    __tablename__ = "enforcement_actions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    ends_at: Mapped[datetime | None]  # a suspension's end
    ended_at: Mapped[datetime | None]
    appeal_until: Mapped[datetime]


class Appeal(Base):
    """An account's one appeal against an enforcement action, and its outcome."""

    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action_id: Mapped[str] = mapped_column(
        ForeignKey("enforcement_actions.id", ondelete="RESTRICT"), unique=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    statement: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    status: Mapped[AppealStatus] = mapped_column(
        status_type(AppealStatus, table="appeals", column="status", length=16)
    )
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decision_reason: Mapped[str | None] = mapped_column(Text)


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
