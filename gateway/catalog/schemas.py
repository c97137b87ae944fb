"""JSON shapes of the catalog API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.db.models import Model, Release
from policies.schema import Policy
from stages.release import DRAFT, Status


@dataclass(frozen=True)
class ReleaseSummary:
    version: str
    stage: str
    status: str
    published_at: datetime
    total_size: int
    url: str
    yanked: bool
    yanked_reason: str | None
    quarantined: bool

    @classmethod
    def of(cls, release: Release, model: Model) -> ReleaseSummary:
        return cls(
            version=release.version,
            stage=release.stage,
            status=release.status,
            published_at=release.published_at,
            total_size=release.total_size,
            url=f"/api/v1/models/{model.org}/{model.name}/releases/{release.version}",
            yanked=release.yanked_at is not None,
            yanked_reason=release.yanked_reason,
            quarantined=release.quarantined_at is not None,
        )


def latest_release(releases: list[Release]) -> Release | None:
    """The release a caller naming no version means: the newest published one that is
    active and not yanked (PEP 592), if any."""
    usable = [
        r
        for r in releases
        if r.status == Status.ACTIVE and r.stage != DRAFT and r.yanked_at is None
    ]
    return max(usable, key=lambda r: r.published_at, default=None)


@dataclass(frozen=True)
class ModelSummary:
    org: str
    name: str
    id: str
    releases: list[ReleaseSummary]
    url: str
    # The newest active release that is not yanked: what `gateway download ORG/NAME` takes.
    latest: str | None

    @classmethod
    def of(cls, model: Model) -> ModelSummary:
        latest = latest_release(list(model.releases))
        return cls(
            org=model.org,
            name=model.name,
            id=model.ref,
            releases=[ReleaseSummary.of(r, model) for r in model.releases],
            url=f"/api/v1/models/{model.org}/{model.name}",
            latest=latest.version if latest is not None else None,
        )


@dataclass(frozen=True)
class ModelPage:
    items: list[ModelSummary]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class ArtifactOut:
    path: str
    size: int
    sha256: str
    component: str


@dataclass(frozen=True)
class TierAccess:
    tier: str
    title: str
    open: bool
    components: list[str]


@dataclass(frozen=True)
class ReleaseDetail:
    model: str
    version: str
    stage: str
    status: str
    published_at: datetime
    stage_changed_at: datetime
    license_sha256: str
    license_text: str
    guidance: str | None
    total_size: int
    manifest_sha256: str
    signing_key_id: str
    components: dict[str, int]
    artifacts: list[ArtifactOut]
    tiers: list[TierAccess]
    signature_url: str
    public_key_url: str
    yanked: bool
    yanked_reason: str | None
    yanked_at: datetime | None
    # Held while reports are looked into: no new links or API use (the reason stays inside).
    quarantined: bool

    @classmethod
    def of(cls, release: Release, policy: Policy, open_tiers: set[str]) -> ReleaseDetail:
        component_of = {c.id: c.name for c in release.components}
        present = set(component_of.values())
        base = f"/api/v1/models/{release.model.org}/{release.model.name}/releases/{release.version}"
        return cls(
            model=release.model.ref,
            version=release.version,
            stage=release.stage,
            status=release.status,
            published_at=release.published_at,
            stage_changed_at=release.stage_changed_at,
            license_sha256=release.license.sha256,
            license_text=release.license.text,
            guidance=release.guidance,
            total_size=release.total_size,
            manifest_sha256=release.manifest_sha256,
            signing_key_id=release.signing_key_id,
            components={c.name: c.artifact_count for c in release.components},
            artifacts=[
                ArtifactOut(a.path, a.size, a.sha256, component_of[a.component_id])
                for a in release.artifacts
            ],
            tiers=[
                TierAccess(
                    tier=tier.name,
                    title=tier.title,
                    open=tier.name in open_tiers,
                    components=sorted(tier.components & present),
                )
                for tier in policy.ladder
            ],
            signature_url=f"{base}/signature",
            public_key_url="/.well-known/release-signing-key.pem",
            yanked=release.yanked_at is not None,
            yanked_reason=release.yanked_reason,
            yanked_at=release.yanked_at,
            quarantined=release.quarantined_at is not None,
        )
