"""Promote and roll back releases through the stage machine.

The machine in `stages/` decides what is legal; this module loads the release, applies
the move, and saves the new state with its stage-change row and evidence in the caller's
unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway import evidence
from gateway.catalog.repository import every_release, release_by_ref
from gateway.db.models import Release, StageChange
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput
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
    uow: UnitOfWork,
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
    rt = uow.rt
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
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


async def list_releases(uow: UnitOfWork) -> Sequence[Release]:
    """Every release with its model, for the console's list: by model, newest first."""
    return await every_release(uow.session)
