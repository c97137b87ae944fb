"""`gateway incidents`: operators triage incidents and see what the policy's triggers did.

The same service functions serve the operator console (/ops/incidents), so the two never
disagree. Incidents are named by id or by tracking code (INC-XXXX-XXXX).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from rich.table import Table

from gateway.cli.support import UnitOfWork, err, in_unit, out, run
from gateway.incidents import service
from gateway.staging.cli import actor_for, as_operator
from gateway.web.filters import when
from stages.actors import Actor
from stages.incidents import Severity

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

    async def call(uow: UnitOfWork) -> tuple[list[service.IncidentRow], int]:
        where = service.incident_filter(status=status, severity=severity, release=release)
        return await service.list_incidents(uow, where, limit=limit, offset=(page - 1) * limit)

    rows, total = run(in_unit(call))
    if not rows:
        out.print("No incidents." if total == 0 else f"No incidents on page {page}.")
        return
    table = Table()
    for column in ("code", "id", "about", "category", "status", "severity", "assignee", "reported"):
        table.add_column(column, overflow="fold")
    for row in rows:
        incident = row.incident
        table.add_row(
            incident.tracking_code,
            incident.id,
            row.subject or "-",
            incident.category,
            incident.status,
            incident.severity or "-",
            incident.assignee or "-",
            when(incident.created_at),
        )
    out.print(table)
    pages = max(1, -(-total // limit))
    out.print(f"Page {page} of {pages}, {total} incident(s) in all.")


@incidents.command("show")
@click.argument("ref", metavar="ID_OR_CODE")
def incidents_show(ref: str) -> None:
    """Everything about one incident: the report, linked accounts and the timeline."""

    detail = run(in_unit(lambda uow: service.get_incident(uow, ref)))
    incident = detail.incident
    out.print(f"{incident.tracking_code} ({incident.id})")
    out.print(f"  status:    {incident.status}")
    out.print(f"  severity:  {incident.severity or 'not set'}")
    out.print(f"  assignee:  {incident.assignee or 'nobody'}")
    out.print(f"  about:     {detail.subject or 'no model in particular'}")
    out.print(f"  category:  {incident.category}")
    out.print(f"  reported:  {when(incident.created_at)}")
    reporter = detail.reporter_email or "not signed in"
    address = f" from {incident.reporter_address}" if incident.reporter_address else ""
    out.print(f"  reporter:  {reporter}{address}")
    out.print(f"  contact:   {incident.contact or 'none given'}")
    out.print("  description:")
    for line in incident.description.splitlines() or [""]:
        out.print(f"    {line}")
    for link in detail.links:
        out.print(f"  link: {link}")
    for account in detail.linked:
        out.print(f"  linked account: {account.email} ({account.status})")
    out.print("  timeline:")
    for event in detail.events:
        change = (
            f" {event.from_status} → {event.to_status}"
            if event.from_status and event.from_status != event.to_status
            else ""
        )
        note = f": {event.note}" if event.note else ""
        out.print(f"    {when(event.at)} {event.move} by {event.actor}{change}{note}")
    if detail.moves:
        out.print(f"  next: {', '.join(move.value for move in detail.moves)}")


def _step(operator: str | None, step: Callable[[UnitOfWork, Actor], Awaitable[T]]) -> T:
    """One step on an incident, as the named operator, in the command's unit of work."""

    async def call(uow: UnitOfWork) -> T:
        return await step(uow, await actor_for(uow, operator))

    return run(in_unit(call))


def _print_triggered(triggered: service.Triggered) -> None:
    for taken in triggered.triggers:
        out.print(f"  trigger fired: {taken}")
    if triggered.trigger_error:
        err.print(
            f"warning: the policy's triggers could not all be applied: "
            f"{triggered.trigger_error}; the scheduler tries again"
        )


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

    triggered = _step(
        operator,
        lambda uow, actor: service.confirm(uow, ref, severity=severity, note=note, actor=actor),
    )
    incident = triggered.incident
    out.print(f"{incident.tracking_code} is confirmed at {incident.severity} severity.")
    _print_triggered(triggered)
    if not triggered.triggers and not triggered.trigger_error:
        out.print("  no trigger fired")


@incidents.command("dismiss")
@click.argument("ref", metavar="ID_OR_CODE")
@click.option("--reason", required=True, help="Shown to the reporter.")
@as_operator
def incidents_dismiss(ref: str, reason: str, operator: str | None) -> None:
    """Close a report without action; the reporter sees the reason."""

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

    incident = _step(operator, lambda uow, actor: service.resolve(uow, ref, note=note, actor=actor))
    out.print(f"{incident.tracking_code} is resolved.")


@incidents.command("note")
@click.argument("ref", metavar="ID_OR_CODE")
@click.argument("note")
@as_operator
def incidents_note(ref: str, note: str, operator: str | None) -> None:
    """Add an internal note to the incident's timeline."""

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

    triggered = _step(
        operator, lambda uow, actor: service.link_account(uow, ref, email, actor=actor)
    )
    out.print(f"{email} is linked to {triggered.incident.tracking_code}.")
    _print_triggered(triggered)
