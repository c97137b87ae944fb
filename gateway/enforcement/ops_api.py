"""The operator API of enforcement: an account's standing and history, a step against it
(warn, suspend, terminate) or the lift of its suspension, and the appeals: the list
(cursor pages, oldest first, pending by default) and the decisions uphold and overturn.
The same service functions as `gateway enforce` and `gateway appeals`; the acting
operator is the account of the `admin` key, and the actor of the evidence each move
records.

A step's answer says what the policy's ladder suggested before it (`suggested`), as
`gateway enforce` prints it: the choice stays the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Final

from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.api_reference import COMMON, answers
from gateway.enforcement import appeals, history, service
from gateway.errors import InvalidInput
from gateway.keys.auth import AdminDep
from gateway.pagination import DEFAULT_LIMIT
from gateway.web import Cursor, PageLimit, Uow
from policies.enforcement import Suggestion
from stages.actors import Actor
from stages.enforcement import AppealMove, EnforcementStep

if TYPE_CHECKING:
    from gateway.db.models import Appeal, EnforcementAction

Email = Annotated[str, PathParameter(description="The account's email")]
AppealId = Annotated[str, PathParameter(description="The appeal's id")]
LIFT: Final = "lift"
ACTIONS: Final = (*(step.value for step in EnforcementStep), LIFT)


@dataclass(frozen=True)
class ActionOut:
    id: str
    action: str  # warn, suspend or terminate
    reason: str
    incident_id: str | None
    created_at: datetime
    created_by: str  # as stored: `account:<id>`, `cli:user@host`, `system:trigger`
    ends_at: datetime | None  # a suspension's end
    ended_at: datetime | None  # lifted, ran out, overturned or superseded
    appeal_until: datetime

    @classmethod
    def of(cls, action: EnforcementAction) -> ActionOut:
        return cls(
            id=action.id,
            action=action.action,
            reason=action.reason,
            incident_id=action.incident_id,
            created_at=action.created_at,
            created_by=action.created_by,
            ends_at=action.ends_at,
            ended_at=action.ended_at,
            appeal_until=action.appeal_until,
        )


@dataclass(frozen=True)
class AppealOut:
    id: str
    status: str  # pending, upheld or overturned
    statement: str
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None

    @classmethod
    def of(cls, appeal: Appeal) -> AppealOut:
        return cls(
            id=appeal.id,
            status=appeal.status,
            statement=appeal.statement,
            submitted_at=appeal.submitted_at,
            decided_at=appeal.decided_at,
            decided_by=appeal.decided_by,
            decision_reason=appeal.decision_reason,
        )


@dataclass(frozen=True)
class HistoryItemOut:
    action: ActionOut
    in_force: bool  # whether it holds the account in its status now
    may_appeal: bool  # whether the account may still appeal it
    appeal: AppealOut | None


@dataclass(frozen=True)
class SuggestionOut:
    step: str | None  # None: no further step
    reason: str

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionOut:
        step = suggestion.step.value if suggestion.step is not None else None
        return cls(step, suggestion.reason)


@dataclass(frozen=True)
class StandingOut:
    account_id: str
    email: str
    status: str  # active, suspended or terminated
    status_reason: str | None
    suggestion: SuggestionOut  # the ladder's next step
    actions: list[HistoryItemOut]  # every action against the account, newest first

    @classmethod
    def of(cls, shown: history.Standing) -> StandingOut:
        account = shown.account
        return cls(
            account_id=account.id,
            email=account.email,
            status=account.status,
            status_reason=account.status_reason,
            suggestion=SuggestionOut.of(shown.suggestion),
            actions=[
                HistoryItemOut(
                    action=ActionOut.of(record.action),
                    in_force=record.in_force,
                    may_appeal=record.window.may_appeal,
                    appeal=AppealOut.of(record.appeal) if record.appeal else None,
                )
                for record in shown.actions
            ],
        )


@dataclass
class EnforcementIn:
    """`action`: warn, suspend, terminate or lift; `reason` is shown to the account.
    `days` (a suspension's length; default: the policy's suspend_days) and `incident`
    (the incident's id or tracking code this answers) are not for lift."""

    action: str
    reason: str
    days: int | None = None
    incident: str | None = None


@dataclass(frozen=True)
class EnforcementOut:
    action: ActionOut | None  # the action taken; None for a lift
    suggested: SuggestionOut | None  # what the ladder suggested before the step
    standing: StandingOut  # the account after the move


@dataclass(frozen=True)
class AppealRecordOut(AppealOut):
    account_id: str
    account: str  # the appellant's email
    against: ActionOut  # the action appealed

    @classmethod
    def of_record(cls, record: history.AppealRecord) -> AppealRecordOut:
        return cls(
            **AppealOut.of(record.appeal).__dict__,
            account_id=record.account.id,
            account=record.account.email,
            against=ActionOut.of(record.action),
        )


@dataclass(frozen=True)
class AppealPage:
    items: list[AppealRecordOut]
    next_cursor: str | None


@dataclass
class AppealDecisionIn:
    reason: str  # shown to the account


def _actor(admin: AdminDep) -> Actor:
    return Actor.account(admin.account.id)


def _step(action: str) -> EnforcementStep | None:
    """The step asked for; None for a lift; 400 unknown_action for anything else."""
    if action == LIFT:
        return None
    try:
        return EnforcementStep(action)
    except ValueError:
        raise InvalidInput(
            f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}",
            code="unknown_action",
        ) from None


