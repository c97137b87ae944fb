"""`gateway incidents`: operators triage incidents and see what the policy's triggers did.

The same service functions serve the operator console (/ops/incidents), so the two never
disagree. Incidents are named by id or by tracking code (INC-XXXX-XXXX).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli.remote import Remote, remote
from gateway.cli.support import UnitOfWork, err, in_unit, out, run
from gateway.incidents import service
from gateway.incidents.deadlines import report_to_authority
from gateway.incidents.ops_api import (
    IncidentDetailOut,
    IncidentOut,
    IncidentPage,
    ReportingOut,
    StepOut,
)
from gateway.staging.cli import actor_for, as_operator
from gateway.web.filters import when
from stages.actors import Actor
from stages.incidents import ClockState, Severity

T = TypeVar("T")

MAX_LIMIT = 500
SEVERITIES = click.Choice([s.value for s in Severity])


@click.group()
def incidents() -> None:
    """Incidents: reports of misuse, safety or security problems, leaks."""


@incidents.command("list")
@click.option(
    "--status",
    type=click.Choice(service.STATUS_FILTERS),
    default="open",
    show_default=True,
    help="open: reported, triaged or confirmed; all: every status.",
)
@click.option("--severity", type=SEVERITIES)
@click.option("--release", metavar="ORG/NAME[:VERSION]", help="Only incidents about this.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
def incidents_list(
    status: str, severity: str | None, release: str | None, limit: int, page: int
) -> None:
    """List incidents, newest first."""
    api = remote()
    if api is not None:
        items, summary = _remote_page(api, status, severity, release, limit, page)
        _print_incidents(items, summary, page)
        return

    async def call(uow: UnitOfWork) -> tuple[list[service.IncidentRow], int]:
        where = service.incident_filter(status=status, severity=severity, release=release)
        return await service.list_incidents(uow, where, limit=limit, offset=(page - 1) * limit)

    rows, total = run(in_unit(call))
    items = [IncidentOut.of(row.incident, row.subject, row.clock) for row in rows]
    pages = max(1, -(-total // limit))
    summary = f"Page {page} of {pages}, {total} incident(s) in all."
    _print_incidents(items, summary if total else None, page)


# The operator API's largest page.
API_MAX_LIMIT = 200


def _remote_page(
    api: Remote, status: str, severity: str | None, release: str | None, limit: int, page: int
) -> tuple[list[IncidentOut], str]:
    """Page `page` of the list through the API, whose pages follow cursors."""
    params: dict[str, str | int | bool] = {"status": status, "severity": severity or ""}
    params |= {"release": release or "", "limit": min(limit, API_MAX_LIMIT)}
    for number, answer in enumerate(api.pages(IncidentPage, "/incidents", params), 1):
        if number == page or answer.next_cursor is None:
            more = "; more follow" if answer.next_cursor else ""
            return (answer.items if number == page else []), f"Page {page}{more}."
    raise AssertionError("unreachable: the last page has no next cursor")


def _print_incidents(items: list[IncidentOut], summary: str | None, page: int) -> None:
    """The table, or why there is none (`summary` None: there are no incidents at all)."""
    if not items:
        out.print("No incidents." if summary is None else f"No incidents on page {page}.")
        return
    table = Table()
    columns = ("code", "id", "about", "category", "status", "severity", "assignee", "reported")
    for column in (*columns, "report by"):
        table.add_column(column, overflow="fold")
    for incident in items:
        table.add_row(
            incident.tracking_code,
            incident.id,
            incident.release or "-",
            incident.category,
            incident.status,
            incident.severity or "-",
            incident.assignee or "-",
            when(incident.reported_at),
            _deadline(incident.reporting),
        )
    out.print(table)
    if summary is not None:
        out.print(summary)


@incidents.command("show")
@click.argument("ref", metavar="ID_OR_CODE")
def incidents_show(ref: str) -> None:
    """Everything about one incident: the report, linked accounts and the timeline."""
    api = remote()
    if api is not None:
        _print_detail(api.fetch(IncidentDetailOut, "GET", f"/incidents/{_ref(ref)}"))
        return
    _print_detail(IncidentDetailOut.of(run(in_unit(lambda uow: service.get_incident(uow, ref)))))


def _ref(ref: str) -> str:
    return quote(ref, safe="")


def _deadline(reporting: ReportingOut | None) -> str:
    """The reporting deadline as a column or a line says it."""
    if reporting is None:
        return "-"
    if reporting.reported_at is not None:
        late = " (late)" if reporting.state == ClockState.REPORTED_LATE else ""
        return f"reported {when(reporting.reported_at)}{late}"
    flag = {ClockState.OVERDUE: " OVERDUE", ClockState.DUE_SOON: " (due soon)"}
    return f"{when(reporting.deadline)}{flag.get(ClockState(reporting.state), '')}"


def _print_detail(detail: IncidentDetailOut) -> None:
    incident = detail.incident
    out.print(f"{incident.tracking_code} ({incident.id})")
    out.print(f"  status:    {incident.status}")
    out.print(f"  severity:  {incident.severity or 'not set'}")
    out.print(f"  assignee:  {incident.assignee or 'nobody'}")
    out.print(f"  about:     {incident.release or 'no model in particular'}")
    out.print(f"  category:  {incident.category}")
    out.print(f"  reported:  {when(incident.reported_at)}")
    if incident.reporting is not None:
        out.print(
            f"  report to: {incident.reporting.authority}, by {_deadline(incident.reporting)}"
        )
    reporter = detail.reporter or "not signed in"
    address = f" from {detail.reporter_address}" if detail.reporter_address else ""
    out.print(f"  reporter:  {reporter}{address}")
    out.print(f"  contact:   {detail.contact or 'none given'}")
    out.print("  description:")
    for line in detail.description.splitlines() or [""]:
        out.print(f"    {line}")
    for link in detail.links:
        out.print(f"  link: {link}")
    for account in detail.linked_accounts:
        out.print(f"  linked account: {account.email} ({account.status})")
    out.print("  timeline:")
    for event in detail.timeline:
        change = (
            f" {event.from_status} → {event.to_status}"
            if event.from_status and event.from_status != event.to_status
            else ""
        )
        note = f": {event.note}" if event.note else ""
        out.print(f"    {when(event.at)} {event.move} by {event.actor}{change}{note}")
    if detail.moves:
        out.print(f"  next: {', '.join(detail.moves)}")


def _remote_step(
    operator: str | None, ref: str, step: str, body: Mapping[str, str | None]
) -> StepOut | None:
    """The step through the operator API under --server (None without it)."""
    api = remote(operator=operator)
    if api is None:
        return None
    return api.fetch(StepOut, "POST", f"/incidents/{_ref(ref)}/{step}", body=dict(body))


def _print_fired(triggers: list[str], trigger_error: str | None) -> None:
    for taken in triggers:
        out.print(f"  trigger fired: {taken}")
    if trigger_error:
        err.print(
            f"warning: the policy's triggers could not all be applied: "
            f"{trigger_error}; the scheduler tries again"
        )


def _step(operator: str | None, step: Callable[[UnitOfWork, Actor], Awaitable[T]]) -> T:
    """One step on an incident, as the named operator, in the command's unit of work."""

    async def call(uow: UnitOfWork) -> T:
        return await step(uow, await actor_for(uow, operator))

    return run(in_unit(call))


