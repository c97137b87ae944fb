"""The operator API of incidents: the list (cursor pages, the filters of `gateway incidents
list`), one incident with its timeline and linked accounts, and the steps: triage,
confirm, dismiss, resolve, a note, a linked account, a report to an authority (the
reporting deadline each incident carries by its severity). The same service functions as the
console (/ops/incidents) and `gateway incidents`; the acting operator is the account of
the `admin` key.

Confirming an incident, or linking an account to a confirmed one, sets off the policy's
triggers (a recall, a suspension) once the step has committed, before the answer is
sent: the answer says what they did (`triggers`), or why they could not all be applied
(`trigger_error`; the scheduler tries again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from litestar import Controller, MediaType, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response.base import ASGIResponse
from litestar.serialization import encode_json

from gateway.api_reference import COMMON, answers
from gateway.incidents import service
from gateway.incidents.deadlines import ClockReading, report_to_authority
from gateway.keys.auth import AdminDep
from gateway.pagination import DEFAULT_LIMIT
from gateway.web import Cursor, PageLimit, Uow
from stages.actors import Actor

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

    from gateway.db.models import Incident

IncidentRef = Annotated[
    str, PathParameter(description="The incident's id or tracking code (INC-XXXX-XXXX)")
]
STATUS_HELP = "open (reported, triaged or confirmed), all, or one status"


@dataclass(frozen=True)
class ReportingOut:
    """The deadline of reporting the incident to an authority (the policy's [reporting])."""

    authority: str
    deadline: datetime
    state: str  # running, due_soon, overdue, reported, reported_late
    reported_at: datetime | None  # the first report recorded

    @classmethod
    def of(cls, reading: ClockReading | None) -> ReportingOut | None:
        if reading is None:
            return None
        clock = reading.clock
        return cls(clock.authority, clock.deadline, reading.state.value, clock.reported_at)


@dataclass(frozen=True)
class IncidentOut:
    id: str
    tracking_code: str
    release: str | None  # ORG/NAME:VERSION or ORG/NAME; None: about no model in particular
    category: str
    status: str
    severity: str | None
    assignee: str | None
    reported_at: datetime
    updated_at: datetime
    reporting: ReportingOut | None  # None: no deadline (its severity has none, or dismissed)

    @classmethod
    def of(
        cls, incident: Incident, subject: str | None, clock: ClockReading | None = None
    ) -> IncidentOut:
        return cls(
            id=incident.id,
            tracking_code=incident.tracking_code,
            release=subject,
            category=incident.category,
            status=incident.status,
            severity=incident.severity,
            assignee=incident.assignee,
            reported_at=incident.created_at,
            updated_at=incident.updated_at,
            reporting=ReportingOut.of(clock),
        )


@dataclass(frozen=True)
class IncidentPage:
    items: list[IncidentOut]
    next_cursor: str | None


@dataclass(frozen=True)
class IncidentEventOut:
    at: datetime
    move: str
    from_status: str | None
    to_status: str
    actor: str  # as stored: `account:<id>`, `cli:user@host`, `public`, `system:trigger`
    note: str | None


@dataclass(frozen=True)
class LinkedAccountOut:
    id: str
    email: str
    status: str


@dataclass(frozen=True)
class IncidentDetailOut:
    incident: IncidentOut
    description: str
    links: list[str]
    contact: str | None
    reporter: str | None  # the reporter's email; None: not signed in
    reporter_address: str | None
    linked_accounts: list[LinkedAccountOut]
    timeline: list[IncidentEventOut]
    moves: list[str]  # the steps the incident's status allows next

    @classmethod
    def of(cls, detail: service.IncidentDetail) -> IncidentDetailOut:
        incident = detail.incident
        return cls(
            incident=IncidentOut.of(incident, detail.subject, detail.clock),
            description=incident.description,
            links=detail.links,
            contact=incident.contact,
            reporter=detail.reporter_email,
            reporter_address=incident.reporter_address,
            linked_accounts=[LinkedAccountOut(a.id, a.email, a.status) for a in detail.linked],
            timeline=[
                IncidentEventOut(e.at, e.move, e.from_status, e.to_status, e.actor, e.note)
                for e in detail.events
            ],
            moves=[move.value for move in detail.moves],
        )


@dataclass(frozen=True)
class StepOut:
    """The incident after the step, and what the policy's triggers did (confirm, link)."""

    incident: IncidentDetailOut
    triggers: list[str]
    trigger_error: str | None  # why they could not all be applied; the scheduler retries


class _AnsweredAfterCommit(ASGIResponse):
    """A JSON answer rendered as it is sent: after the request's unit has committed and
    its after-commit work (the triggers) has run. A Litestar `Response` is rendered
    before the unit ends, so it could not say what the triggers did."""

    def __init__(self, render: Callable[[], StepOut], *, status_code: int) -> None:
        super().__init__(status_code=status_code, media_type=MediaType.JSON)
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = encode_json(self._render())
        answer = ASGIResponse(body=body, status_code=self.status_code, media_type=MediaType.JSON)
        await answer(scope, receive, send)


@dataclass
class TriageIn:
    """`severity`: low, medium, high or critical; `assignee`: an operator's email."""

    severity: str
    assignee: str | None = None
    note: str | None = None  # internal, never shown to the reporter


@dataclass
class ConfirmIn:
    """`severity` is required unless set at triage."""

    severity: str | None = None
    note: str | None = None


@dataclass
class DismissIn:
    reason: str  # shown to the reporter


@dataclass
class ResolveIn:
    note: str  # the resolution, shown to the reporter


@dataclass
class NoteIn:
    note: str  # internal, never shown to the reporter


@dataclass
class LinkIn:
    email: str  # the account to link, e.g. the grantee whose copy leaked


@dataclass
class AuthorityReportIn:
    """A report made to an authority: `reference` is theirs; `authority` defaults to the
    policy's."""

    reference: str | None = None
    authority: str | None = None
    note: str | None = None


def _actor(admin: AdminDep) -> Actor:
    return Actor.account(admin.account.id)


async def _answered(
    uow: Uow,
    incident: Incident,
    triggered: service.Triggered | None = None,
    *,
    status_code: int = 200,
) -> ASGIResponse:
    """The answer of a step: the incident as the step left it (read in the step's unit),
    and what the triggers did once it committed."""
    detail = IncidentDetailOut.of(await service.get_incident(uow, incident.id))

    def render() -> StepOut:
        if triggered is None:
            return StepOut(detail, [], None)
        return StepOut(detail, list(triggered.triggers), triggered.trigger_error)

    return _AnsweredAfterCommit(render, status_code=status_code)


def _step_answers(status: int, *errors: int) -> dict[int, ResponseSpec]:
    done = ResponseSpec(StepOut, description="The incident after the step; what the triggers did")
    return {status: done, **answers(*COMMON, 401, 403, 404, *errors)}


class OpsIncidentsController(Controller):
    path = "/incidents"
    tags = ["operators: incidents"]

    @get(
        "/",
        summary="Incidents, newest first (default: open ones)",
        responses=answers(*COMMON, 401, 403),
    )
    async def listing(
        self,
        uow: Uow,
        admin: AdminDep,
        status: Annotated[str, QueryParameter(description=STATUS_HELP)] = "open",
        severity: Annotated[str, QueryParameter(description="low, medium, high or critical")] = "",
        release: Annotated[
            str, QueryParameter(description="Only incidents about ORG/NAME or ORG/NAME:VERSION")
        ] = "",
        cursor: Cursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> IncidentPage:
        where = service.incident_filter(status=status, severity=severity, release=release)
        page = await service.incidents_page(uow, where, cursor=cursor, limit=limit)
        return IncidentPage(
            items=[IncidentOut.of(row.incident, row.subject, row.clock) for row in page.items],
            next_cursor=page.next_cursor,
        )

    @get(
        "/{ref:str}",
        summary="One incident: the report, linked accounts, the timeline and the next steps",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def show(self, uow: Uow, admin: AdminDep, ref: IncidentRef) -> IncidentDetailOut:
        return IncidentDetailOut.of(await service.get_incident(uow, ref))

    @post(
        "/{ref:str}/triage",
        summary="Take a reported incident in: its severity and who looks after it",
        status_code=200,
        responses=_step_answers(200, 409),
    )
    async def triage(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[TriageIn]
    ) -> ASGIResponse:
        incident = await service.triage(
            uow,
            ref,
            severity=data.severity,
            assignee=data.assignee,
            note=data.note,
            actor=_actor(admin),
        )
        return await _answered(uow, incident)

    @post(
        "/{ref:str}/confirm",
        summary="Confirm an incident; the answer says what the policy's triggers did",
        status_code=200,
        responses=_step_answers(200, 409),
    )
    async def confirm(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[ConfirmIn | None] = None
    ) -> ASGIResponse:
        body = data or ConfirmIn()
        triggered = await service.confirm(
            uow, ref, severity=body.severity, note=body.note, actor=_actor(admin)
        )
        return await _answered(uow, triggered.incident, triggered)

    @post(
        "/{ref:str}/dismiss",
        summary="Close a report without action; the reporter sees the reason",
        status_code=200,
        responses=_step_answers(200, 409),
    )
    async def dismiss(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[DismissIn]
    ) -> ASGIResponse:
        incident = await service.dismiss(uow, ref, reason=data.reason, actor=_actor(admin))
        return await _answered(uow, incident)

    @post(
        "/{ref:str}/resolve",
        summary="Close a confirmed incident; the reporter sees the resolution",
        status_code=200,
        responses=_step_answers(200, 409),
    )
    async def resolve(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[ResolveIn]
    ) -> ASGIResponse:
        incident = await service.resolve(uow, ref, note=data.note, actor=_actor(admin))
        return await _answered(uow, incident)

    @post(
        "/{ref:str}/notes",
        summary="Add an internal note to the timeline (never shown to the reporter)",
        status_code=201,
        responses=_step_answers(201),
    )
    async def note(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[NoteIn]
    ) -> ASGIResponse:
        incident = await service.add_note(uow, ref, note=data.note, actor=_actor(admin))
        return await _answered(uow, incident, status_code=201)

    @post(
        "/{ref:str}/links",
        summary="Link an account to an open incident; on a confirmed one the triggers "
        "apply to it at once",
        status_code=201,
        responses=_step_answers(201, 409),
    )
    async def link(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[LinkIn]
    ) -> ASGIResponse:
        triggered = await service.link_account(uow, ref, data.email, actor=_actor(admin))
        return await _answered(uow, triggered.incident, triggered, status_code=201)

    @post(
        "/{ref:str}/authority-reports",
        summary="Record a report of the incident to an authority (its reporting deadline)",
        status_code=201,
        responses=_step_answers(201),
    )
    async def authority_report(
        self, uow: Uow, admin: AdminDep, ref: IncidentRef, data: JSONBody[AuthorityReportIn]
    ) -> ASGIResponse:
        done = await report_to_authority(
            uow,
            ref,
            authority=data.authority,
            reference=data.reference,
            note=data.note,
            actor=_actor(admin),
        )
        return await _answered(uow, done.incident, status_code=201)
