"""Incident pages: the public report form and status page, and the operators' incident
console (/ops/incidents).

The report form needs no sign-in (a signed-in reporter is linked to the report) and is
rate-limited per client address, together with the JSON API. Handlers stay thin: parse,
call the incidents service (the same functions the API and the CLI call), render. Bad
input is shown on the page with its 4xx, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.catalog.service import list_models
from gateway.db.models import Account
from gateway.errors import FieldChecks, GatewayError
from gateway.incidents import service
from gateway.runtime import Runtime
from gateway.web import Db, Limiter, Page, PathStr, Rt
from gateway.web.forms import field, form_page
from gateway.web.guards import Operator, back_to, requires_operator
from gateway.web.pages import page_numbers
from gateway.web.session import Viewer
from stages.actors import TRIGGER, Actor, ActorKind
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
}
# Timeline entries that are not moves, as the console says them.
EVENT_LABELS: Final[Mapping[str, str]] = {
    "report": "reported",
    "note": "note",
    "severity": "severity set",
    "assign": "assigned",
    "link_account": "account linked",
    "trigger": "policy trigger",
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
    db: AsyncSession,
    viewer: Account | None,
    *,
    values: Mapping[str, Any] | None = None,
    error: GatewayError | None = None,
) -> Template:
    models, _ = await list_models(db, limit=CATALOG_LIMIT)
    return form_page(
        "incidents/report.html",
        values=values,
        error=error,
        models=models,
        categories=[(c.value, label) for c, label in CATEGORY_LABELS.items()],
        viewer=viewer,
        min_description=service.MIN_DESCRIPTION,
        max_description=service.MAX_DESCRIPTION,
        max_links=service.MAX_LINKS,
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


async def _actor_names(session: AsyncSession, actors: Sequence[str]) -> dict[str, str]:
    """Who each actor of a timeline is, as people read it: accounts by their email."""
    names = {actor: actor for actor in actors}
    names[service.PUBLIC_ACTOR] = "the reporter (not signed in)"
    names[TRIGGER] = "the gateway (policy trigger)"
    ids = {who.id for who in map(Actor.parse, actors) if who.kind is ActorKind.ACCOUNT}
    if ids:
        rows = await session.execute(select(Account.id, Account.email).where(Account.id.in_(ids)))
        names.update({Actor.account(account_id): email for account_id, email in rows.all()})
    return names


async def _incident_page(
    db: AsyncSession,
    incident_ref: str,
    *,
    done: str = "",
    error: GatewayError | None = None,
    step: str = "",
    values: Mapping[str, Any] | None = None,
    triggered: service.Triggered | None = None,
) -> Template:
    detail = await service.get_incident(db, incident_ref)
    moves = [(move.value, MOVE_LABELS[move]) for move in detail.moves]
    is_open = is_open_incident(IncidentStatus(detail.incident.status))
    forms = {move for move, _ in moves} | {"note"} | ({"link"} if is_open else set())
    return Template(
        "incidents/ops_incident.html",
        context={
            "detail": detail,
            "incident": detail.incident,
            "moves": moves,
            "open": is_open,
            "severities": [s.value for s in Severity],
            "actors": await _actor_names(db, [e.actor for e in detail.events]),
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


# One posted form per step: (rt, incident, form, operator actor) -> what it did.
_Step = Callable[[Runtime, str, Mapping[str, Any], str], Awaitable[service.Triggered | None]]


async def _triage(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.triage(
        rt,
        ref,
        severity=field(data, "severity"),
        assignee=field(data, "assignee") or None,
        note=field(data, "note") or None,
        actor=actor,
    )


async def _confirm(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> service.Triggered:
    return await service.confirm(
        rt, ref, severity=field(data, "severity") or None, note=field(data, "note"), actor=actor
    )


async def _dismiss(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.dismiss(rt, ref, reason=field(data, "reason"), actor=actor)


async def _resolve(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.resolve(rt, ref, note=field(data, "note"), actor=actor)


async def _note(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> None:
    await service.add_note(rt, ref, note=field(data, "note"), actor=actor)


async def _link(rt: Runtime, ref: str, data: Mapping[str, Any], actor: str) -> service.Triggered:
    return await service.link_account(rt, ref, field(data, "email"), actor=actor)


STEPS: Final[Mapping[str, _Step]] = {
    "triage": _triage,
    "confirm": _confirm,
    "dismiss": _dismiss,
    "resolve": _resolve,
    "note": _note,
    "link": _link,
}


class IncidentPages(Controller):
    include_in_schema = False

    # --- public ------------------------------------------------------------------------

    @get("/report")
    async def report_form(self, db: Db, viewer: Viewer, release: ReleaseQuery = "") -> Template:
        return await _report_page(db, viewer, values={"release": release.strip()})

    @post("/report")
    async def report(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        runtime: Rt,
        limiter: Limiter,
        viewer: Viewer,
        data: Form,
    ) -> Template | Redirect:
        checks = FieldChecks()
        subject = checks.check("release", lambda: service.parse_subject(field(data, "release")))
        model, version = subject or (None, None)
        try:
            incident = await service.report(
                runtime,
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
            return await _report_page(db, viewer, values=data, error=exc)
        # See-other: a reload of the thank-you page must not send the report again.
        return Redirect(f"/report/thanks?code={incident.tracking_code}", status_code=303)

    @get("/report/thanks")
    async def thanks(self, runtime: Rt, code: Code) -> Template | Redirect:
        normal = service.normalise_tracking_code(code)
        if normal is None:
            return Redirect("/report/status")
        return Template(
            "incidents/thanks.html",
            context={"code": normal, "status_url": service.status_url(runtime, normal)},
        )

    @get("/report/status")
    async def status(self, db: Db, code: Code = "") -> Template:
        if not code.strip():
            return form_page("incidents/status.html", public=None)
        try:
            public = await service.get_by_code(db, code)
        except GatewayError as exc:
            return form_page("incidents/status.html", values={"code": code}, error=exc, public=None)
        return form_page("incidents/status.html", values={"code": code}, public=public)

    # --- operators ---------------------------------------------------------------------

    @get("/ops/incidents", guards=[requires_operator])
    async def console(
        self,
        db: Db,
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
                db, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
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
    async def incident(self, db: Db, incident_id: PathStr, done: Done = "") -> Template:
        return await _incident_page(db, incident_id, done=done)

    @post(
        "/ops/incidents/{incident_id:str}/{step:str}",
        guards=[requires_operator],
        opt=back_to("/ops/incidents/{incident_id}"),
    )
    async def act(
        self,
        db: Db,
        runtime: Rt,
        operator: Operator,
        incident_id: PathStr,
        step: PathStr,
        data: Form,
    ) -> Template | Redirect:
        take = STEPS.get(step)
        if take is None:
            raise NotFoundException(f"no step {step!r}")
        try:
            triggered = await take(runtime, incident_id, data, Actor.account(operator.id))
        except GatewayError as exc:
            if exc.code == "incident_not_found":
                raise
            return await _incident_page(db, incident_id, error=exc, step=step, values=data)
        if triggered is not None and triggered.trigger_error:
            # Shown at once rather than after a redirect: the operator must see it.
            return await _incident_page(db, incident_id, done=step, triggered=triggered)
        return Redirect(f"/ops/incidents/{incident_id}?done={step}", status_code=303)
