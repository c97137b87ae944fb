"""`gateway enforce` and `gateway appeals`: operators act on accounts and decide appeals.

`enforce` prints the policy ladder's suggestion before it acts, and says so when the
operator chose another step; the choice stays the operator's. The same service functions
serve the operator console, so the two never disagree.
"""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli.remote import Remote, remote
from gateway.cli.support import UnitOfWork, in_unit, out, run
from gateway.enforcement.appeals import decide_appeal
from gateway.enforcement.history import (
    APPEAL_STATUS_FILTERS,
    appeal_status_filter,
    describe_step,
    list_appeals,
    standing,
    suggest,
)
from gateway.enforcement.ops_api import (
    ActionOut,
    AppealPage,
    AppealRecordOut,
    EnforcementOut,
    HistoryItemOut,
    StandingOut,
    SuggestionOut,
)
from gateway.enforcement.service import enforce, lift
from gateway.runtime import cli_actor
from gateway.web.filters import when
from stages.enforcement import AppealMove, AppealStatus, EnforcementStep

LIFT = "lift"
SHOW = "show"
_CHOICES = [*(step.value for step in EnforcementStep), LIFT, SHOW]


def _suggestion_line(suggestion: SuggestionOut) -> str:
    if suggestion.step is None:
        return f"Policy suggests: no further step ({suggestion.reason})."
    return f"Policy suggests: {suggestion.step} ({suggestion.reason})."


@click.command("enforce")
@click.argument("email", metavar="ACCOUNT")
@click.argument("what", metavar="warn|suspend|terminate|lift|show", type=click.Choice(_CHOICES))
@click.option("--reason", help="Why; shown to the account. Required except for show.")
@click.option(
    "--days",
    type=click.IntRange(1),
    help="Length of a suspension (default: the policy's suspend_days).",
)
@click.option("--incident", "incident_id", metavar="ID", help="The incident this answers.")
def enforce_command(
    email: str, what: str, reason: str | None, days: int | None, incident_id: str | None
) -> None:
    """Warn, suspend or terminate an account, or lift its suspension; `show` prints its
    standing and the policy's suggested next step without acting.

    A suspended account's grants, keys and download links stop at once, including links
    already handed out, and it cannot apply; a terminated one is also barred from
    applying again. The account is told, with the reason and how to appeal.
    """
    if what != SHOW and (not reason or not reason.strip()):
        raise click.UsageError(f"--reason is required to {what}; it is shown to the account")
    if what == LIFT and (days is not None or incident_id is not None):
        raise click.UsageError("--days and --incident are for warn, suspend and terminate")
    api = remote()
    if api is not None:
        _enforce_remotely(api, email, what, reason or "", days, incident_id)
        return
    if what == SHOW:
        _show(StandingOut.of(run(in_unit(lambda uow: standing(uow, email)))))
        return
    assert reason is not None
    if what == LIFT:
        account = run(in_unit(lambda uow: lift(uow, email, reason, cli_actor())))
        out.print(f"The suspension of {account.email} is lifted; the account is {account.status}.")
        return
    step = EnforcementStep(what)

    async def call(uow: UnitOfWork) -> str:
        suggestion = SuggestionOut.of(await suggest(uow, email, incident_id=incident_id))
        out.print(_suggestion_lines(suggestion, step))
        action = await enforce(
            uow,
            email=email,
            step=step,
            reason=reason,
            days=days,
            incident_id=incident_id,
            actor=cli_actor(),
        )
        return _done(email, ActionOut.of(action))

    out.print(run(in_unit(call)))


def _enforce_remotely(
    api: Remote, email: str, what: str, reason: str, days: int | None, incident: str | None
) -> None:
    account = f"/accounts/{quote(email, safe='@')}"
    if what == SHOW:
        _show(api.fetch(StandingOut, "GET", f"{account}/standing"))
        return
    body = {"action": what, "reason": reason, "days": days, "incident": incident}
    answer = api.fetch(EnforcementOut, "POST", f"{account}/enforcement", body=body)
    if answer.action is None:
        shown = answer.standing
        out.print(f"The suspension of {shown.email} is lifted; the account is {shown.status}.")
        return
    if answer.suggested is not None:
        out.print(_suggestion_lines(answer.suggested, EnforcementStep(what)))
    out.print(_done(email, answer.action))


def _suggestion_lines(suggestion: SuggestionOut, step: EnforcementStep) -> str:
    """What the ladder suggested, and a note when the operator chose another step."""
    line = _suggestion_line(suggestion)
    if suggestion.step is not None and suggestion.step != step.value:
        line += f"\nNote: you chose {step}, not the suggested {suggestion.step}."
    return line


