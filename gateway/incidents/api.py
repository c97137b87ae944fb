"""JSON API of incidents: anyone reports one and follows its status by tracking code.

No sign-in is needed. An API key, when sent, links the report to its account (a key
that is revoked or expired is refused rather than silently ignored, so the sender knows).
Reports are rate-limited per client address, shared with the portal's report form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter

from gateway.api_reference import BEARER_OPTIONAL, COMMON, answers
from gateway.incidents import reporting
from gateway.keys.auth import bearer_secret, caller_of
from gateway.keys.service import Unauthenticated, state_of
from gateway.web import Limiter, Uow
from stages.keys import KeyState

TrackingCode = Annotated[str, PathParameter(description="The tracking code, e.g. INC-7K3Q-9XWD")]


@dataclass
class IncidentIn:
    """A report. `release` is `ORG/NAME:VERSION`, or `ORG/NAME` when the version is not
    known, or left out when the report is about no model in particular."""

    category: str
    description: str
    release: str | None = None
    links: list[str] = field(default_factory=list)
    contact: str | None = None


@dataclass(frozen=True)
class ReportedOut:
    tracking_code: str
    status: str
    status_url: str


@dataclass(frozen=True)
class IncidentStatusOut:
    tracking_code: str
    status: str
    meaning: str
    category: str
    release: str | None
    reported_at: datetime
    status_changed_at: datetime
    resolution: str | None

    @classmethod
    def of(cls, public: reporting.PublicStatus) -> IncidentStatusOut:
        return cls(
            tracking_code=public.tracking_code,
            status=public.status,
            meaning=public.meaning,
            category=public.category,
            release=public.subject,
            reported_at=public.reported_at,
            status_changed_at=public.status_changed_at,
            resolution=public.resolution,
        )


async def _reporter(request: Request[Any, Any, State], uow: Uow) -> str | None:
    """The account behind the request's API key, if it sent one."""
    secret = bearer_secret(request, optional=True)
    if secret is None:
        return None
    now = uow.rt.clock()
    caller = await caller_of(uow, secret)
    # Any scope will do: the key only says who reports.
    if state_of(caller.key, now) is not KeyState.ACTIVE:
        raise Unauthenticated(
            "this API key is revoked or expired; send the report with a live key or none",
            code="key_invalid",
        )
    return caller.account.id


class IncidentsController(Controller):
    tags = ["incidents"]

    @post(
        "/api/v1/incidents",
        summary="Report misuse, a safety or security problem, a leak (no sign-in needed)",
        status_code=201,
        security=BEARER_OPTIONAL,
        responses={
            201: ResponseSpec(ReportedOut, description="The report's tracking code"),
            **answers(*COMMON, 401, 429),
        },
    )
    async def report(
        self,
        request: Request[Any, Any, State],
        uow: Uow,
        limiter: Limiter,
        data: JSONBody[IncidentIn],
    ) -> Response[Any]:
        reporter = await _reporter(request, uow)
        model, version = reporting.parse_subject(data.release)
        incident = await reporting.report(
            uow,
            model=model,
            version=version,
            category=data.category,
            description=data.description,
            links=data.links,
            contact=data.contact,
            reporter_account_id=reporter,
            address=request.client.host if request.client else None,
            limiter=limiter,
        )
        out = ReportedOut(
            tracking_code=incident.tracking_code,
            status=incident.status,
            status_url=reporting.status_url(uow.rt, incident.tracking_code),
        )
        return Response(out, status_code=201)

    @get(
        "/api/v1/incidents/{code:str}",
        summary="The status of a report, by its tracking code",
        responses=answers(*COMMON, 404),
    )
    async def status(self, uow: Uow, code: TrackingCode) -> IncidentStatusOut:
        return IncidentStatusOut.of(await reporting.get_by_code(uow, code))
