"""Warnings, suspensions and terminations of accounts, and the job that ends suspensions
when they run out. The portal, the operator console, the CLI and the policy's triggers
call these; appeals are in appeals.py, what the pages read in history.py.

The statuses and their legal moves are the pure machine in stages/enforcement.py; the
ladder, a suspension's length and the appeal window are policy (policies/enforcement.py).
Each function here loads the rows, asks the core, saves, writes the evidence and tells the
account, in the caller's unit of work; every check comes before the first change, so a
refusal leaves nothing to write.

Nothing else has to change for access: every manifest and every /d/ request checks the
account's status (stages/access.py), so a suspension stops URLs already handed out at
their next request, and the applications service refuses suspended and terminated
accounts. API keys and grants are left as they are: the status denies them, and a lifted
suspension gives them back unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account, EnforcementAction
from gateway.db.uow import UnitOfWork
from gateway.enforcement import repository
from gateway.enforcement.history import (
    account_by_email,
    incident_by_ref,
    suggestion_for,
)
from gateway.errors import Conflict, FieldChecks, InvalidInput
from gateway.identity.accounts import normalise_email
from gateway.identity.sessions import end_sessions
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.text import clean_text
from policies.enforcement import appeal_window, suspension_until
from stages import evidence as ev
from stages.enforcement import (
    AccountMove,
    AccountStatus,
    EnforcementStep,
    IllegalAccountMove,
    apply_enforcement,
)

SYSTEM = ev.SCHEDULER
MAX_SUSPEND_DAYS = 3650
MAX_REASON = 5000
MAX_STATEMENT = 10000
STANDING_PATH = "/account/standing"

_SUSPEND = EnforcementStep.SUSPEND.value


# --- acting on an account ---------------------------------------------------------------


async def enforce(
    uow: UnitOfWork,
    *,
    email: str,
    step: EnforcementStep,
    reason: str,
    days: int | None,
    incident_id: str | None,
    actor: str,
) -> EnforcementAction:
    """Warn, suspend or terminate an account; effective at once on every URL and key."""
    step = EnforcementStep(step)
    checks = FieldChecks()
    reason = check_step(checks, step, reason, days) or ""
    checks.done()
    rt = uow.rt
    rules = rt.policy.enforcement
    address = normalise_email(email)
    now = rt.clock()
    session = await uow.write()
    account = await account_by_email(uow, address, lock=True)
    _not_yourself(account, actor)
    incident = await incident_by_ref(uow, incident_id) if incident_id else None
    suggestion = await suggestion_for(uow, account.id, incident=incident)
    before = AccountStatus(account.status)
    try:
        after = apply_enforcement(before, AccountMove(step.value))
    except IllegalAccountMove as exc:
        raise Conflict(str(exc), code="illegal_account_move") from exc
    action = EnforcementAction(
        id=str(uuid.uuid4()),
        account_id=account.id,
        action=step.value,
        reason=reason,
        incident_id=incident.id if incident else None,
        created_at=now,
        created_by=actor,
        ends_at=suspension_until(rules, now, days) if step is EnforcementStep.SUSPEND else None,
        ended_at=None,
        appeal_until=appeal_window(rules, now, now, already_appealed=False).closes_at,
    )
    if step is EnforcementStep.TERMINATE:
        # A running suspension no longer holds the account: it must not be lifted when
        # it runs out, nor by its appeal; the termination has an appeal of its own.
        await repository.end_running_suspensions(session, account.id, now)
    session.add(action)
    account.status = after
    if step is not EnforcementStep.WARN:
        account.status_reason = reason
    if after != before:
        # Signed out everywhere; signing in again shows the standing page and appeal.
        await end_sessions(session, account.id)
    await session.flush()
    evidence.record(
        session,
        ev.ENFORCEMENT_STEPS[step](
            action=action.id,
            from_=before.value,
            to=after.value,
            reason=reason,
            incident=action.incident_id,
            ends_at=action.ends_at,
            appeal_until=action.appeal_until,
            suggested=suggestion.step.value if suggestion.step else None,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=incident.model_id if incident else None,
        release_id=incident.release_id if incident else None,
        account_id=account.id,
    )
    subject, body = _action_message(action)
    tell(rt, session, account, f"enforcement.{step.value}", subject, body, action, now)
    return action


def _not_yourself(account: Account, actor: str) -> None:
    # An operator never acts on their own standing: not even to lift their own suspension.
    if ev.Actor.parse(actor).is_account(account.id):
        raise Conflict("operators may not enforce on or lift their own account", code="own_account")


async def lift(uow: UnitOfWork, email: str, reason: str, actor: str) -> Account:
    """An operator ends an account's suspension before it runs out."""
    reason = clean_reason(reason)
    address = normalise_email(email)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    account = await account_by_email(uow, address, lock=True)
    _not_yourself(account, actor)
    running = await repository.running_suspension(session, account.id)
    undo(
        rt,
        session,
        account,
        running,
        AccountMove.LIFT,
        actor=actor,
        now=now,
        data={"reason": reason},
        why=f"An operator lifted it early.\nReason: {reason}",
    )
    return account


