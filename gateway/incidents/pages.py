"""Incident pages: the public report form and status page, and the operators' incident
console (/ops/incidents).

The report form needs no sign-in (a signed-in reporter is linked to the report) and is
rate-limited per client address, together with the JSON API. Handlers stay thin: parse,
call the incidents service in the request's unit of work (the same functions the API and
the CLI call), render. Bad input is shown on the page with its 4xx, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from gateway.catalog.service import list_models
from gateway.errors import FieldChecks, GatewayError
from gateway.incidents import reporting, service
from gateway.incidents.deadlines import OVERDUE, REMINDED, REPORTED, report_to_authority
from gateway.web import Limiter, Page, PathStr, Rt, Uow
from gateway.web.forms import field, form_page
from gateway.web.guards import Operator, back_to, requires_operator
from gateway.web.pages import page_numbers
from gateway.web.session import Viewer
from stages.actors import Actor
from stages.incidents import Category, IncidentMove, IncidentStatus, Severity, is_open_incident

Form = URLEncodedBody[dict[str, Any]]
PAGE_SIZE: Final = 50
# The report form lists the catalog's models and releases; beyond this many models the
# list would not be read, and "ORG/NAME" can still be chosen as "not in the list".
CATALOG_LIMIT: Final = 500

CATEGORY_LABELS: Final[Mapping[Category, str]] = {
    Category.MISUSE: "Misuse: use against the license or use guidance",
    Category.SAFETY: "Safety: harmful behaviour of the model in use",
    Category.SECURITY: "Security: a vulnerability in the model, its code or this service",
    Category.LEAK: "Leak: weights shared where they should not be",
    Category.LEGAL: "Legal: a legal claim or request about a release",
    Category.OTHER: "Something else",
}
MOVE_LABELS: Final[Mapping[IncidentMove, str]] = {
    IncidentMove.TRIAGE: "Triage",
    IncidentMove.CONFIRM: "Confirm",
    IncidentMove.DISMISS: "Dismiss",
    IncidentMove.RESOLVE: "Resolve",
}
DONE_LABELS: Final[Mapping[str, str]] = {
    "triage": "the incident is triaged",
    "confirm": "the incident is confirmed; the policy's triggers are in the timeline",
    "dismiss": "the incident is dismissed; the reporter sees the reason",
    "resolve": "the incident is resolved; the reporter sees the resolution",
    "note": "the note is added",
    "link": "the account is linked",
    "authority-report": "the report to the authority is recorded",
}
# Timeline entries that are not moves, as the console says them.
EVENT_LABELS: Final[Mapping[str, str]] = {
    "report": "reported",
    "note": "note",
    "severity": "severity set",
    "assign": "assigned",
    "link_account": "account linked",
    "trigger": "policy trigger",
    "trigger_failed": "policy trigger failed",
    REPORTED: "reported to the authority",
    REMINDED: "reporting deadline near: operators reminded",
    OVERDUE: "reporting deadline passed: operators told",
}

Code = Annotated[str, QueryParameter(description="The tracking code, e.g. INC-7K3Q-9XWD")]
ReleaseQuery = Annotated[str, QueryParameter(description="ORG/NAME or ORG/NAME:VERSION")]
StatusQuery = Annotated[str, QueryParameter(description="open, all, or one status")]
SeverityQuery = Annotated[str, QueryParameter(description="A severity")]
Done = Annotated[str, QueryParameter(description="The step just taken, for the notice")]


def _address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def _links(data: Mapping[str, Any]) -> list[str]:
    return [line.strip() for line in field(data, "links").splitlines() if line.strip()]


async def _report_page(
    uow: Uow,
    viewer: Viewer,
    *,
    values: Mapping[str, Any] | None = None,
    error: GatewayError | None = None,
) -> Template:
    models, _ = await list_models(uow, limit=CATALOG_LIMIT)
    return form_page(
        "incidents/report.html",
        values=values,
        error=error,
        models=models,
        categories=[(c.value, label) for c, label in CATEGORY_LABELS.items()],
        viewer=viewer,
        min_description=reporting.MIN_DESCRIPTION,
        max_description=reporting.MAX_DESCRIPTION,
        max_links=reporting.MAX_LINKS,
    )


@dataclass(frozen=True)
class ConsoleQuery:
    """The console's filters as typed, kept as text to redraw the form and the links."""

    status: str = "open"
    severity: str = ""
    release: str = ""

    def params(self) -> dict[str, str]:
        params = {"severity": self.severity, "release": self.release}
        if self.status != "open":
            params["status"] = self.status
        return {name: value for name, value in params.items() if value}

    def link(self, page: int = 1) -> str:
        params = self.params()
        if page > 1:
            params["page"] = str(page)
        return "/ops/incidents" + (f"?{urlencode(params)}" if params else "")


