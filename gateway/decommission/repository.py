"""The queries of the decommission feature: releases by name or id (with their model and
license), announcements, licenses, the grants a decommission tells and ends, the grant
notices that claim each message, and what purging would delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.db.models import (
    Artifact,
    Decommission,
    EvidenceAttachment,
    Grant,
    GrantNotice,
    License,
    Model,
    Release,
)
from stages.names import ModelRef
from stages.release import DRAFT, Status


async def release_by_ref(
    session: AsyncSession, model: ModelRef, version: str, *, lock: bool = False
) -> Release | None:
    query = (
        select(Release)
        .join(Model, Model.id == Release.model_id)
        .options(selectinload(Release.model), selectinload(Release.license))
        .where(Model.org == model.org, Model.name == model.name, Release.version == version)
    )
    if lock:
        query = query.with_for_update(of=Release)
    return await session.scalar(query)


async def release_by_id(session: AsyncSession, release_id: int) -> Release | None:
    return await session.scalar(
        select(Release)
        .options(selectinload(Release.model), selectinload(Release.license))
        .where(Release.id == release_id)
        .execution_options(populate_existing=True)
    )


async def release_of_model(session: AsyncSession, model_id: int, version: str) -> Release | None:
    return await session.scalar(
        select(Release).where(Release.model_id == model_id, Release.version == version)
    )


async def decommission_of(session: AsyncSession, release_id: int) -> Decommission | None:
    return await session.get(Decommission, release_id)


async def license_by_id(session: AsyncSession, license_id: int) -> License | None:
    return await session.get(License, license_id)


async def license_by_sha256(session: AsyncSession, sha256: str) -> License | None:
    return await session.scalar(select(License).where(License.sha256 == sha256))


async def pending_announcements(session: AsyncSession, now: datetime) -> Sequence[Decommission]:
    """Announced decommissions whose date is still to come, soonest first."""
    return (
        await session.scalars(
            select(Decommission)
            .where(Decommission.executed_at.is_(None), Decommission.effective_at > now)
            .order_by(Decommission.effective_at)
        )
    ).all()


async def due_decommissions(
    session: AsyncSession, now: datetime
) -> Sequence[Row[int, str, str, str, str]]:
    """(release id, reason, org, name, version) of the decommissions whose date has come."""
    return (
        await session.execute(
            select(
                Decommission.release_id,
                Decommission.reason,
                Model.org,
                Model.name,
                Release.version,
            )
            .select_from(Decommission)
            .join(Release, Release.id == Decommission.release_id)
            .join(Model, Model.id == Release.model_id)
            .where(Decommission.executed_at.is_(None), Decommission.effective_at <= now)
            .order_by(Decommission.effective_at, Decommission.release_id)
        )
    ).all()


async def claim_execution(session: AsyncSession, release_id: int, now: datetime) -> bool:
    claimed = await session.execute(
        update(Decommission)
        .where(Decommission.release_id == release_id, Decommission.executed_at.is_(None))
        .values(executed_at=now)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def claim_purge(session: AsyncSession, release_id: int, now: datetime) -> bool:
    claimed = await session.execute(
        update(Decommission)
        .where(Decommission.release_id == release_id, Decommission.purged_at.is_(None))
        .values(purged_at=now)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def other_open_release(session: AsyncSession, release: Release) -> bool:
    """Whether another release of the model is active and past draft."""
    other = await session.scalar(
        select(Release.id)
        .where(
            Release.model_id == release.model_id,
            Release.id != release.id,
            Release.status == Status.ACTIVE.value,
            Release.stage != DRAFT,
        )
        .limit(1)
    )
    return other is not None


async def open_grant_ids(
    session: AsyncSession, model_id: int, statuses: Sequence[str]
) -> Sequence[str]:
    return (
        await session.scalars(
            select(Grant.id).where(Grant.model_id == model_id, Grant.status.in_(list(statuses)))
        )
    ).all()


async def end_grant(
    session: AsyncSession,
    grant_id: str,
    *,
    statuses: Sequence[str],
    to: str,
    reason: str,
    now: datetime,
) -> str | None:
    """Move the grant to `to` if it is still in one of `statuses`; its account, or None."""
    result = await session.execute(
        update(Grant)
        .where(Grant.id == grant_id, Grant.status.in_(list(statuses)))
        .values(status=to, status_reason=reason, status_changed_at=now)
        .returning(Grant.account_id)
    )
    return result.scalar()


async def announced_to(session: AsyncSession, notice: str) -> int:
    """How many accounts hold a grant that was sent `notice`."""
    notified = await session.scalar(
        select(func.count(func.distinct(Grant.account_id)))
        .join(GrantNotice, GrantNotice.grant_id == Grant.id)
        .where(GrantNotice.notice == notice)
    )
    return notified or 0


async def artifact_sizes(session: AsyncSession, release_id: int) -> dict[str, int]:
    """SHA-256 -> size of the release's stored objects."""
    rows = await session.execute(
        select(Artifact.sha256, func.max(Artifact.size))
        .where(Artifact.release_id == release_id)
        .group_by(Artifact.sha256)
    )
    return {row[0]: row[1] for row in rows}


async def still_used(session: AsyncSession, release_id: int) -> set[str]:
    """The release's objects that another release not yet purged, or an evidence
    attachment, still uses."""
    own = select(Artifact.sha256).where(Artifact.release_id == release_id)
    # An outer join leaves purged_at NULL for a release that was never decommissioned.
    shared = set(
        (
            await session.scalars(
                select(Artifact.sha256)
                .join(Release, Release.id == Artifact.release_id)
                .outerjoin(Decommission, Decommission.release_id == Release.id)
                .where(
                    Artifact.release_id != release_id,
                    Artifact.sha256.in_(own),
                    Decommission.purged_at.is_(None),
                )
            )
        ).all()
    )
    shared.update(
        sha256
        for sha256 in (
            await session.scalars(
                select(EvidenceAttachment.file_sha256).where(
                    EvidenceAttachment.file_sha256.in_(own)
                )
            )
        ).all()
        if sha256 is not None
    )
    return shared


async def live_grants(session: AsyncSession, model_id: int, now: datetime) -> Sequence[Grant]:
    """The model's grants that give access now (active, window not ended), with their
    accounts, by account."""
    return (
        await session.scalars(
            select(Grant)
            .options(selectinload(Grant.account))
            .where(Grant.model_id == model_id, Grant.status == "active", Grant.expires_at > now)
            .order_by(Grant.account_id, Grant.created_at, Grant.id)
        )
    ).all()


async def notices_of_grants(session: AsyncSession, grant_ids: Sequence[str]) -> list[str]:
    """Every notice recorded for these grants."""
    return list(
        (
            await session.scalars(
                select(GrantNotice.notice).where(GrantNotice.grant_id.in_(list(grant_ids)))
            )
        ).all()
    )
