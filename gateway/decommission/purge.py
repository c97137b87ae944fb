"""Purging a decommissioned release: deleting its stored files once the retention period
is over. Never a job: an operator asks for it, and it deletes only objects no other live
release (nor an evidence attachment) still uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway import evidence
from gateway.db.models import Decommission, Release
from gateway.db.uow import UnitOfWork
from gateway.decommission import repository
from gateway.decommission.announce import at_text, load_release, load_release_by_id
from gateway.errors import Conflict
from gateway.storage import Storage
from policies.decommission import retention_clock
from policies.schema import DecommissionRules
from stages import evidence as ev
from stages.names import ModelRef


@dataclass(frozen=True)
class PurgePlan:
    """What purging a decommissioned release would delete, and what it keeps."""

    ref: str
    release_id: int
    delete: tuple[str, ...]  # SHA-256 of the objects to delete
    delete_bytes: int
    kept: int  # objects another release (or an evidence attachment) still uses


@dataclass(frozen=True)
class Purged:
    ref: str
    deleted: int
    deleted_bytes: int
    kept: int
    purged_at: datetime


async def plan_purge(
    uow: UnitOfWork, model: ModelRef, version: str, *, now: datetime | None = None
) -> PurgePlan:
    """What purge() would delete; Conflict if the release may not be purged (yet)."""
    rt = uow.rt
    now = now or rt.clock()
    session = uow.session
    release = await load_release(session, model, version)
    row = await repository.decommission_of(session, release.id)
    _check_purgeable(rt.policy.decommission, f"{model}:{version}", row, now)
    return await _plan(uow, release)


async def purge(
    uow: UnitOfWork, model: ModelRef, version: str, *, actor: str, now: datetime | None = None
) -> Purged:
    """Delete the stored objects of a decommissioned release once its retention is over.

    An object another release that is not purged (or an evidence attachment) still uses
    is kept. The objects go first and the record after, so a purge that fails half-way
    can simply be run again.
    """
    rt = uow.rt
    now = now or rt.clock()
    plan = await plan_purge(uow, model, version, now=now)
    # No connection is held while the store deletes.
    await uow.end_read()
    await asyncio.to_thread(_delete_all, rt.storage, plan.delete)
    session = await uow.write()
    if not await repository.claim_purge(session, plan.release_id, now):
        raise Conflict(f"{plan.ref} was purged by another command", code="already_purged")
    release = await load_release_by_id(session, plan.release_id)
    evidence.record(
        session,
        ev.ReleasePurged(
            objects_deleted=len(plan.delete),
            bytes_deleted=plan.delete_bytes,
            objects_kept=plan.kept,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    return Purged(
        ref=plan.ref,
        deleted=len(plan.delete),
        deleted_bytes=plan.delete_bytes,
        kept=plan.kept,
        purged_at=now,
    )


def _check_purgeable(
    rules: DecommissionRules, ref: str, row: Decommission | None, now: datetime
) -> None:
    if row is None:
        raise Conflict(
            f"{ref} has no decommission; announce one first (gateway decommission)",
            code="not_decommissioned",
        )
    if row.purged_at is not None:
        raise Conflict(
            f"{ref} was already purged on {at_text(row.purged_at)}", code="already_purged"
        )
    if row.executed_at is None:
        raise Conflict(
            f"{ref} is still hosted until {at_text(row.effective_at)}; it can be purged "
            f"{rules.retention_days} day(s) after that",
            code="not_decommissioned",
        )
    clock = retention_clock(rules, row.effective_at, now)
    if not clock.purgeable:
        raise Conflict(
            f"{ref} is kept for {rules.retention_days} day(s) after it was decommissioned; "
            f"it can be purged from {at_text(clock.purge_at)}",
            code="retention_period",
        )


async def _plan(uow: UnitOfWork, release: Release) -> PurgePlan:
    mine = await repository.artifact_sizes(uow.session, release.id)
    # Another release uses an object until it is purged itself.
    shared = await repository.still_used(uow.session, release.id)
    delete = tuple(sorted(set(mine) - shared))
    return PurgePlan(
        ref=f"{release.model.ref}:{release.version}",
        release_id=release.id,
        delete=delete,
        delete_bytes=sum(mine[sha256] for sha256 in delete),
        kept=len(set(mine) & shared),
    )


def _delete_all(storage: Storage, objects: Iterable[str]) -> None:
    for sha256 in objects:
        storage.delete(sha256)