async def _incident_page(
    uow: Uow,
    incident_ref: str,
    *,
    done: str = "",
    error: GatewayError | None = None,
    step: str = "",
    values: Mapping[str, Any] | None = None,
    triggered: service.Triggered | None = None,
) -> Template:
    detail = await service.get_incident(uow, incident_ref)
    moves = [(move.value, MOVE_LABELS[move]) for move in detail.moves]
    is_open = is_open_incident(IncidentStatus(detail.incident.status))
    forms = {move for move, _ in moves} | {"note"} | ({"link"} if is_open else set())
    if detail.clock is not None:
        forms.add("authority-report")
    return Template(
        "incidents/ops_incident.html",
        context={
            "detail": detail,
            "incident": detail.incident,
            "moves": moves,
            "open": is_open,
            "severities": [s.value for s in Severity],
            "actors": await service.actor_names(uow, [e.actor for e in detail.events]),
            "event_labels": EVENT_LABELS,
            "done": DONE_LABELS.get(done),
            "error": error.message if error else None,
            # An error shows by its form; by the heading when the page has no such form.
            "step": step if step in forms else "",
            "values": values or {},
            "triggered": triggered,
        },
        status_code=error.status if error else 200,
    )


# One posted form per step: (unit, incident, form, operator actor) -> what it did.
_Step = Callable[[Uow, str, Mapping[str, Any], str], Awaitable[service.Triggered | None]]


