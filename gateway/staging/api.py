"""The operator API of stages: where a release stands (with the gates of the next stage),
promote, approve a pending promotion, roll back, recall and reinstate. The same service
functions as `gateway stage ...`, `gateway recall` and the console's release page; the
acting operator is the account of the `admin` key, so two operators' approvals are two
people.

A promotion that waits for another operator's approval answers 202 with the approval
recorded; one that is refused with nothing recorded is 409 `gates_unmet`, saying what is
unmet. A reinstatement that needs more approvals answers 202 the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from gateway.api_reference import COMMON, answers
from gateway.catalog.api import model_ref
from gateway.errors import Conflict
from gateway.keys.auth import AdminDep
from gateway.staging.promotion import PromotionOutcome, StageStatus, promote, stage_status
from gateway.staging.recalls import RecallOutcome, ReinstateOutcome, recall, reinstate
from gateway.staging.service import StageMoved, move_release
from gateway.web import Name, Org, Uow, Version
from stages.actors import Actor
from stages.names import ModelRef
from stages.release import Move

if TYPE_CHECKING:
    from policies.gates import GateReport

RELEASE = "/releases/{org:str}/{name:str}/{version:str}"


@dataclass(frozen=True)
class GateOut:
    name: str
    met: bool
    actual: str
    required: str
    detail: str


@dataclass(frozen=True)
class GateReportOut:
    all_met: bool
    approvals_needed: int
    approvals_have: int
    gates: list[GateOut]
    unmet: list[str]

    @classmethod
    def of(cls, report: GateReport) -> GateReportOut:
        return cls(
            all_met=report.all_met,
            approvals_needed=report.approvals_needed,
            approvals_have=report.approvals_have,
            gates=[GateOut(g.name, g.met, g.actual, g.required, g.detail) for g in report.gates],
            unmet=[g.detail for g in report.gates if not g.met],
        )


@dataclass(frozen=True)
class AttachmentOut:
    kind: str
    name: str
    result: str
    attached_at: datetime
    file_name: str | None
    file_size: int | None
    # Submitted by an external evaluator (their actor, `account:<id>`); None: an operator.
    external_evaluator: str | None = None


@dataclass(frozen=True)
class RecallInForceOut:
    tier: str  # a tier, or "all tiers"
    reason: str
    since: datetime


@dataclass(frozen=True)
class StageStatusOut:
    release: str
    stage: str
    status: str
    since: datetime
    days_in_stage: int
    next_stage: str | None
    gates: GateReportOut | None  # the gates of next_stage; None at the widest stage
    approvals: list[str]
    rollback_to: list[str]
    grantees_downloaded: int
    organisations_downloaded: int
    open_incidents: dict[str, int]
    evidence: list[AttachmentOut]
    recalls: list[RecallInForceOut]
    yanked_reason: str | None  # the reason while the release is yanked
    yanked_at: datetime | None
    quarantine_reason: str | None  # the reason while the release is quarantined
    quarantined_at: datetime | None

    @classmethod
    def of(cls, status: StageStatus) -> StageStatusOut:
        return cls(
            release=status.ref,
            stage=status.stage,
            status=status.status,
            since=status.since,
            days_in_stage=status.days_in_stage,
            next_stage=status.next_stage,
            gates=GateReportOut.of(status.report) if status.report else None,
            approvals=sorted(status.approvals),
            rollback_to=list(status.rollback_to),
            grantees_downloaded=status.grantees_downloaded,
            organisations_downloaded=status.organisations_downloaded,
            open_incidents=status.open_incidents,
            evidence=[
                AttachmentOut(
                    kind,
                    label,
                    result,
                    at,
                    file_name=file[0] if file else None,
                    file_size=file[1] if file else None,
                    external_evaluator=evaluator,
                )
                for kind, label, result, at, file, evaluator in status.evidence
            ],
            recalls=[RecallInForceOut(*recalled) for recalled in status.recalls],
            yanked_reason=status.yanked[0] if status.yanked else None,
            yanked_at=status.yanked[1] if status.yanked else None,
            quarantine_reason=status.quarantined[0] if status.quarantined else None,
            quarantined_at=status.quarantined[1] if status.quarantined else None,
        )


@dataclass(frozen=True)
class PromotionOut:
    release: str
    from_stage: str
    target: str
    moved: bool
    overridden: bool
    approval_recorded: bool
    gates: GateReportOut
    message: str

    @classmethod
    def of(cls, outcome: PromotionOutcome) -> PromotionOut:
        if outcome.moved:
            how = " (gates overridden)" if outcome.overridden else ""
            message = f"promoted from {outcome.from_stage} to {outcome.target}{how}"
        else:
            message = outcome.refusal()
        return cls(
            release=outcome.ref,
            from_stage=outcome.from_stage,
            target=outcome.target,
            moved=outcome.moved,
            overridden=outcome.overridden,
            approval_recorded=outcome.approval_recorded,
            gates=GateReportOut.of(outcome.report),
            message=message,
        )


@dataclass
class PromoteIn:
    """`to`: the next stage (default: the one after the current). `override_reason`:
    promote even with unmet gates; the reason is recorded with the unmet gates."""

    to: str | None = None
    override_reason: str | None = None


@dataclass
class RollbackIn:
    to: str
    reason: str


@dataclass(frozen=True)
class StageMovedOut:
    release: str
    move: str
    from_stage: str
    to_stage: str
    status: str

    @classmethod
    def of(cls, moved: StageMoved) -> StageMovedOut:
        return cls(moved.ref, moved.move, moved.from_stage, moved.to_stage, moved.status)


@dataclass
class RecallIn:
    reason: str
    tier: str | None = None  # only this tier; default every tier


@dataclass(frozen=True)
class RecallOut:
    recalled: list[str]
    already_recalled: list[str]
    grantees_notified: int

    @classmethod
    def of(cls, outcome: RecallOutcome) -> RecallOut:
        return cls(outcome.releases, outcome.already, outcome.grantees_notified)


@dataclass
class ReinstateIn:
    tier: str | None = None  # lift the recall of this tier only


@dataclass(frozen=True)
class ReinstateOut:
    release: str
    lifted: bool
    approvals_needed: int
    approvals_have: int
    unmet: list[str]

    @classmethod
    def of(cls, outcome: ReinstateOutcome) -> ReinstateOut:
        report = outcome.report
        return cls(
            outcome.ref,
            outcome.lifted,
            report.approvals_needed,
            report.approvals_have,
            outcome.unmet,
        )


_WAITS = {202: ResponseSpec(None, description="Not done yet: this operator's approval is recorded")}


def _answered(outcome: PromotionOutcome) -> Response[PromotionOut]:
    if outcome.moved:
        return Response(PromotionOut.of(outcome), status_code=200)
    if outcome.approval_recorded:
        return Response(PromotionOut.of(outcome), status_code=202)
    # Nothing was recorded, so nothing is lost by the refusal rolling back.
    raise Conflict(f"{outcome.ref}: {outcome.refusal()}", code="gates_unmet")


class OpsStagesController(Controller):
    tags = ["operators: stages"]

    @get(
        RELEASE + "/stage",
        summary="A release's stage, its evidence and the gates of the next stage",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def status(
        self, uow: Uow, admin: AdminDep, org: Org, name: Name, version: Version
    ) -> StageStatusOut:
        return StageStatusOut.of(await stage_status(uow, model_ref(org, name), version))

    @post(
        RELEASE + "/stage/promote",
        summary="Promote when the gates are met (or overridden with a reason)",
        responses={**_WAITS, **answers(*COMMON, 401, 403, 404, 409)},
    )
    async def promote(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[PromoteIn],
    ) -> Response[PromotionOut]:
        outcome = await promote(
            uow,
            model_ref(org, name),
            version,
            target=data.to,
            actor=Actor.account(admin.account.id),
            override_reason=data.override_reason,
        )
        return _answered(outcome)

    @post(
        RELEASE + "/stage/approve",
        summary="Approve the pending promotion as another operator",
        responses={**_WAITS, **answers(*COMMON, 401, 403, 404, 409)},
    )
    async def approve(
        self, uow: Uow, admin: AdminDep, org: Org, name: Name, version: Version
    ) -> Response[PromotionOut]:
        outcome = await promote(
            uow, model_ref(org, name), version, target=None, actor=Actor.account(admin.account.id)
        )
        return _answered(outcome)

    @post(
        RELEASE + "/stage/rollback",
        summary="Narrow a release back to an earlier stage; wider tiers lose access at once",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def rollback(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[RollbackIn],
    ) -> StageMovedOut:
        moved = await move_release(
            uow,
            model_ref(org, name),
            version,
            Move.ROLLBACK,
            target=data.to,
            actor=Actor.account(admin.account.id),
            reason=data.reason,
        )
        return StageMovedOut.of(moved)

    @post(
        RELEASE + "/recall",
        summary="Recall a release: every download in scope stops at once",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def recall_release(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[RecallIn],
    ) -> RecallOut:
        return await _recall(uow, admin, model_ref(org, name), version, data)

    @post(
        "/models/{org:str}/{name:str}/recall",
        summary="Recall every release of a model",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def recall_model(
        self, uow: Uow, admin: AdminDep, org: Org, name: Name, data: JSONBody[RecallIn]
    ) -> RecallOut:
        return await _recall(uow, admin, model_ref(org, name), None, data)

    @post(
        RELEASE + "/reinstate",
        summary="Approve lifting a recall; lifted once enough operators agree (policy)",
        responses={**_WAITS, **answers(*COMMON, 401, 403, 404, 409)},
    )
    async def reinstate(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[ReinstateIn | None] = None,
    ) -> Response[ReinstateOut]:
        outcome = await reinstate(
            uow,
            model_ref(org, name),
            version,
            tier=data.tier if data else None,
            actor=Actor.account(admin.account.id),
        )
        return Response(ReinstateOut.of(outcome), status_code=200 if outcome.lifted else 202)


async def _recall(
    uow: Uow, admin: AdminDep, model: ModelRef, version: str | None, data: RecallIn
) -> RecallOut:
    outcome = await recall(
        uow,
        model,
        version,
        reason=data.reason,
        tier=data.tier,
        actor=Actor.account(admin.account.id),
    )
    return RecallOut.of(outcome)
