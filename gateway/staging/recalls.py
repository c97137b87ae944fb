"""Recall and reinstatement.

A recall takes effect at once: the access decision reads the release's status (a whole
recall) and its tier recalls on every manifest and every `/d/` request, so URLs already
handed out and downloads in progress stop at their next request. Every affected grantee
is told. Lifting a recall may need several operators' approval, by policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.catalog.repository import release_by_ref, releases_of
from gateway.db.models import Approval, Recall, Release, StageChange
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.staging.repository import (
    grantees_of,
    pending_approvals,
    recalls_in_force,
    use_approvals,
)
from gateway.text import clean_text
from policies.gates import GateReport, evaluate_reinstatement, unmet
from stages import evidence as ev
from stages.names import ModelRef
from stages.release import Move, ReleaseState, StageError, Status


@dataclass(frozen=True)
class RecallOutcome:
    releases: list[str]
    grantees_notified: int
    already: list[str]  # releases where the same recall was already in force


async def _releases(session: AsyncSession, model: ModelRef, version: str | None) -> list[Release]:
    if version is not None:
        return [await release_by_ref(session, model, version, lock=True)]
    found = await releases_of(session, model, lock=True)
    if not found:
        raise NotFound(f"no any release of {model}", code="release_not_found")
    return found


def _move(
    rt: Runtime, session: AsyncSession, release: Release, move: Move, actor: str, reason: str
) -> None:
    before = ReleaseState(stage=release.stage, status=Status(release.status))
    try:
        after = rt.stage_machine.apply(before, move, None)
    except StageError as exc:
        raise Conflict(
            f"{release.model.ref}:{release.version}: {exc}", code="illegal_stage_move"
        ) from exc
    release.status = after.status
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
            at=rt.clock(),
        )
    )


async def recall(
    uow: UnitOfWork,
    model: ModelRef,
    version: str | None,
    *,
    reason: str,
    actor: str,
    tier: str | None = None,
    rule: str | None = None,
) -> RecallOutcome:
    """Stop downloads of a release (or every release of the model), for all tiers or one."""
    reason = clean_text(reason, field="the reason (--reason)", max_length=5000, required=True) or ""
    rt = uow.rt
    if tier is not None and tier not in rt.policy.ladder:
        raise InvalidInput(
            f"unknown tier {tier!r}; tiers are {', '.join(rt.policy.ladder.names)}",
            code="unknown_tier",
        )
    now = rt.clock()
    done: list[str] = []
    already: list[str] = []
    notified: set[str] = set()
    session = await uow.write()
    for release in await _releases(session, model, version):
        ref = f"{release.model.ref}:{release.version}"
        if release.status == "decommissioned":
            if version is not None:
                raise Conflict(f"{ref} is decommissioned", code="illegal_stage_move")
            continue
        in_force = await recalls_in_force(session, release.id)
        if tier is None and release.status == "recalled":
            already.append(ref)
            continue
        if tier is not None and (
            release.status == "recalled" or any(r.tier == tier for r in in_force)
        ):
            already.append(ref)
            continue
        if tier is None:
            _move(rt, session, release, Move.RECALL, actor, reason)
        session.add(
            Recall(
                id=str(uuid.uuid4()),
                release_id=release.id,
                tier=tier,
                reason=reason,
                recalled_at=now,
                recalled_by=actor,
                rule=rule,
            )
        )
        evidence.record(
            session,
            ev.ReleaseRecalled(tier=tier, reason=reason, rule=rule),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
        done.append(ref)
        notified |= await _tell_grantees(rt, session, release, tier, reason)
    return RecallOutcome(releases=done, grantees_notified=len(notified), already=already)


async def _tell_grantees(
    rt: Runtime, session: AsyncSession, release: Release, tier: str | None, reason: str
) -> set[str]:
    told: set[str] = set()
    for grant, account in await grantees_of(session, release.model_id, tier):
        if account.id in told:
            continue
        told.add(account.id)
        scope = f"for the {tier} tier" if tier else "for everyone"
        notify(
            session,
            rt.settings,
            account_id=account.id,
            kind="release.recalled",
            subject=f"{release.model.ref}:{release.version} was recalled",
            body=(
                f"{release.model.ref}:{release.version} was recalled {scope}: downloads have "
                f"stopped, including links already handed out.\nReason: {reason}\n"
                "Please stop using and distributing it until you hear otherwise."
            ),
            link=f"{rt.settings.public_url}/models/{release.model.org}/{release.model.name}",
            now=rt.clock(),
            email=account.email,
            data={
                "release": f"{release.model.ref}:{release.version}",
                "tier": tier,
                "grant": grant.id,
            },
        )
    return told


@dataclass(frozen=True)
class ReinstateOutcome:
    ref: str
    lifted: bool
    report: GateReport

    @property
    def unmet(self) -> list[str]:
        return unmet(self.report)


async def reinstate(
    uow: UnitOfWork, model: ModelRef, version: str, *, actor: str, tier: str | None = None
) -> ReinstateOutcome:
    """Approve lifting a recall; lift it once enough distinct operators agree."""
    rt = uow.rt
    now = rt.clock()
    target = tier or ""
    session = await uow.write()
    (release,) = await _releases(session, model, version)
    ref = f"{release.model.ref}:{release.version}"
    in_force = [r for r in await recalls_in_force(session, release.id) if r.tier == tier]
    if not in_force:
        scope = f"for the {tier} tier" if tier else "of the whole release"
        raise Conflict(f"{ref} has no recall {scope} in force", code="no_recall")
    approvals = await pending_approvals(session, release.id, "reinstate", target) | {actor}
    report = evaluate_reinstatement(rt.policy.reinstate, approvals)
    if not report.all_met:
        session.add(
            Approval(
                release_id=release.id,
                action="reinstate",
                target=target,
                operator=actor,
                approved_at=now,
            )
        )
        evidence.record(
            session,
            ev.ReleaseReinstatementApproved(tier=tier, approvals=tuple(sorted(approvals))),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
        return ReinstateOutcome(ref=ref, lifted=False, report=report)
    await use_approvals(session, release.id, "reinstate", target, now)
    for row in in_force:
        row.lifted_at = now
        row.lifted_by = actor
    if tier is None and release.status == "recalled":
        _move(rt, session, release, Move.REINSTATE, actor, "recall lifted")
    evidence.record(
        session,
        ev.ReleaseReinstated(tier=tier, approvals=tuple(sorted(approvals))),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    return ReinstateOutcome(ref=ref, lifted=True, report=report)
