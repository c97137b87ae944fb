"""Every query of usage: reading the log for the rollup, writing rollups, reporting."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final, cast

from sqlalchemy import Row, Table, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import (
    Account,
    Artifact,
    Evidence,
    EvidenceLeaf,
    Incident,
    Model,
    Release,
    UsageDaily,
    UsageProgress,
)
from stages.release import DRAFT

_USAGE: Final = cast(Table, UsageDaily.__table__)
KEY: Final = (
    "release_id",
    "day",
    "measure",
    "stage",
    "tier",
    "organisation",
    "artifact",
    "account_id",
    "reason",
)


async def next_leaf(session: AsyncSession, name: str) -> int:
    """Where the rollup `name` goes on from, locked: two rollups never read the same rows."""
    found = await session.get(UsageProgress, name, with_for_update=True)
    return 0 if found is None else found.next_leaf


async def set_next_leaf(session: AsyncSession, name: str, leaf: int) -> None:
    found = await session.get(UsageProgress, name)
    if found is None:
        session.add(UsageProgress(name=name, next_leaf=leaf))
    else:
        found.next_leaf = leaf


async def sealed_size(session: AsyncSession) -> int:
    last = await session.scalar(select(func.max(EvidenceLeaf.leaf_index)))
    return 0 if last is None else int(last) + 1


async def evidence_between(
    session: AsyncSession, start: int, end: int, kinds: Iterable[str]
) -> Sequence[Row[Any]]:
    """Rows of `kinds` at leaves [start, end), in leaf order."""
    query = (
        select(Evidence.at, Evidence.kind, Evidence.release_id, Evidence.account_id, Evidence.data)
        .join(EvidenceLeaf, EvidenceLeaf.evidence_id == Evidence.id)
        .where(
            EvidenceLeaf.leaf_index >= start,
            EvidenceLeaf.leaf_index < end,
            Evidence.kind.in_(list(kinds)),
            Evidence.release_id.is_not(None),
        )
        .order_by(EvidenceLeaf.leaf_index)
    )
    found: Sequence[Row[Any]] = (await session.execute(query)).all()
    return found


async def stages_before(
    session: AsyncSession, release_ids: Iterable[int], leaf: int, kinds: Iterable[str]
) -> dict[int, str]:
    """Each release's stage at `leaf`: where its last stage move before it went."""
    wanted = sorted(set(release_ids))
    if not wanted:
        return {}
    last = (
        select(Evidence.release_id, func.max(EvidenceLeaf.leaf_index).label("leaf_index"))
        .join(EvidenceLeaf, EvidenceLeaf.evidence_id == Evidence.id)
        .where(
            Evidence.release_id.in_(wanted),
            Evidence.kind.in_(list(kinds)),
            EvidenceLeaf.leaf_index < leaf,
        )
        .group_by(Evidence.release_id)
        .subquery()
    )
    query = (
        select(Evidence.release_id, Evidence.data)
        .join(EvidenceLeaf, EvidenceLeaf.evidence_id == Evidence.id)
        .join(last, last.c.leaf_index == EvidenceLeaf.leaf_index)
    )
    found = {
        row.release_id: str((row.data or {}).get("to") or "")
        for row in await session.execute(query)
    }
    return {release: found.get(release) or DRAFT for release in wanted}


async def organisations_of(session: AsyncSession, account_ids: Iterable[str]) -> dict[str, str]:
    query = select(Account.id, Account.affiliation).where(Account.id.in_(sorted(set(account_ids))))
    return {row.id: row.affiliation for row in await session.execute(query)}


async def sizes_of(session: AsyncSession, artifact_ids: Iterable[int]) -> dict[int, int]:
    query = select(Artifact.id, Artifact.size).where(Artifact.id.in_(sorted(set(artifact_ids))))
    return {row.id: row.size for row in await session.execute(query)}


async def add_counts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add `count` and `bytes` to each row's key, creating the key where it is new."""
    if not rows:
        return
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_USAGE)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            "count": _USAGE.c.count + statement.excluded.count,
            "bytes": _USAGE.c.bytes + statement.excluded.bytes,
        },
    )
    await session.execute(statement, list(rows))


async def release_ids(session: AsyncSession, org: str, name: str, version: str | None) -> list[int]:
    query = (
        select(Release.id)
        .join(Model, Model.id == Release.model_id)
        .where(Model.org == org, Model.name == name)
    )
    if version is not None:
        query = query.where(Release.version == version)
    return list((await session.scalars(query)).all())


_DIMENSIONS: Final = {
    "stage": UsageDaily.stage,
    "tier": UsageDaily.tier,
    "organisation": UsageDaily.organisation,
    "day": UsageDaily.day,
    "artifact": UsageDaily.artifact,
    "reason": UsageDaily.reason,
}


async def report(
    session: AsyncSession,
    releases: Sequence[int],
    *,
    by: str,
    start: date | None,
    end: date | None,
) -> Sequence[Row[Any]]:
    """(key, downloads, distinct grantees, bytes, requests, refusals, API requests, API
    requests flagged) per value of `by`; by reason, only refusals have one."""
    dimension = _DIMENSIONS[by]
    is_download = UsageDaily.measure == "download"
    query = (
        select(
            dimension.label("key"),
            func.sum(case((is_download, UsageDaily.count), else_=0)).label("downloads"),
            func.count(func.distinct(case((is_download, UsageDaily.account_id)))).label("grantees"),
            func.sum(case((is_download, UsageDaily.bytes), else_=0)).label("bytes"),
            func.sum(case((UsageDaily.measure == "request", UsageDaily.count), else_=0)).label(
                "requests"
            ),
            func.sum(case((UsageDaily.measure == "refusal", UsageDaily.count), else_=0)).label(
                "refusals"
            ),
            func.sum(case((UsageDaily.measure == "api_request", UsageDaily.count), else_=0)).label(
                "api_requests"
            ),
            func.sum(case((UsageDaily.measure == "api_flagged", UsageDaily.count), else_=0)).label(
                "api_flagged"
            ),
        )
        .where(UsageDaily.release_id.in_(list(releases)) if releases else literal(False))
        .group_by(dimension)
        .order_by(dimension)
    )
    if by == "reason":
        query = query.where(UsageDaily.measure == "refusal")
    if start is not None:
        query = query.where(UsageDaily.day >= start)
    if end is not None:
        query = query.where(UsageDaily.day <= end)
    found: Sequence[Row[Any]] = (await session.execute(query)).all()
    return found


async def incidents_by_day(
    session: AsyncSession, releases: Sequence[int], start: date, end: date
) -> dict[date, int]:
    """Incidents reported about the releases, per day of report, over [start, end]."""
    query = select(Incident.created_at).where(Incident.release_id.in_(list(releases)))
    counted: dict[date, int] = {}
    for (at,) in await session.execute(query):
        day = at.date()
        if start <= day <= end:
            counted[day] = counted.get(day, 0) + 1
    return counted
