"""Promotion through evidence gates, with approvals by distinct operators.

`promote` judges the policy's gate for the next stage against the evidence. When a gate
asks for approvals, running the command records the operator's approval; the promotion
happens once every gate is met, which may be at a second operator's `approve`. One
operator approving twice still counts once. `--override` promotes regardless and records
which gates were unmet and why they were overridden.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from gateway import evidence
from gateway.catalog.repository import release_by_ref
from gateway.db.models import Approval, EvidenceAttachment, Release, StageChange
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, StorageUnavailable
from gateway.runtime import Runtime
from gateway.staging.evidence_files import EvidenceFile
from gateway.staging.repository import (
    attachments,
    downloaders,
    open_incidents,
    pending_approvals,
    promotion_facts,
    recalls_in_force,
    use_approvals,
)
from gateway.storage import StorageError
from gateway.text import clean_text
from policies.gate_loader import is_evidence_label
from policies.gates import GateReport, evaluate_gates, unmet
from stages import evidence as ev
from stages.names import ModelRef
from stages.release import Move, ReleaseState, StageError, Status


@dataclass(frozen=True)
class PromotionOutcome:
    ref: str
    from_stage: str
    target: str
    moved: bool
    overridden: bool
    report: GateReport
    approvals: frozenset[str]
    # A refused promotion may still have recorded this operator's approval, or found it
    # recorded by an earlier run: the answer says which, so no one approves in the dark.
    approval_recorded: bool = False
    approved_before: bool = False

    @property
    def unmet(self) -> list[str]:
        return unmet(self.report)

    def refusal(self) -> str:
        """What a promotion that did not happen says: the approval, then what it waits for."""
        waits = "; ".join(self.unmet)
        counted = f"({self.report.approvals_have} of {self.report.approvals_needed})"
        if self.approval_recorded:
            return f"approval recorded {counted}; promotion to {self.target} waits for: {waits}"
        if self.approved_before:
            return (
                f"not promoted to {self.target}; your approval was already recorded "
                f"{counted}; promotion waits for: {waits}"
            )
        return f"not promoted to {self.target}; unmet: {waits}"


def _next_stage(rt: Runtime, release: Release) -> str:
    ref = f"{release.model.ref}:{release.version}"
    try:
        following = rt.stage_machine.next_stage(release.stage)
    except StageError as exc:
        raise Conflict(f"{ref}: {exc}", code="illegal_stage_move") from exc
    if following is None:
        raise Conflict(
            f"{ref} is already at the widest stage, {release.stage}", code="illegal_stage_move"
        )
    return following


async def promote(
    uow: UnitOfWork,
    model: ModelRef,
    version: str,
    *,
    target: str | None,
    actor: str,
    override_reason: str | None = None,
) -> PromotionOutcome:
    """Approve and, when every gate is met (or overridden), promote to the next stage."""
    override_reason = clean_text(override_reason, field="the override reason", max_length=5000)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
    ref = f"{release.model.ref}:{release.version}"
    following = _next_stage(rt, release)
    target = target or following
    before = ReleaseState(stage=release.stage, status=Status(release.status))
    try:
        after = rt.stage_machine.apply(before, Move.PROMOTE, target)
    except StageError as exc:
        raise Conflict(f"{ref}: {exc}", code="illegal_stage_move") from exc
    facts = await promotion_facts(session, release, target, actor, now)
    report = evaluate_gates(rt.policy.gate_rules(target), facts, now)
    already = await pending_approvals(session, release.id, "promote", target)
    recorded = actor not in already and report.approvals_needed > 1
    if recorded:
        session.add(
            Approval(
                release_id=release.id,
                action="promote",
                target=target,
                operator=actor,
                approved_at=now,
            )
        )
        evidence.record(
            session,
            ev.ReleasePromotionApproved(
                target=target,
                approvals=tuple(sorted(facts.approvals)),
                needed=report.approvals_needed,
            ),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
    moved = report.all_met or override_reason is not None
    if moved:
        await use_approvals(session, release.id, "promote", target, now)
        release.stage = after.stage
        release.stage_changed_at = now
        session.add(
            StageChange(
                release_id=release.id,
                move=Move.PROMOTE.value,
                from_stage=before.stage,
                to_stage=after.stage,
                from_status=before.status.value,
                to_status=after.status.value,
                reason=override_reason or "gates met",
                actor=actor,
                at=now,
            )
        )
        evidence.record(
            session,
            ev.StagePromoted(
                from_=before.stage,
                to=after.stage,
                approvals=tuple(sorted(facts.approvals)),
                gates=tuple(
                    ev.GateResult(gate=g.name, met=g.met, actual=g.actual, required=g.required)
                    for g in report.gates
                ),
                override=override_reason is not None and not report.all_met,
                override_reason=override_reason,
                unmet=tuple(unmet(report)),
            ),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
    return PromotionOutcome(
        ref=ref,
        from_stage=before.stage,
        target=target,
        moved=moved,
        overridden=moved and not report.all_met,
        report=report,
        approvals=facts.approvals,
        approval_recorded=recorded and not moved,
        approved_before=actor in already,
    )


@dataclass(frozen=True)
class StageStatus:
    ref: str
    stage: str
    status: str
    since: datetime
    days_in_stage: int
    next_stage: str | None
    report: GateReport | None
    grantees_downloaded: int
    organisations_downloaded: int
    open_incidents: dict[str, int]
    # (kind, name, result, attached at, (file name, size) of the attached file or None)
    # (kind, name, result, when, (file name, size) or None, the external evaluator or None)
    evidence: list[tuple[str, str, str, datetime, tuple[str, int] | None, str | None]]
    recalls: list[tuple[str, str, datetime]]  # (tier or "all tiers", reason, since)
    approvals: frozenset[str]
    # The stages a rollback may go to now, narrowest first: none at draft or unless active.
    rollback_to: tuple[str, ...] = ()
    yanked: tuple[str, datetime] | None = None  # (reason, since) while yanked
    quarantined: tuple[str, datetime] | None = None  # (reason, since) while quarantined


async def stage_status(uow: UnitOfWork, model: ModelRef, version: str) -> StageStatus:
    """Where a release stands and what is between it and the next stage."""
    rt = uow.rt
    now = rt.clock()
    session = uow.session
    release = await release_by_ref(session, model, version)
    stages = rt.stage_machine.stages
    index = stages.index(release.stage)
    following = stages[index + 1] if index + 1 < len(stages) else None
    report = None
    approvals: frozenset[str] = frozenset()
    if following is not None:
        facts = await promotion_facts(session, release, following, None, now)
        approvals = facts.approvals
        report = evaluate_gates(rt.policy.gate_rules(following), facts, now)
    grantees, organisations = await downloaders(session, release)
    incidents = await open_incidents(session, release.id)
    docs = await attachments(session, release.id)
    recalls = await recalls_in_force(session, release.id)
    return StageStatus(
        ref=f"{release.model.ref}:{release.version}",
        stage=release.stage,
        status=release.status,
        since=release.stage_changed_at,
        days_in_stage=max(0, (now - release.stage_changed_at).days),
        next_stage=following,
        report=report,
        grantees_downloaded=grantees,
        organisations_downloaded=organisations,
        open_incidents={s.value: n for s, n in sorted(incidents.items(), key=lambda i: i[0].rank)},
        evidence=[
            (
                a.kind,
                a.name,
                a.result,
                a.attached_at,
                _shown_file(a),
                a.attached_by if a.external else None,
            )
            for a in docs
        ],
        recalls=[(r.tier or "all tiers", r.reason, r.recalled_at) for r in recalls],
        approvals=approvals,
        rollback_to=_rollback_targets(rt, release),
        yanked=((release.yanked_reason or "", release.yanked_at) if release.yanked_at else None),
        quarantined=(
            (release.quarantine_reason or "", release.quarantined_at)
            if release.quarantined_at
            else None
        ),
    )


def _rollback_targets(rt: Runtime, release: Release) -> tuple[str, ...]:
    state = ReleaseState(stage=release.stage, status=Status(release.status))
    legal = {
        target for move, target in rt.stage_machine.legal_moves(state) if move is Move.ROLLBACK
    }
    return tuple(stage for stage in rt.stage_machine.stages if stage in legal)


def _shown_file(attachment: EvidenceAttachment) -> tuple[str, int] | None:
    if attachment.file_name is None:
        return None
    return attachment.file_name, attachment.file_size or 0


async def attach_evidence(
    uow: UnitOfWork,
    model: ModelRef,
    version: str,
    *,
    kind: str,
    name: str,
    result: str,
    file: EvidenceFile | None,
    note: str | None,
    actor: str,
    external: bool = False,
) -> EvidenceAttachment:
    """Attach a document (an evaluation report, say) to a release as promotion evidence
    (`external`: from an external evaluator, attributed to them as `actor`).

    The file, if any, is stored before anything is recorded; a store that fails raises
    StorageUnavailable and records nothing.
    """
    for label, value, longest in (("kind", kind, 64), ("name", name, 200), ("result", result, 64)):
        if len(value) > longest:
            raise InvalidInput(f"{label} is at most {longest} characters", code="invalid_evidence")
        if not is_evidence_label(value):
            raise InvalidInput(
                f"{label} {value!r}: expected lower-case letters, digits, '.', '_' or '-'",
                code="invalid_evidence",
            )
    note = clean_text(note, field="the note", max_length=5000)
    rt = uow.rt
    # Read first, so that an unknown release stores no file either.
    release = await release_by_ref(uow.session, model, version)
    stored = None
    if file is not None:
        file.check()
        try:
            stored = await asyncio.to_thread(rt.storage.put_bytes, file.content)
        except StorageError as exc:
            raise StorageUnavailable(f"storing {file.name}: {exc}") from exc
    now = rt.clock()
    session = await uow.write()
    row = EvidenceAttachment(
        id=str(uuid.uuid4()),
        release_id=release.id,
        kind=kind,
        name=name,
        result=result,
        file_name=file.name if file else None,
        file_sha256=stored.sha256 if stored else None,
        file_size=stored.size if stored else None,
        note=note,
        attached_by=actor,
        attached_at=now,
        external=external,
    )
    session.add(row)
    evidence.record(
        session,
        ev.EvidenceAttached(
            kind=kind,
            name=name,
            result=result,
            file_sha256=row.file_sha256,
            file_name=row.file_name,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    return row