async def lift_expired_suspensions(uow: UnitOfWork) -> int:
    """End the suspensions whose time has run out; returns how many accounts it reactivated.

    Each suspension is claimed with a guarded UPDATE of its ended_at, so two processes (or
    a second run) never lift one twice.
    """
    rt = uow.rt
    now = rt.clock()
    due = await repository.due_suspensions(uow.session, now)
    if not due:
        return 0
    session = await uow.write()
    lifted = 0
    for action_id in due:
        # The account is locked before its action, as every other writer here does,
        # so that a lift by an operator and this job cannot deadlock.
        account = await repository.locked_account_of_action(session, action_id)
        if not await repository.claim_ending(session, action_id, now):
            continue  # another process, an operator or an appeal ended it first
        action = await repository.action(session, action_id)
        assert action is not None
        if account is None or account.status != AccountStatus.SUSPENDED.value:
            continue  # nothing holds the account any more; the claim tidies the row
        undo(
            rt,
            session,
            account,
            action,
            AccountMove.LIFT,
            actor=SYSTEM,
            now=now,
            data={"reason": "the suspension ran out"},
            why="The suspension has run out.",
        )
        lifted += 1
    return lifted


def undo(
    rt: Runtime,
    session: AsyncSession,
    account: Account,
    action: EnforcementAction | None,
    move: AccountMove,
    *,
    actor: str,
    now: datetime,
    data: dict[str, Any],
    why: str | None,
) -> None:
    """Lift a suspension or restore a terminated account: status, evidence, and a notice
    saying `why` (None: the caller's own notice says it)."""
    before = AccountStatus(account.status)
    try:
        after = apply_enforcement(before, move)
    except IllegalAccountMove as exc:
        raise Conflict(str(exc), code="illegal_account_move") from exc
    account.status = after
    account.status_reason = None
    if action is not None and action.ended_at is None:
        action.ended_at = now
    evidence.record(
        session,
        ev.UNDOING_MOVES[move](
            action=action.id if action else None, from_=before.value, to=after.value, **data
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        account_id=account.id,
    )
    if why is None:
        return
    if move is AccountMove.LIFT:
        subject = "Your account's suspension has ended"
    else:
        subject = "Your account is active again"
    tell(
        rt, session, account, f"enforcement.{move.value}", subject, why + ACTIVE_AGAIN, action, now
    )


# --- shared -----------------------------------------------------------------------------

ACTIVE_AGAIN = (
    "\nYour account is active again: your grants, API keys and download links work as "
    "before, and you may apply for access."
)


def check_step(
    checks: FieldChecks, step: EnforcementStep | None, reason: str, days: int | None
) -> str | None:
    """The step's reason, cleaned; the reason's and the days' problems kept in `checks`."""
    cleaned = checks.check("reason", lambda: clean_reason(reason))
    if days is not None and step is not None and step is not EnforcementStep.SUSPEND:
        checks.refuse(
            "days", InvalidInput("--days applies to a suspension only", code="invalid_days")
        )
    if days is not None and not 1 <= days <= MAX_SUSPEND_DAYS:
        refusal = f"--days must be between 1 and {MAX_SUSPEND_DAYS}"
        checks.refuse("days", InvalidInput(refusal, code="invalid_days"))
    return cleaned


def clean_reason(reason: str) -> str:
    return clean_text(reason, field="the reason", max_length=MAX_REASON, required=True) or ""


def _action_message(action: EnforcementAction) -> tuple[str, str]:
    if action.action == EnforcementStep.WARN.value:
        subject = "A warning on your account"
        body = (
            "Your account received a warning. Your access is unchanged, but a further "
            "breach may lead to a suspension or termination."
        )
    elif action.action == _SUSPEND:
        assert action.ends_at is not None
        subject = "Your account is suspended"
        body = (
            f"Your account is suspended until {action.ends_at:%Y-%m-%d %H:%M} UTC. Until then "
            "your grants, API keys and download links do not work, downloads in progress "
            "stop, and you cannot apply for access."
        )
    else:
        subject = "Your account was terminated"
        body = (
            "Your account was terminated. Your grants, API keys and download links no longer "
            "work, and you may not apply for access again."
        )
    body += (
        f"\nReason: {action.reason}"
        f"\nYou may appeal this decision once, until {action.appeal_until:%Y-%m-%d %H:%M} UTC, "
        "from your account's standing page."
    )
    return subject, body


def tell(
    rt: Runtime,
    session: AsyncSession,
    account: Account,
    kind: str,
    subject: str,
    body: str,
    action: EnforcementAction | None,
    now: datetime,
) -> None:
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind=kind,
        subject=subject,
        body=body,
        link=f"{rt.settings.public_url}{STANDING_PATH}",
        now=now,
        email=account.email,
        data={
            "action": action.id if action else None,
            "step": action.action if action else None,
            "account_status": account.status,
        },
    )
