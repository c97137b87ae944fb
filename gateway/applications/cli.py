"""`gateway applications`: operators read the review queue and decide applications.

The same service functions serve the operator console (/ops), so the two never disagree:
the queue's order, its overdue flags and the moves an operator may make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
from rich.table import Table

from gateway.applications.deciding import decide, decide_many
from gateway.applications.reviewing import answer_rows, form_fields, queue_filter
from gateway.applications.service import QueueItem, get_application, list_applications
from gateway.cli.support import fail, in_unit, out, run
from gateway.runtime import cli_actor
from gateway.web.filters import when
from stages.applications import ApplicationMove, ApplicationStatus

if TYPE_CHECKING:
    from gateway.db.models import Application
    from gateway.db.uow import UnitOfWork

MAX_LIMIT = 500


@click.group()
def applications() -> None:
    """Access applications: the review queue and the operators' decisions."""


@applications.command("list")
@click.option(
    "--status",
    type=click.Choice([status.value for status in ApplicationStatus]),
    help="Only this status (default: everything awaiting review).",
)
@click.option("--model", metavar="ORG/NAME")
@click.option("--tier", metavar="TIER")
@click.option("--overdue", is_flag=True, help="Only applications past their review deadline.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
def applications_list(
    status: str | None, model: str | None, tier: str | None, overdue: bool, limit: int, page: int
) -> None:
    """List applications, oldest first, with their review clocks."""

    async def call(uow: UnitOfWork) -> tuple[list[QueueItem], int]:
        where = queue_filter(uow.rt, status=status, model=model, tier=tier, overdue=overdue)
        return await list_applications(uow, where, limit=limit, offset=(page - 1) * limit)

    items, total = run(in_unit(call))
    pages = max(1, -(-total // limit))
    summary = f"{total} application{'' if total == 1 else 's'}, page {page} of {pages}."
    if not items:
        out.print("No applications." if total == 0 else f"No applications on this page. {summary}")
        return
    table = Table()
    for column in ("id", "applicant", "model", "tier", "status", "submitted", "waiting", "due"):
        table.add_column(column, overflow="fold")
    for item in items:
        application = item.application
        waiting = application.status in ("submitted", "under_review")
        due = ("OVERDUE since " if item.overdue else "") + when(item.due_at)
        table.add_row(
            application.id,
            application.account.email,
            application.model.ref,
            application.tier,
            application.status,
            when(application.submitted_at),
            f"{item.days_waiting}d" if waiting else "-",
            due if waiting else "-",
        )
    out.print(table)
    out.print(summary)


@applications.command("show")
@click.argument("application_id")
def applications_show(application_id: str) -> None:
    """Show an application: applicant, answers, license acceptance and timeline."""

    async def call(uow: UnitOfWork) -> tuple[Application, list[tuple[str, str]]]:
        application = await get_application(uow, application_id, owner=None)
        fields = form_fields(uow.rt, application.tier)
        return application, answer_rows(fields, application.answers)

    application, answers = run(in_unit(call))
    account = application.account
    verified = "verified" if account.email_verified_at else "not verified"
    facts = [
        ("application", application.id),
        ("status", application.status),
        ("model", application.model.ref),
        ("tier", application.tier),
        ("submitted", when(application.submitted_at)),
        ("applicant", f"{account.email} ({verified})"),
        ("affiliation", account.affiliation or "-"),
        ("account status", account.status),
        ("license sha256", application.license_sha256),
        ("accepted", f"{when(application.accepted_at)} from {application.accepted_from or '?'}"),
    ]
    if application.decided_at:
        facts.append(("decided", f"{when(application.decided_at)} by {application.decided_by}"))
    if application.decision_reason:
        facts.append(("reason", application.decision_reason))
    if application.grant_id:
        facts.append(("grant", application.grant_id))
    for name, value in facts:
        out.print(f"{name + ':':<16} {value}")
    out.print("")
    out.print("Answers")
    for question, answer in answers:
        out.print(f"  {question}: {answer}")
    out.print("")
    out.print("Timeline")
    for event in application.events:
        moved = (
            f"{event.from_status} -> {event.to_status}" if event.from_status else event.to_status
        )
        line = f"  {when(event.at)}  {event.move} by {event.actor}: {moved}"
        out.print(line + (f" ({event.reason})" if event.reason else ""))


def _decide(move: ApplicationMove, ids: Sequence[str], reason: str | None) -> None:
    actor = cli_actor()
    if len(ids) == 1:
        # One application: its error keeps its own exit code (3 not found, 4 refused).
        application = run(
            in_unit(lambda uow: decide(uow, ids[0], move, operator=actor, reason=reason))
        )
        out.print(f"Application {application.id} is now {application.status}.")
        return
    results = run(in_unit(lambda uow: decide_many(uow, ids, move, operator=actor, reason=reason)))
    for application_id, error in results:
        out.print(f"{application_id}: {f'refused: {error.message}' if error else 'done'}")
    failed = sum(1 for _, error in results if error)
    if failed:
        fail(f"{failed} of {len(results)} applications were not decided", 1)


@applications.command("approve")
@click.argument("application_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", help="An optional note for the applicant.")
def applications_approve(application_ids: tuple[str, ...], reason: str | None) -> None:
    """Approve applications; each approval issues a grant."""
    _decide(ApplicationMove.APPROVE, application_ids, reason)


@applications.command("deny")
@click.argument("application_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", required=True, help="Why; shown to each applicant.")
def applications_deny(application_ids: tuple[str, ...], reason: str) -> None:
    """Deny applications, with one reason for all of them."""
    _decide(ApplicationMove.DENY, application_ids, reason)


@applications.command("request-changes")
@click.argument("application_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", required=True, help="What the applicant should change.")
def applications_request_changes(application_ids: tuple[str, ...], reason: str) -> None:
    """Ask applicants to change their applications and send them again."""
    _decide(ApplicationMove.REQUEST_CHANGES, application_ids, reason)
