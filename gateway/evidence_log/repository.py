"""Every query of the evidence log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import (
    Evidence,
    EvidenceCheckpoint,
    EvidenceLeaf,
    EvidenceLogKey,
    EvidenceNode,
    EvidenceUnsealed,
)
from gateway.evidence_log.tree import Coordinates

_EVIDENCE: Final = cast(Table, Evidence.__table__)
_LEAVES: Final = cast(Table, EvidenceLeaf.__table__)
_NODES: Final = cast(Table, EvidenceNode.__table__)
_ROW = (
    Evidence.id,
    Evidence.at,
    Evidence.kind,
    Evidence.actor,
    Evidence.model_id,
    Evidence.release_id,
    Evidence.account_id,
    Evidence.data,
)


async def unsealed(session: AsyncSession, limit: int) -> Sequence[Row[Any]]:
    """The oldest rows queued for sealing, by id (rows whose evidence is gone stay queued:
    nothing is sealed in their place)."""
    query = (
        select(*_ROW)
        .join(EvidenceUnsealed, EvidenceUnsealed.evidence_id == Evidence.id)
        .order_by(Evidence.id)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def oldest_unsealed_at(session: AsyncSession) -> datetime | None:
    """When the oldest row still queued for sealing was written; None when none is."""
    query = select(func.min(Evidence.at)).join_from(
        EvidenceUnsealed, Evidence, EvidenceUnsealed.evidence_id == Evidence.id
    )
    oldest: datetime | None = await session.scalar(query)
    return oldest


async def tree_size(session: AsyncSession) -> int:
    last = await session.scalar(select(func.max(EvidenceLeaf.leaf_index)))
    return 0 if last is None else int(last) + 1


async def nodes(session: AsyncSession, wanted: Iterable[Coordinates]) -> dict[Coordinates, bytes]:
    """The stored hashes of `wanted` subtrees (level 0: the leaves); missing ones left out."""
    wanted = set(wanted)
    found: dict[Coordinates, bytes] = {}
    leaves = sorted(position for level, position in wanted if level == 0)
    if leaves:
        query = select(EvidenceLeaf.leaf_index, EvidenceLeaf.leaf_hash).where(
            EvidenceLeaf.leaf_index.in_(leaves)
        )
        found.update(((0, index), bytes(hashed)) for index, hashed in await session.execute(query))
    upper = sorted(c for c in wanted if c[0] > 0)
    if upper:
        above = select(EvidenceNode.level, EvidenceNode.position, EvidenceNode.hash).where(
            tuple_(EvidenceNode.level, EvidenceNode.position).in_(upper)
        )
        found.update(((lv, pos), bytes(hashed)) for lv, pos, hashed in await session.execute(above))
    return found


async def add_sealed(
    session: AsyncSession,
    leaves: Sequence[dict[str, Any]],
    completed: Sequence[dict[str, Any]],
) -> None:
    """Store new leaves and the subtrees they complete, and take their rows off the queue."""
    # Core inserts of the tables: the ORM's bulk path costs four times as much a row.
    await session.execute(insert(_LEAVES), leaves)
    if completed:
        await session.execute(insert(_NODES), completed)
    ids = [leaf["evidence_id"] for leaf in leaves]
    await session.execute(delete(EvidenceUnsealed).where(EvidenceUnsealed.evidence_id.in_(ids)))


async def with_personal_before(
    session: AsyncSession, before: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Sealed rows older than `before` whose personal fields are still kept:
    (leaf index, evidence id, data), oldest leaves first."""
    query = (
        select(EvidenceLeaf.leaf_index, Evidence.id, Evidence.data)
        .join(Evidence, Evidence.id == EvidenceLeaf.evidence_id)
        .where(EvidenceLeaf.personal_salt.is_not(None), Evidence.at < before)
        .order_by(EvidenceLeaf.leaf_index)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def erase_personal(
    session: AsyncSession, erased: Sequence[tuple[int, int, dict[str, Any]]]
) -> None:
    """Set the rows' data to their erased form and drop their leaves' salts:
    (leaf index, evidence id, data without personal values)."""
    # One statement for all the rows: on SQLite the write lock is held while it runs.
    await session.execute(
        update(_EVIDENCE)
        .where(_EVIDENCE.c.id == bindparam("row"))
        .values(data=bindparam("erased")),
        [{"row": evidence_id, "erased": data} for _, evidence_id, data in erased],
    )
    indexes = [index for index, _, _ in erased]
    await session.execute(
        update(EvidenceLeaf).where(EvidenceLeaf.leaf_index.in_(indexes)).values(personal_salt=None)
    )


async def log_key(session: AsyncSession) -> EvidenceLogKey | None:
    return await session.scalar(select(EvidenceLogKey).order_by(EvidenceLogKey.created_at))


def add_log_key(session: AsyncSession, row: EvidenceLogKey) -> None:
    session.add(row)


async def latest_checkpoint(session: AsyncSession) -> EvidenceCheckpoint | None:
    query = select(EvidenceCheckpoint).order_by(EvidenceCheckpoint.tree_size.desc()).limit(1)
    return await session.scalar(query)


async def checkpoint(session: AsyncSession, size: int) -> EvidenceCheckpoint | None:
    return await session.get(EvidenceCheckpoint, size)


async def checkpoints(
    session: AsyncSession, *, below: int | None, limit: int
) -> Sequence[EvidenceCheckpoint]:
    """Checkpoints newest first, those of sizes below `below` when given."""
    query = select(EvidenceCheckpoint).order_by(EvidenceCheckpoint.tree_size.desc()).limit(limit)
    if below is not None:
        query = query.where(EvidenceCheckpoint.tree_size < below)
    return (await session.scalars(query)).all()


def add_checkpoint(session: AsyncSession, row: EvidenceCheckpoint) -> None:
    session.add(row)


async def leaf(session: AsyncSession, index: int) -> tuple[EvidenceLeaf, Row[Any] | None] | None:
    """The leaf at `index` and its evidence row (None: the row is gone)."""
    found = await session.get(EvidenceLeaf, index)
    if found is None:
        return None
    row = (await session.execute(select(*_ROW).where(Evidence.id == found.evidence_id))).first()
    return found, row


async def first_leaf_since(session: AsyncSession, since: datetime) -> int | None:
    """The first leaf whose row is from `since` or later."""
    query = (
        select(func.min(EvidenceLeaf.leaf_index))
        .join(Evidence, Evidence.id == EvidenceLeaf.evidence_id)
        .where(Evidence.at >= since)
    )
    return await session.scalar(query)


async def leaves_from(
    session: AsyncSession, start: int, end: int, *, batch: int
) -> AsyncIterator[Row[Any]]:
    """Leaves [start, end) with their rows, in leaf order, `batch` at a time (a leaf whose
    row is gone comes with nulls)."""
    query = (
        select(
            EvidenceLeaf.leaf_index,
            EvidenceLeaf.evidence_id,
            EvidenceLeaf.leaf_hash,
            EvidenceLeaf.personal_sha256,
            EvidenceLeaf.personal_salt,
            *_ROW,
        )
        .outerjoin(Evidence, Evidence.id == EvidenceLeaf.evidence_id)
        .where(EvidenceLeaf.leaf_index >= start, EvidenceLeaf.leaf_index < end)
        .order_by(EvidenceLeaf.leaf_index)
        .execution_options(yield_per=batch)
    )
    result = await session.stream(query)
    async for row in result:
        yield row