async def _triage(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.triage(
        uow,
        ref,
        severity=field(data, "severity"),
        assignee=field(data, "assignee") or None,
        note=field(data, "note") or None,
        actor=actor,
    )


async def _confirm(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> service.Triggered:
    return await service.confirm(
        uow, ref, severity=field(data, "severity") or None, note=field(data, "note"), actor=actor
    )


async def _dismiss(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.dismiss(uow, ref, reason=field(data, "reason"), actor=actor)


async def _resolve(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.resolve(uow, ref, note=field(data, "note"), actor=actor)


async def _note(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.add_note(uow, ref, note=field(data, "note"), actor=actor)


async def _link(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> service.Triggered:
    return await service.link_account(uow, ref, field(data, "email"), actor=actor)


async def _authority_report(uow: Uow, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await report_to_authority(
        uow,
        ref,
        authority=field(data, "authority") or None,
        reference=field(data, "reference") or None,
        note=None,
        actor=actor,
    )


STEPS: Final[Mapping[str, _Step]] = {
    "triage": _triage,
    "confirm": _confirm,
    "dismiss": _dismiss,
    "resolve": _resolve,
    "note": _note,
    "link": _link,
    "authority-report": _authority_report,
}


class IncidentPages(Controller):
    include_in_schema = False

    # --- public ------------------------------------------------------------------------

    @get("/report")
    async def report_form(self, uow: Uow, viewer: Viewer, release: ReleaseQuery = "") -> Template:
        return await _report_page(uow, viewer, values={"release": release.strip()})

    @post("/report")
    async def report(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        limiter: Limiter,
        viewer: Viewer,
        data: Form,
    ) -> Template | Redirect:
        checks = FieldChecks()
        subject = checks.check("release", lambda: reporting.parse_subject(field(data, "release")))
        model, version = subject or (None, None)
        try:
            incident = await reporting.report(
                uow,
                model=model,
                version=version,
                category=field(data, "category"),
                description=field(data, "description"),
                links=_links(data),
                contact=field(data, "contact") or None,
                reporter_account_id=viewer.id if viewer else None,
                address=_address(request),
                limiter=limiter,
                checks=checks,
            )
        except GatewayError as exc:
            return await _report_page(uow, viewer, values=data, error=exc)
        # See-other: a reload of the thank-you page must not send the report again.
        return Redirect(f"/report/thanks?code={incident.tracking_code}", status_code=303)

    @get("/report/thanks")
    async def thanks(self, runtime: Rt, code: Code) -> Template | Redirect:
        normal = reporting.normalise_tracking_code(code)
        if normal is None:
            return Redirect("/report/status")
        return Template(
            "incidents/thanks.html",
            context={"code": normal, "status_url": reporting.status_url(runtime, normal)},
        )

    @get("/report/status")
    async def status(self, uow: Uow, code: Code = "") -> Template:
        if not code.strip():
            return form_page("incidents/status.html", public=None)
        try:
            public = await reporting.get_by_code(uow, code)
        except GatewayError as exc:
            return form_page("incidents/status.html", values={"code": code}, error=exc, public=None)
        return form_page("incidents/status.html", values={"code": code}, public=public)

    # --- operators ---------------------------------------------------------------------

    @get("/ops/incidents", guards=[requires_operator])
    async def console(
        self,
        uow: Uow,
        status: StatusQuery = "open",
        severity: SeverityQuery = "",
        release: ReleaseQuery = "",
        page: Page = 1,
    ) -> Template:
        query = ConsoleQuery(status.strip() or "open", severity.strip(), release.strip())
        rows: list[service.IncidentRow] = []
        total = 0
        error: GatewayError | None = None
        try:
            where = service.incident_filter(
                status=query.status, severity=query.severity, release=query.release
            )
        except GatewayError as exc:
            error = exc
        else:
            rows, total = await service.list_incidents(
                uow, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
        pages = max(1, -(-total // PAGE_SIZE))
        return Template(
            "incidents/ops_list.html",
            context={
                "rows": rows,
                "total": total,
                "page": page,
                "pages": pages,
                "page_numbers": page_numbers(page, pages),
                "query": query,
                "statuses": service.STATUS_FILTERS,
                "severities": [s.value for s in Severity],
                "error": error.message if error else None,
            },
            status_code=error.status if error else 200,
        )

    @get("/ops/incidents/{incident_id:str}", guards=[requires_operator])
    async def incident(self, uow: Uow, incident_id: PathStr, done: Done = "") -> Template:
        return await _incident_page(uow, incident_id, done=done)

    @post(
        "/ops/incidents/{incident_id:str}/{step:str}",
        guards=[requires_operator],
        opt=back_to("/ops/incidents/{incident_id}"),
    )
    async def act(
        self,
        uow: Uow,
        operator: Operator,
        incident_id: PathStr,
        step: PathStr,
        data: Form,
    ) -> Template | Redirect:
        take = STEPS.get(step)
        if take is None:
            raise NotFoundException(f"no step {step!r}")
        try:
            await take(uow, incident_id, data, Actor.account(operator.id))
        except GatewayError as exc:
            if exc.code == "incident_not_found":
                raise
            return await _incident_page(uow, incident_id, error=exc, step=step, values=data)
        # The triggers a step sets off run once its unit has committed, before this answer
        # is sent: the page the redirect leads to shows what they did, on the timeline.
        return Redirect(f"/ops/incidents/{incident_id}?done={step}", status_code=303)