def _done(email: str, action: ActionOut) -> str:
    if action.action == EnforcementStep.SUSPEND.value:
        assert action.ends_at is not None
        done = f"{email} is suspended until {when(action.ends_at)}"
    elif action.action == EnforcementStep.TERMINATE.value:
        done = f"{email} is terminated"
    else:
        done = f"{email} is warned"
    return f"{done} (action {action.id}); it may appeal until {when(action.appeal_until)}."


def _show(shown: StandingOut) -> None:
    status = shown.status + (f" ({shown.status_reason})" if shown.status_reason else "")
    out.print(f"{'account:':<10} {shown.email}")
    out.print(f"{'status:':<10} {status}")
    out.print(_suggestion_line(shown.suggestion))
    if not shown.actions:
        out.print("No enforcement actions.")
        return
    table = Table()
    for column in ("id", "action", "taken", "until", "reason", "appeal"):
        table.add_column(column, overflow="fold")
    for record in shown.actions:
        action = record.action
        table.add_row(
            action.id,
            describe_step(action.action) + (" (in force)" if record.in_force else ""),
            f"{when(action.created_at)} by {action.created_by}",
            _until(record),
            action.reason,
            record.appeal.status if record.appeal else "-",
        )
    out.print(table)


def _until(record: HistoryItemOut) -> str:
    action = record.action
    if action.ended_at is not None:
        return f"ended {when(action.ended_at)}"
    if action.ends_at is not None:
        return when(action.ends_at)
    return "-"


@click.group()
def appeals() -> None:
    """Appeals against enforcement actions, and the operators' decisions."""


@appeals.command("list")
@click.option(
    "--status",
    type=click.Choice(APPEAL_STATUS_FILTERS),
    default=AppealStatus.PENDING.value,
    show_default=True,
)
def appeals_list(status: str) -> None:
    """List appeals, oldest first."""
    wanted = appeal_status_filter(status)
    api = remote()
    if api is not None:
        records = _remote_appeals(api, status)
    else:
        found = run(in_unit(lambda uow: list_appeals(uow, wanted)))
        records = [AppealRecordOut.of_record(record) for record in found]
    if not records:
        out.print("No appeals." if wanted is None else f"No {wanted} appeals.")
        return
    table = Table()
    for column in ("id", "account", "action", "taken", "reason", "statement", "submitted"):
        table.add_column(column, overflow="fold")
    if wanted is not AppealStatus.PENDING:
        table.add_column("decision", overflow="fold")
    for record in records:
        row = [
            record.id,
            record.account,
            describe_step(record.against.action),
            when(record.against.created_at),
            record.against.reason,
            record.statement,
            when(record.submitted_at),
        ]
        if wanted is not AppealStatus.PENDING:
            row.append(_decision(record))
        table.add_row(*row)
    out.print(table)


def _remote_appeals(api: Remote, status: str) -> list[AppealRecordOut]:
    """Every appeal of `status`."""
    params: dict[str, str | int | bool] = {"status": status, "limit": 200}
    return [record for page in api.pages(AppealPage, "/appeals", params) for record in page.items]


def _decision(record: AppealRecordOut) -> str:
    if record.status == AppealStatus.PENDING.value:
        return "pending"
    return f"{record.status} by {record.decided_by}: {record.decision_reason}"


def _decide(move: AppealMove, appeal_id: str, reason: str) -> None:
    api = remote()
    if api is not None:
        path = f"/appeals/{quote(appeal_id, safe='')}/{move.value}"
        remote_decided = api.fetch(AppealRecordOut, "POST", path, body={"reason": reason})
        out.print(f"Appeal {remote_decided.id} decided: the action is {remote_decided.status}.")
        return
    decided = run(in_unit(lambda uow: decide_appeal(uow, appeal_id, move, reason, cli_actor())))
    out.print(f"Appeal {decided.id} decided: the action is {decided.status}.")


@appeals.command("uphold")
@click.argument("appeal_id", metavar="ID")
@click.option("--reason", required=True, help="Why; shown to the account.")
def appeals_uphold(appeal_id: str, reason: str) -> None:
    """Uphold the action: the appeal fails and the action stands."""
    _decide(AppealMove.UPHOLD, appeal_id, reason)


@appeals.command("overturn")
@click.argument("appeal_id", metavar="ID")
@click.option("--reason", required=True, help="Why; shown to the account.")
def appeals_overturn(appeal_id: str, reason: str) -> None:
    """Overturn the action: a suspension still running is lifted, a termination undone,
    and the action no longer counts on the enforcement ladder."""
    _decide(AppealMove.OVERTURN, appeal_id, reason)
