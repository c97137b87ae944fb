"""Every query of transparency reports: the log's rows a report folds, the rollups'
downloads, and the reports themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date
from typing import Any, Final

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Evidence, EvidenceLeaf, Model, Release, TransparencyReport, UsageDaily
from gateway.db.models.evidence import HOT_KINDS, NOT_HOT

_BATCH: Final = 5_000


async def entries(
    session: AsyncSession, kinds: Iterable[str], size: int, model_id: int | None
) -> AsyncIterator[dict[str, Any]]:
    """Rows of `kinds` at leaves below `size`, in leaf order, in the form of the log's
    entries (the fields a report reads). None of the hot paths' kinds may be asked for:
    the rows are read through the index that leaves those out (its predicate written
    out, not bound, so that the planner sees it is the index's)."""
    wanted = frozenset(kinds)
    assert not wanted & frozenset(HOT_KINDS)
    query = (
        select(
            EvidenceLeaf.leaf_index,
            Evidence.at,
            Evidence.kind,
            Evidence.model_id,
            Evidence.release_id,
            Evidence.account_id,
            Evidence.data,
        )
        .join(EvidenceLeaf, EvidenceLeaf.evidence_id == Evidence.id)
        .where(text(f"evidence.{NOT_HOT}"), EvidenceLeaf.leaf_index < size)
        .order_by(EvidenceLeaf.leaf_index)
        .execution_options(yield_per=_BATCH)
    )
    if model_id is not None:
        query = query.where(Evidence.model_id == model_id)
    async for row in await session.stream(query):
        if row.kind not in wanted:
            continue
        yield {
            "index": row.leaf_index,
            "at": row.at.isoformat(),
            "kind": row.kind,
            "model_id": row.model_id,
            "release_id": row.release_id,
            "account_id": row.account_id,
            "data": row.data or {},
        }


async def downloads(
    session: AsyncSession, first: date, last: date, model_id: int | None
) -> Sequence[Any]:
    """(stage, account_id, downloads) from the rollups over the days [first, last)."""
    query = (
        select(UsageDaily.stage, UsageDaily.account_id, func.sum(UsageDaily.count).label("n"))
        .where(UsageDaily.measure == "download", UsageDaily.day >= first, UsageDaily.day < last)
        .group_by(UsageDaily.stage, UsageDaily.account_id)
    )
    if model_id is not None:
        releases = select(Release.id).where(Release.model_id == model_id)
        query = query.where(UsageDaily.release_id.in_(releases))
    return (await session.execute(query)).all()


async def release_refs(session: AsyncSession, release_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(release_ids))
    if not wanted:
        return {}
    query = (
        select(Release.id, Model.org, Model.name, Release.version)
        .join(Model, Model.id == Release.model_id)
        .where(Release.id.in_(wanted))
    )
    return {row.id: f"{row.org}/{row.name}:{row.version}" for row in await session.execute(query)}


async def drop_drafts(session: AsyncSession, period: str, scope: str) -> None:
    await session.execute(
        delete(TransparencyReport).where(
            TransparencyReport.period == period,
            TransparencyReport.scope == scope,
            TransparencyReport.published_at.is_(None),
        )
    )


def add(session: AsyncSession, report: TransparencyReport) -> None:
    session.add(report)


async def get(
    session: AsyncSession, report_id: str, *, lock: bool = False
) -> TransparencyReport | None:
    query = select(TransparencyReport).where(TransparencyReport.id == report_id)
    if lock:
        query = query.with_for_update()
    found: TransparencyReport | None = await session.scalar(query)
    return found


async def published_one(
    session: AsyncSession, period: str, scope: str
) -> TransparencyReport | None:
    found: TransparencyReport | None = await session.scalar(
        select(TransparencyReport).where(TransparencyReport.published_key == f"{period} {scope}")
    )
    return found


async def published_scopes(session: AsyncSession) -> Sequence[Any]:
    """(period, scope) of every published report."""
    query = select(TransparencyReport.period, TransparencyReport.scope).where(
        TransparencyReport.published_at.is_not(None)
    )
    return (await session.execute(query)).all()


async def listed(
    session: AsyncSession, *, published: bool, limit: int, offset: int
) -> Sequence[TransparencyReport]:
    query = select(TransparencyReport)
    if published:
        query = query.where(TransparencyReport.published_at.is_not(None)).order_by(
            TransparencyReport.period.desc(), TransparencyReport.scope
        )
    else:
        query = query.order_by(TransparencyReport.built_at.desc())
    return (await session.scalars(query.limit(limit).offset(offset))).all()