def _print_triggered(triggered: service.Triggered) -> None:
    _print_fired(list(triggered.triggers), triggered.trigger_error)


@incidents.command("triage")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--severity", required=True, type=SEVERITIES)
@click.option("--assignee", metavar="EMAIL", help="The operator who looks after it.")
@click.option("--note", help="An internal note.")
@as_operator
def incidents_triage(
    ref: str, severity: str, assignee: str | None, note: str | None, operator: str | None
) -> None:
    """Take a reported incident in: its severity and who looks after it."""
    body = {"severity": severity, "assignee": assignee, "note": note}
    done = _remote_step(operator, ref, "triage", body)
    if done is not None:
        out.print(f"{done.incident.incident.tracking_code} is triaged at {severity} severity.")
        return
    incident = _step(
        operator,
        lambda uow, actor: service.triage(
            uow, ref, severity=severity, assignee=assignee, note=note, actor=actor
        ),
    )
    out.print(f"{incident.tracking_code} is triaged at {severity} severity.")


@incidents.command("confirm")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--severity", type=SEVERITIES, help="Required unless set at triage.")
@click.option("--note", help="An internal note.")
@as_operator
def incidents_confirm(
    ref: str, severity: str | None, note: str | None, operator: str | None
) -> None:
    """Confirm an incident; prints what the policy's triggers did."""
    done = _remote_step(operator, ref, "confirm", {"severity": severity, "note": note})
    if done is not None:
        incident: IncidentOut = done.incident.incident
        triggers, error = done.triggers, done.trigger_error
    else:
        triggered = _step(
            operator,
            lambda uow, actor: service.confirm(uow, ref, severity=severity, note=note, actor=actor),
        )
        incident = IncidentOut.of(triggered.incident, None)
        triggers, error = list(triggered.triggers), triggered.trigger_error
    out.print(f"{incident.tracking_code} is confirmed at {incident.severity} severity.")
    _print_fired(triggers, error)
    if not triggers and not error:
        out.print("  no trigger fired")


