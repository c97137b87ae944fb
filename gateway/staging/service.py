"""Promote and roll back releases through the stage machine.

The machine in `stages/` decides what is legal; this module loads the release, applies
the move, and saves the new state with its stage-change row and evidence in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Model, Release, StageChange
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.names import ModelRef
from stages.release import Move, ReleaseState, StageError, Status


@dataclass(frozen=True)
class StageMoved:
    ref: str
    move: str
    from_stage: str
    to_stage: str
    status: str


async def move_release(
    rt: Runtime,
    model: ModelRef,
    version: str,
    move: Move,
    *,
    target: str | None,
    actor: str,
    reason: str | None = None,
) -> StageMoved:
    """Apply one move of the stage machine to a release."""
    ref = f"{model}:{version}"
    reason = clean_text(reason, field="the reason (--reason)", max_length=5000)
    if move is Move.ROLLBACK and reason is None:
        raise InvalidInput("a rollback needs a reason (--reason)", code="reason_required")
    async with rt.transaction() as session:
        release = await _lock_release(session, model, version)
        before = ReleaseState(stage=release.stage, status=Status(release.status))
        try:
            after = rt.stage_machine.apply(before, move, target)
        except StageError as exc:
            raise Conflict(f"{ref}: {exc}", code="illegal_stage_move") from exc
        now = rt.clock()
        release.stage = after.stage
        release.status = after.status
        if after.stage != before.stage:
            release.stage_changed_at = now
        session.add(
            StageChange(
                release_id=release.id,
                move=move.value,
                from_stage=before.stage,
                to_stage=after.stage,
                from_status=before.status.value,
                to_status=after.status.value,
                reason=reason,
                actor=actor,
                at=now,
            )
        )
        evidence.record(
            session,
            ev.stage_moved(move, from_=before.stage, to=after.stage, reason=reason),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
    return StageMoved(
        ref=ref,
        move=move.value,
        from_stage=before.stage,
        to_stage=after.stage,
        status=after.status.value,
    )


async def _lock_release(session: AsyncSession, model: ModelRef, version: str) -> Release:
    # FOR UPDATE serialises two operators moving the same release on PostgreSQL;
    # SQLite has one writer at a time anyway.
    release = await session.scalar(
        select(Release)
        .join(Model)
        .where(Model.org == model.org, Model.name == model.name, Release.version == version)
        .with_for_update()
    )
    if release is None:
        raise NotFound(f"no release {model}:{version}", code="release_not_found")
    return release
