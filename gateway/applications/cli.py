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
from gateway.applications.ops_api import BulkDecisionOut, OpsApplicationOut, QueuePage
from gateway.applications.reviewing import queue_filter
from gateway.applications.service import QueueItem, get_application, list_applications
from gateway.cli.remote import Remote, remote
from gateway.cli.support import fail, in_unit, out, run
from gateway.pagination import MAX_LIMIT as API_MAX_LIMIT
from gateway.runtime import cli_actor
from gateway.web.filters import when
from stages.applications import ApplicationMove, ApplicationStatus

if TYPE_CHECKING:
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
    api = remote()
    if api is not None:
        items, summary = _remote_page(api, status, model, tier, overdue, limit, page)
    else:

        async def call(uow: UnitOfWork) -> tuple[list[QueueItem], int]:
            where = queue_filter(uow.rt, status=status, model=model, tier=tier, overdue=overdue)
            return await list_applications(uow, where, limit=limit, offset=(page - 1) * limit)

        queued, total = run(in_unit(call))
        items = [OpsApplicationOut.queued(item) for item in queued]
        pages = max(1, -(-total // limit))
        summary = f"{total} application{'' if total == 1 else 's'}, page {page} of {pages}."
        if not items and total == 0:
            summary = ""
    if not items:
        out.print(f"No applications on this page. {summary}" if summary else "No applications.")
        return
    table = Table()
    for column in ("id", "applicant", "model", "tier", "status", "submitted", "waiting", "due"):
        table.add_column(column, overflow="fold")
    for application in items:
        review = application.review
        waiting = review is not None and application.status in ("submitted", "under_review")
        due = ("OVERDUE since " if review and review.overdue else "") + (
            when(review.due_at) if review else "-"
        )
        table.add_row(
            application.id,
            application.applicant,
            application.model,
            application.tier,
            application.status,
            when(application.submitted_at),
            f"{review.days_waiting}d" if review and waiting else "-",
            due if waiting else "-",
        )
    out.print(table)
    out.print(summary)


def _remote_page(
    api: Remote,
    status: str | None,
    model: str | None,
    tier: str | None,
    overdue: bool,
    limit: int,
    page: int,
) -> tuple[list[OpsApplicationOut], str]:
    """Page `page` of the queue through the API, whose pages follow cursors."""
    params: dict[str, str | int | bool] = {"status": status or "", "model": model or ""}
    params |= {"tier": tier or "", "overdue": overdue, "limit": min(limit, API_MAX_LIMIT)}
    for number, answer in enumerate(api.pages(QueuePage, "/applications", params), 1):
        if number == page or answer.next_cursor is None:
            more = "; more follow" if answer.next_cursor else ""
            return (answer.items if number == page else []), f"Page {page}{more}."
    raise AssertionError("unreachable: the last page has no next cursor")


@applications.command("show")
@click.argument("application_id")
def applications_show(application_id: str) -> None:
    """Show an application: applicant, answers, license acceptance and timeline."""
    api = remote()
    if api is not None:
        application = api.fetch(OpsApplicationOut, "GET", f"/applications/{application_id}")
    else:

        async def call(uow: UnitOfWork) -> OpsApplicationOut:
            found = await get_application(uow, application_id, owner=None)
            return OpsApplicationOut.full(uow.rt, found)

        application = run(in_unit(call))
    verified = "verified" if application.applicant_verified else "not verified"
    accepted = when(application.accepted_at) if application.accepted_at else "-"
    facts = [
        ("application", application.id),
        ("status", application.status),
        ("model", application.model),
        ("tier", application.tier),
        ("submitted", when(application.submitted_at)),
        ("applicant", f"{application.applicant} ({verified})"),
        ("affiliation", application.affiliation or "-"),
        ("account status", application.account_status),
        ("license sha256", application.license_sha256),
        ("accepted", f"{accepted} from {application.accepted_from or '?'}"),
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
    for answered in application.answered or []:
        out.print(f"  {answered.question}: {answered.answer}")
    out.print("")
    out.print("Timeline")
    for event in application.events or []:
        moved = (
            f"{event.from_status} -> {event.to_status}" if event.from_status else event.to_status
        )
        line = f"  {when(event.at)}  {event.move} by {event.actor}: {moved}"
        out.print(line + (f" ({event.reason})" if event.reason else ""))


def _decide(move: ApplicationMove, ids: Sequence[str], reason: str | None) -> None:
    api = remote()
    if api is not None:
        _decide_remotely(api, move, ids, reason)
        return
    actor = cli_actor()
    if len(ids) == 1:
        # One application: its error keeps its own exit code (3 not found, 4 refused).
        application = run(
            in_unit(lambda uow: decide(uow, ids[0], move, operator=actor, reason=reason))
        )
        out.print(f"Application {application.id} is now {application.status}.")
        return
    results = run(in_unit(lambda uow: decide_many(uow, ids, move, operator=actor, reason=reason)))
    _print_decided([(i, error.message if error else None) for i, error in results])


def _decide_remotely(
    api: Remote, move: ApplicationMove, ids: Sequence[str], reason: str | None
) -> None:
    body = {"decision": move.value, "reason": reason}
    if len(ids) == 1:
        path = f"/applications/{ids[0]}/decision"
        application = api.fetch(OpsApplicationOut, "POST", path, body=body)
        out.print(f"Application {application.id} is now {application.status}.")
        return
    answer = api.fetch(BulkDecisionOut, "POST", "/applications/decisions", body=body | {"ids": ids})
    _print_decided([(item.id, item.message) for item in answer.results])


def _print_decided(results: Sequence[tuple[str, str | None]]) -> None:
    """Each application's outcome; exit 1 when any was refused (with its message)."""
    for application_id, refusal in results:
        out.print(f"{application_id}: {f'refused: {refusal}' if refusal else 'done'}")
    failed = sum(1 for _, refusal in results if refusal)
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
