"""JSON API of applications: apply from code with the same validation as the portal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter

from gateway.api_reference import BEARER, COMMON, answers
from gateway.applications import deciding, service, submitting
from gateway.authorised_uses.service import checked_listing
from gateway.catalog.api import model_ref
from gateway.errors import Denied, InvalidInput
from gateway.keys.auth import CallerDep
from gateway.keys.service import Caller, key_facts_of
from gateway.ratelimits import RateLimit
from gateway.web import Limit, Limiter, Name, Offset, Org, Uow
from stages.access import Deny, check_key
from stages.actors import Actor
from stages.applications import ApplicationMove
from stages.names import InvalidName, parse_model_ref

if TYPE_CHECKING:
    from gateway.db.models import Application
    from gateway.db.uow import UnitOfWork

ApplicationId = Annotated[str, PathParameter(description="The application's id")]


@dataclass(frozen=True)
class FieldOut:
    name: str
    label: str
    kind: str
    required: bool
    options: list[str]
    help: str
    max_length: int


@dataclass(frozen=True)
class FormOut:
    model: str
    tier: str
    tier_title: str
    components: list[str]
    grant_days: int
    approval: str
    review_days: int
    fields: list[FieldOut]
    license_sha256: str
    license_text: str
    guidance: str | None
    release: str


@dataclass(frozen=True)
class EventOut:
    at: datetime
    move: str
    from_status: str | None
    to_status: str
    reason: str | None
    by: str  # "you", "operator" or "system"


@dataclass(frozen=True)
class ApplicationOut:
    id: str
    model: str
    tier: str
    status: str
    answers: dict[str, Any]
    license_sha256: str
    accepted_at: datetime
    submitted_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    grant_id: str | None
    events: list[EventOut] | None = None

    @classmethod
    def of(cls, application: Application, *, with_events: bool = False) -> ApplicationOut:
        events = None
        if with_events:
            events = [
                EventOut(
                    at=e.at,
                    move=e.move,
                    from_status=e.from_status,
                    to_status=e.to_status,
                    reason=e.reason,
                    by=Actor.parse(e.actor).as_seen_by(application.account_id),
                )
                for e in application.events
            ]
        return cls(
            id=application.id,
            model=application.model.ref,
            tier=application.tier,
            status=application.status,
            answers=dict(application.answers),
            license_sha256=application.license_sha256,
            accepted_at=application.accepted_at,
            submitted_at=application.submitted_at,
            decided_at=application.decided_at,
            decision_reason=application.decision_reason,
            grant_id=application.grant_id,
            events=events,
        )


@dataclass(frozen=True)
class ApplicationPage:
    items: list[ApplicationOut]
    total: int
    limit: int
    offset: int


@dataclass
class PublicListingIn:
    """What the public list of authorised uses shows once the application is approved."""

    institution: str
    project_title: str
    use_statement: str


@dataclass
class ApplyIn:
    model: str
    tier: str
    license_sha256: str
    answers: dict[str, Any]
    # Given: the applicant agrees to the use being listed at /authorised-uses.
    public_listing: PublicListingIn | None = None


def require_apply(caller: Caller, now: datetime) -> None:
    decision = check_key(key_facts_of(caller.key), now, "apply")
    if isinstance(decision, Deny):
        raise Denied(decision.reason, decision.message)


async def _reload(uow: UnitOfWork, application_id: str, account_id: str) -> ApplicationOut:
    application = await service.get_application(uow, application_id, owner=account_id)
    return ApplicationOut.of(application, with_events=True)


class ApplicationsController(Controller):
    tags = ["applications"]

    @get(
        "/api/v1/models/{org:str}/{name:str}/application-form/{tier:str}",
        summary="The questions and the license to accept for a tier",
        responses=answers(*COMMON, 404),
    )
    async def form(
        self, uow: Uow, org: Org, name: Name, tier: Annotated[str, PathParameter()]
    ) -> FormOut:
        form = await service.application_form(uow, model_ref(org, name), tier)
        return FormOut(
            model=form.model,
            tier=form.tier,
            tier_title=form.tier_title,
            components=form.components,
            grant_days=form.grant_days,
            approval=form.approval,
            review_days=form.rules.review_days,
            fields=[
                FieldOut(
                    f.name, f.label, f.kind.value, f.required, list(f.options), f.help, f.max_length
                )
                for f in form.rules.fields
            ],
            license_sha256=form.license_sha256,
            license_text=form.license_text,
            guidance=form.guidance,
            release=form.release,
        )

    @post(
        "/api/v1/applications",
        summary="Apply for a tier of a model",
        status_code=201,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404, 409, 429),
    )
    async def apply(
        self,
        request: Request[Any, Any, State],
        uow: Uow,
        limiter: Limiter,
        caller: CallerDep,
        data: JSONBody[ApplyIn],
    ) -> ApplicationOut:
        require_apply(caller, uow.rt.clock())
        # The limiter counts in a connection of its own: ours goes back to the pool first.
        await uow.end_read()
        await limiter.take(RateLimit.APPLICATIONS_PER_ACCOUNT, caller.account.id)
        try:
            model = parse_model_ref(data.model)
        except InvalidName as exc:
            raise InvalidInput(str(exc), code="invalid_name") from exc
        given = data.public_listing
        listing = None
        if given is not None:
            listing = checked_listing(given.institution, given.project_title, given.use_statement)
        application = await submitting.submit(
            uow,
            account_id=caller.account.id,
            model=model,
            tier=data.tier,
            answers=data.answers,
            license_sha256=data.license_sha256,
            address=request.client.host if request.client else None,
            listing=listing,
        )
        return await _reload(uow, application.id, caller.account.id)

    @get(
        "/api/v1/applications",
        summary="Your applications, oldest first",
        security=BEARER,
        responses=answers(*COMMON, 401, 403),
    )
    async def list(
        self, uow: Uow, caller: CallerDep, limit: Limit = 50, offset: Offset = 0
    ) -> ApplicationPage:
        require_apply(caller, uow.rt.clock())
        items, total = await service.list_applications(
            uow,
            service.QueueFilter(account_id=caller.account.id),
            limit=limit,
            offset=offset,
        )
        return ApplicationPage(
            items=[ApplicationOut.of(i.application) for i in items],
            total=total,
            limit=limit,
            offset=offset,
        )

    @get(
        "/api/v1/applications/{application_id:str}",
        summary="One of your applications",
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def show(
        self, uow: Uow, caller: CallerDep, application_id: ApplicationId
    ) -> ApplicationOut:
        require_apply(caller, uow.rt.clock())
        return await _reload(uow, application_id, caller.account.id)

    @post(
        "/api/v1/applications/{application_id:str}/withdraw",
        summary="Withdraw one of your applications",
        status_code=200,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def withdraw(
        self, uow: Uow, caller: CallerDep, application_id: ApplicationId
    ) -> ApplicationOut:
        require_apply(caller, uow.rt.clock())
        await deciding.act_as_applicant(
            uow, caller.account.id, application_id, ApplicationMove.WITHDRAW
        )
        return await _reload(uow, application_id, caller.account.id)