@incidents.command("dismiss")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--reason", required=True, help="Shown to the reporter.")
@as_operator
def incidents_dismiss(ref: str, reason: str, operator: str | None) -> None:
    """Close a report without action; the reporter sees the reason."""
    done = _remote_step(operator, ref, "dismiss", {"reason": reason})
    if done is not None:
        out.print(f"{done.incident.incident.tracking_code} is dismissed.")
        return
    incident = _step(
        operator, lambda uow, actor: service.dismiss(uow, ref, reason=reason, actor=actor)
    )
    out.print(f"{incident.tracking_code} is dismissed.")


@incidents.command("resolve")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--note", required=True, help="The resolution, shown to the reporter.")
@as_operator
def incidents_resolve(ref: str, note: str, operator: str | None) -> None:
    """Close a confirmed incident; the reporter sees the resolution."""
    done = _remote_step(operator, ref, "resolve", {"note": note})
    if done is not None:
        out.print(f"{done.incident.incident.tracking_code} is resolved.")
        return
    incident = _step(operator, lambda uow, actor: service.resolve(uow, ref, note=note, actor=actor))
    out.print(f"{incident.tracking_code} is resolved.")


@incidents.command("note")
@click.argument("ref", metavar="ID_OR_CODE")
@click.argument("note")
@as_operator
def incidents_note(ref: str, note: str, operator: str | None) -> None:
    """Add an internal note to the incident's timeline."""
    done = _remote_step(operator, ref, "notes", {"note": note})
    if done is not None:
        out.print(f"Note added to {done.incident.incident.tracking_code}.")
        return
    incident = _step(
        operator, lambda uow, actor: service.add_note(uow, ref, note=note, actor=actor)
    )
    out.print(f"Note added to {incident.tracking_code}.")


@incidents.command("link")
@click.argument("ref", metavar="ID_OR_CODE")
@click.argument("email")
@as_operator
def incidents_link(ref: str, email: str, operator: str | None) -> None:
    """Link an account to an incident; on a confirmed one the triggers apply to it at once."""
    done = _remote_step(operator, ref, "links", {"email": email})
    if done is not None:
        out.print(f"{email} is linked to {done.incident.incident.tracking_code}.")
        _print_fired(done.triggers, done.trigger_error)
        return
    triggered = _step(
        operator, lambda uow, actor: service.link_account(uow, ref, email, actor=actor)
    )
    out.print(f"{email} is linked to {triggered.incident.tracking_code}.")
    _print_triggered(triggered)


@incidents.command("report-authority")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--reference", help="The authority's reference for the report.")
@click.option("--authority", help="Who it was reported to (default: the policy's authority).")
@click.option("--note", help="An internal note.")
@as_operator
def incidents_report_authority(
    ref: str,
    reference: str | None,
    authority: str | None,
    note: str | None,
    operator: str | None,
) -> None:
    """Record a report of the incident to an authority, which stops its reporting clock."""
    body = {"reference": reference, "authority": authority, "note": note}
    done = _remote_step(operator, ref, "authority-reports", body)
    if done is not None:
        incident = done.incident.incident
    else:
        reported = _step(
            operator,
            lambda uow, actor: report_to_authority(
                uow, ref, authority=authority, reference=reference, note=note, actor=actor
            ),
        )
        incident = IncidentOut.of(reported.incident, None, reported.clock)
    clock = incident.reporting
    out.print(
        f"Recorded the report of {incident.tracking_code}"
        + (f" to {clock.authority}: {_deadline(clock)}." if clock is not None else ".")
    )
