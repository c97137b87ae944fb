"""The catalog: models, licenses, releases with their components and artifacts, and what
happens to a release (stage changes, approvals, recalls, decommissioning)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db.models.base import NAME, Base
from gateway.db.types import status_type
from stages.release import Status


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
    # Yanked (PEP 592): no longer anyone's latest, still served by its exact version.
    yanked_at: Mapped[datetime | None]
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    yanked_by: Mapped[str | None] = mapped_column(String(320))
    # Quarantined (PEP 792): no new URLs or API use until an operator lifts it.
    quarantined_at: Mapped[datetime | None]
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    quarantined_by: Mapped[str | None] = mapped_column(String(320))

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
