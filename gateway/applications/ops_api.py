"""The operator API of applications: the review queue, one application, and decisions,
one or many at once. The same service functions as the console (/ops) and `gateway
applications`; the acting operator is the account of the `admin` key.

A bulk decision checks the batch as a whole first (a known move, one to 500 ids, a
reason where the move needs one): a bad batch is refused with nothing decided. Then
each application is decided on its own, as in the console: the answer says per id
whether it was decided or why not, and a refused one changes nothing.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.api_reference import COMMON, answers
from gateway.applications import deciding, service
from gateway.applications.reviewing import answer_rows, form_fields, queue_filter
from gateway.keys.auth import AdminDep
from gateway.pagination import DEFAULT_LIMIT
from gateway.web import Cursor, PageLimit, Uow
from stages.actors import Actor

if TYPE_CHECKING:
    from gateway.db.models import Application
    from gateway.runtime import Runtime

ApplicationId = Annotated[str, PathParameter(description="The application's id")]


@dataclass(frozen=True)
class OpsEventOut:
    at: datetime
    move: str
    from_status: str | None
    to_status: str
    reason: str | None
    actor: str  # as stored: `account:<id>`, `cli:user@host`, `system:...`


@dataclass(frozen=True)
class ReviewClockOut:
    due_at: datetime
    overdue: bool
    days_waiting: int


@dataclass(frozen=True)
class AnswerOut:
    question: str  # the form's label for the field
    answer: str  # as the applicant gave it, lists joined


@dataclass(frozen=True)
class OpsApplicationOut:
    id: str
    account_id: str
    applicant: str
    applicant_verified: bool
    affiliation: str | None
    account_status: str
    model: str
    tier: str
    status: str
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    grant_id: str | None
    review: ReviewClockOut | None = None
    answers: dict[str, Any] | None = None
    answered: list[AnswerOut] | None = None  # the answers in the form's order, labelled
    license_sha256: str | None = None
    accepted_at: datetime | None = None
    accepted_from: str | None = None
    events: list[OpsEventOut] | None = None

    @classmethod
    def of(
        cls, application: Application, *, review: ReviewClockOut | None = None
    ) -> OpsApplicationOut:
        return cls(
            id=application.id,
            account_id=application.account_id,
            applicant=application.account.email,
            applicant_verified=application.account.email_verified_at is not None,
            affiliation=application.account.affiliation,
            account_status=application.account.status,
            model=application.model.ref,
            tier=application.tier,
            status=application.status,
            submitted_at=application.submitted_at,
            decided_at=application.decided_at,
            decided_by=application.decided_by,
            decision_reason=application.decision_reason,
            grant_id=application.grant_id,
            review=review,
        )

    @classmethod
    def queued(cls, item: service.QueueItem) -> OpsApplicationOut:
        """An application of the queue, with its review clock."""
        review = ReviewClockOut(item.due_at, item.overdue, item.days_waiting)
        return cls.of(item.application, review=review)

    @classmethod
    def full(cls, rt: Runtime, application: Application) -> OpsApplicationOut:
        listed = cls.of(application)
        labelled = answer_rows(form_fields(rt, application.tier), application.answers)
        return cls(
            **{
                **listed.__dict__,
                "answers": dict(application.answers),
                "answered": [AnswerOut(question, answer) for question, answer in labelled],
                "license_sha256": application.license_sha256,
                "accepted_at": application.accepted_at,
                "accepted_from": application.accepted_from,
                "events": [
                    OpsEventOut(e.at, e.move, e.from_status, e.to_status, e.reason, e.actor)
                    for e in application.events
                ],
            }
        )


@dataclass(frozen=True)
class QueuePage:
    items: list[OpsApplicationOut]
    next_cursor: str | None


@dataclass
class DecisionIn:
    """`decision`: start_review, request_changes, approve or deny; deny and
    request_changes need a `reason` (shown to the applicant)."""

    decision: str
    reason: str | None = None


@dataclass
class BulkDecisionIn:
    """One decision for many applications: approve, deny or request_changes."""

    ids: list[str]
    decision: str
    reason: str | None = None


@dataclass(frozen=True)
class BulkItemOut:
    id: str
    decided: bool
    status: str | None  # the application's status after the call; None: no such application
    error: str | None  # the refusal's code
    message: str | None


@dataclass(frozen=True)
class BulkDecisionOut:
    decision: str
    decided: int
    refused: int
    results: list[BulkItemOut]


def _actor(admin: AdminDep) -> Actor:
    return Actor.account(admin.account.id)


class OpsApplicationsController(Controller):
    path = "/applications"
    tags = ["operators: applications"]

    @get(
        "/",
        summary="The review queue, oldest first (default: awaiting review)",
        responses=answers(*COMMON, 401, 403),
    )
    async def queue(
        self,
        uow: Uow,
        admin: AdminDep,
        status: Annotated[str, QueryParameter(description="An application status")] = "",
        model: Annotated[str, QueryParameter(description="ORG/NAME")] = "",
        tier: Annotated[str, QueryParameter(description="A tier")] = "",
        overdue: Annotated[bool, QueryParameter(description="Only past their deadline")] = False,
        applicant: Annotated[
            str, QueryParameter(description="Part of the applicant's email or name")
        ] = "",
        cursor: Cursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> QueuePage:
        where = queue_filter(
            uow.rt, status=status, model=model, tier=tier, overdue=overdue, applicant=applicant
        )
        page = await service.review_queue_page(uow, where, cursor=cursor, limit=limit)
        return QueuePage([OpsApplicationOut.queued(item) for item in page.items], page.next_cursor)

    @get(
        "/{application_id:str}",
        summary="One application: applicant, answers, license acceptance, timeline",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def show(
        self, uow: Uow, admin: AdminDep, application_id: ApplicationId
    ) -> OpsApplicationOut:
        application = await service.get_application(uow, application_id, owner=None)
        return OpsApplicationOut.full(uow.rt, application)

    @post(
        "/{application_id:str}/decision",
        summary="Decide one application: start_review, request_changes, approve or deny",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def decide(
        self, uow: Uow, admin: AdminDep, application_id: ApplicationId, data: JSONBody[DecisionIn]
    ) -> OpsApplicationOut:
        move = deciding.operator_move(data.decision)
        await deciding.decide(uow, application_id, move, operator=_actor(admin), reason=data.reason)
        application = await service.get_application(uow, application_id, owner=None)
        return OpsApplicationOut.full(uow.rt, application)

    @post(
        "/decisions",
        summary="One decision for many applications; the answer says per id what happened",
        status_code=200,
        responses=answers(*COMMON, 401, 403),
    )
    async def decide_many(
        self, uow: Uow, admin: AdminDep, data: JSONBody[BulkDecisionIn]
    ) -> BulkDecisionOut:
        move = deciding.operator_move(data.decision, deciding.BULK_MOVES)
        results = await deciding.decide_many(
            uow, data.ids, move, operator=_actor(admin), reason=data.reason
        )
        # The same unit: it reads the decisions it made.
        by_id = await service.applications_by_id(uow, [i for i, _ in results])
        items: builtins.list[BulkItemOut] = []
        for application_id, error in results:
            found = by_id.get(application_id)
            items.append(
                BulkItemOut(
                    id=application_id,
                    decided=error is None,
                    status=found.status if found else None,
                    error=error.code if error else None,
                    message=error.message if error else None,
                )
            )
        refused = sum(1 for item in items if not item.decided)
        return BulkDecisionOut(move.value, len(items) - refused, refused, items)