class OpsEnforcementController(Controller):
    path = "/accounts/{email:str}"
    tags = ["operators: accounts"]

    @get(
        "/standing",
        summary="An account's standing: status, the actions against it, the ladder's next step",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def show(self, uow: Uow, admin: AdminDep, email: Email) -> StandingOut:
        return StandingOut.of(await history.standing(uow, email))

    @post(
        "/enforcement",
        summary="Warn, suspend or terminate an account, or lift its suspension, "
        "as `gateway enforce`",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def enforce(
        self, uow: Uow, admin: AdminDep, email: Email, data: JSONBody[EnforcementIn]
    ) -> EnforcementOut:
        step = _step(data.action)
        if step is None:
            if data.days is not None or data.incident is not None:
                raise InvalidInput(
                    "days and incident are for warn, suspend and terminate",
                    code="invalid_request",
                )
            await service.lift(uow, email, data.reason, _actor(admin))
            return EnforcementOut(None, None, StandingOut.of(await history.standing(uow, email)))
        suggestion = await history.suggest(uow, email, incident_id=data.incident)
        action = await service.enforce(
            uow,
            email=email,
            step=step,
            reason=data.reason,
            days=data.days,
            incident_id=data.incident,
            actor=_actor(admin),
        )
        shown = await history.standing(uow, email)
        return EnforcementOut(
            ActionOut.of(action), SuggestionOut.of(suggestion), StandingOut.of(shown)
        )


class OpsAppealsController(Controller):
    path = "/appeals"
    tags = ["operators: accounts"]

    @get(
        "/",
        summary="Appeals, oldest first (default: pending)",
        responses=answers(*COMMON, 401, 403),
    )
    async def listing(
        self,
        uow: Uow,
        admin: AdminDep,
        status: Annotated[
            str, QueryParameter(description="pending, upheld, overturned or all")
        ] = "",
        cursor: Cursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> AppealPage:
        wanted = history.appeal_status_filter(status)
        page = await history.appeals_page(uow, wanted, cursor=cursor, limit=limit)
        return AppealPage([AppealRecordOut.of_record(r) for r in page.items], page.next_cursor)

    @post(
        "/{appeal_id:str}/uphold",
        summary="Uphold the action: the appeal fails and the action stands",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def uphold(
        self, uow: Uow, admin: AdminDep, appeal_id: AppealId, data: JSONBody[AppealDecisionIn]
    ) -> AppealRecordOut:
        return await _decided(uow, admin, appeal_id, AppealMove.UPHOLD, data)

    @post(
        "/{appeal_id:str}/overturn",
        summary="Overturn the action: what it still does to the account is undone",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def overturn(
        self, uow: Uow, admin: AdminDep, appeal_id: AppealId, data: JSONBody[AppealDecisionIn]
    ) -> AppealRecordOut:
        return await _decided(uow, admin, appeal_id, AppealMove.OVERTURN, data)


async def _decided(
    uow: Uow, admin: AdminDep, appeal_id: str, move: AppealMove, data: AppealDecisionIn
) -> AppealRecordOut:
    """The appeal after `move`, as `gateway appeals uphold|overturn` decides it."""
    await appeals.decide_appeal(uow, appeal_id, move, data.reason, _actor(admin))
    return AppealRecordOut.of_record(await history.get_appeal(uow, appeal_id))
