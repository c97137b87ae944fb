"""Warnings, suspensions and terminations of accounts, their appeals, and the job that ends
suspensions when they run out. The portal, the operator console and the CLI call these.

The statuses and their legal moves are the pure machine in stages/enforcement.py; the
ladder, a suspension's length and the appeal window are policy (policies/enforcement.py).
Each function here loads the rows, asks the core, saves, writes the evidence and tells the
account, in one transaction.

Nothing else has to change for access: every manifest and every /d/ request checks the
account's status (stages/access.py), so a suspension stops URLs already handed out at
their next request, and the applications service refuses suspended and terminated
accounts. API keys and grants are left as they are: the status denies them, and a lifted
suspension gives them back unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import (
    Account,
    Appeal,
    EnforcementAction,
    Incident,
    IncidentAccount,
)
from gateway.errors import Conflict, FieldChecks, InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.identity.sessions import end_sessions
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.text import clean_text
from policies.enforcement import (
    AppealClosed,
    AppealWindow,
    PastAction,
    Suggestion,
    appeal_window,
    next_step,
    suspension_until,
)
from policies.schema import EnforcementRules
from stages import evidence as ev
from stages.enforcement import (
    AccountMove,
    AccountStatus,
    AppealMove,
    AppealStatus,
    EnforcementStep,
    IllegalAccountMove,
    IllegalAppealMove,
    apply_appeal_move,
    apply_enforcement,
    overturn_move,
)
from stages.incidents import IncidentStatus, Severity

SYSTEM = ev.SCHEDULER
MAX_SUSPEND_DAYS = 3650
MAX_REASON = 5000
MAX_STATEMENT = 10000
STANDING_PATH = "/account/standing"

_SUSPEND = EnforcementStep.SUSPEND.value
_TERMINATE = EnforcementStep.TERMINATE.value


@dataclass(frozen=True)
class ActionRecord:
    """An action against an account as its pages show it: its appeal, whether it still
    holds the account in its status, and whether it may be appealed now."""

    action: EnforcementAction
    appeal: Appeal | None
    in_force: bool
    window: AppealWindow

    @property
    def step(self) -> EnforcementStep:
        return EnforcementStep(self.action.action)

    @property
    def overturned(self) -> bool:
        return self.appeal is not None and self.appeal.status == AppealStatus.OVERTURNED.value


@dataclass(frozen=True)
class AppealRecord:
    """An appeal with the action it is against and the account that made it."""

    appeal: Appeal
    action: EnforcementAction
    account: Account


@dataclass(frozen=True)
class Standing:
    """An account, every action against it, and the ladder's suggested next step."""

    account: Account
    actions: list[ActionRecord]
    suggestion: Suggestion


# --- reading ----------------------------------------------------------------------------


async def standing(session: AsyncSession, rt: Runtime, email: str) -> Standing:
    """The account's standing, as the operator console and `gateway enforce show` show it."""
    account = await _account(session, normalise_email(email), lock=False)
    return Standing(
        account,
        await list_actions(session, rt, account.id),
        await suggestion_for(session, rt, account.id),
    )


async def suggest(rt: Runtime, email: str, *, incident_id: str | None = None) -> Suggestion:
    """The step the policy's ladder suggests next for the account, and why."""
    address = normalise_email(email)
    async with rt.sessionmaker() as session:
        account = await _account(session, address, lock=False)
        incident = await _incident(session, incident_id) if incident_id else None
        return await suggestion_for(session, rt, account.id, incident=incident)


async def suggestion_for(
    session: AsyncSession, rt: Runtime, account_id: str, *, incident: Incident | None = None
) -> Suggestion:
    """The ladder's next step for an account: from its actions not overturned, and the worst
    severity among the confirmed incidents linked to it (and `incident`, if given)."""
    return next_step(
        rt.policy.enforcement,
        await _history(session, account_id),
        await _worst_severity(session, account_id, incident),
    )


async def _history(session: AsyncSession, account_id: str) -> list[PastAction]:
    rows = await session.execute(
        select(EnforcementAction.action, Appeal.status)
        .outerjoin(Appeal, Appeal.action_id == EnforcementAction.id)
        .where(EnforcementAction.account_id == account_id)
        .order_by(EnforcementAction.created_at)
    )
    return [
        PastAction(EnforcementStep(step), overturned=status == AppealStatus.OVERTURNED.value)
        for step, status in rows.all()
    ]


async def _worst_severity(
    session: AsyncSession, account_id: str, incident: Incident | None
) -> Severity | None:
    # Confirmed and not yet resolved: a resolved incident has had its response already, and
    # would otherwise keep pushing every later suggestion up the ladder.
    rows = await session.scalars(
        select(Incident.severity)
        .join(IncidentAccount, IncidentAccount.incident_id == Incident.id)
        .where(
            IncidentAccount.account_id == account_id,
            Incident.status == IncidentStatus.CONFIRMED.value,
            Incident.severity.is_not(None),
        )
    )
    severities = [Severity(value) for value in rows.all() if value]
    if (
        incident is not None
        and incident.severity
        and incident.status != IncidentStatus.DISMISSED.value
    ):
        severities.append(Severity(incident.severity))
    return max(severities, default=None)


async def list_actions(session: AsyncSession, rt: Runtime, account_id: str) -> list[ActionRecord]:
    """Every action against the account, newest first, with its appeal and appeal window."""
    status = await session.scalar(select(Account.status).where(Account.id == account_id))
    rows = await session.execute(
        select(EnforcementAction, Appeal)
        .outerjoin(Appeal, Appeal.action_id == EnforcementAction.id)
        .where(EnforcementAction.account_id == account_id)
        .order_by(EnforcementAction.created_at.desc(), EnforcementAction.id)
    )
    now = rt.clock()
    rules = rt.policy.enforcement
    return [
        ActionRecord(
            action=action,
            appeal=appeal,
            in_force=_in_force(action, status or ""),
            window=_window(rules, action, now, appealed=appeal is not None),
        )
        for action, appeal in rows.all()
    ]


async def list_appeals(
    session: AsyncSession, status: AppealStatus | None = AppealStatus.PENDING
) -> list[AppealRecord]:
    """Appeals oldest first (the order they are decided in); None: every status."""
    query = (
        select(Appeal, EnforcementAction, Account)
        .join(EnforcementAction, EnforcementAction.id == Appeal.action_id)
        .join(Account, Account.id == Appeal.account_id)
        .order_by(Appeal.submitted_at, Appeal.id)
    )
    if status is not None:
        query = query.where(Appeal.status == AppealStatus(status).value)
    rows = await session.execute(query)
    return [AppealRecord(appeal, action, account) for appeal, action, account in rows.all()]


def _in_force(action: EnforcementAction, account_status: str) -> bool:
    """Whether `action` is what holds the account in its status now (a warning never is)."""
    if action.ended_at is not None:
        return False
    if action.action == _SUSPEND:
        return account_status == AccountStatus.SUSPENDED.value
    if action.action == _TERMINATE:
        return account_status == AccountStatus.TERMINATED.value
    return False


def _window(
    rules: EnforcementRules, action: EnforcementAction, now: datetime, *, appealed: bool
) -> AppealWindow:
    # The account was told "until appeal_until" when the action was taken; that promise
    # holds even if the policy's appeal_days has changed since.
    days = round((action.appeal_until - action.created_at) / timedelta(days=1))
    promised = replace(rules, appeal_days=days)
    return appeal_window(promised, action.created_at, now, already_appealed=appealed)


# --- acting on an account ---------------------------------------------------------------


async def enforce(
    rt: Runtime,
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
    rules = rt.policy.enforcement
    address = normalise_email(email)
    now = rt.clock()
    async with rt.transaction() as session:
        account = await _account(session, address, lock=True)
        _not_yourself(account, actor)
        incident = await _incident(session, incident_id) if incident_id else None
        suggestion = await suggestion_for(session, rt, account.id, incident=incident)
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
            await session.execute(
                update(EnforcementAction)
                .where(
                    EnforcementAction.account_id == account.id,
                    EnforcementAction.action == _SUSPEND,
                    EnforcementAction.ended_at.is_(None),
                )
                .values(ended_at=now)
            )
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
        _tell(rt, session, account, f"enforcement.{step.value}", subject, body, action, now)
    return action


def _not_yourself(account: Account, actor: str) -> None:
    # An operator never acts on their own standing: not even to lift their own suspension.
    if ev.Actor.parse(actor).is_account(account.id):
        raise Conflict("operators may not enforce on or lift their own account", code="own_account")


async def lift(rt: Runtime, email: str, reason: str, actor: str) -> Account:
    """An operator ends an account's suspension before it runs out."""
    reason = _reason(reason)
    address = normalise_email(email)
    now = rt.clock()
    async with rt.transaction() as session:
        account = await _account(session, address, lock=True)
        _not_yourself(account, actor)
        running = await session.scalar(
            select(EnforcementAction)
            .where(
                EnforcementAction.account_id == account.id,
                EnforcementAction.action == _SUSPEND,
                EnforcementAction.ended_at.is_(None),
            )
            .order_by(EnforcementAction.created_at.desc())
            .limit(1)
            .with_for_update()
        )
        _undo(
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


async def lift_expired_suspensions(rt: Runtime) -> int:
    """End the suspensions whose time has run out; returns how many accounts it reactivated.

    Each suspension is claimed with a guarded UPDATE of its ended_at, so two processes (or
    a second run) never lift one twice.
    """
    now = rt.clock()
    async with rt.sessionmaker() as session:
        due = (
            await session.scalars(
                select(EnforcementAction.id).where(
                    EnforcementAction.action == _SUSPEND,
                    EnforcementAction.ended_at.is_(None),
                    EnforcementAction.ends_at <= now,
                )
            )
        ).all()
    lifted = 0
    for action_id in due:
        async with rt.transaction() as session:
            # The account is locked before its action, as every other writer here does,
            # so that a lift by an operator and this job cannot deadlock.
            account = await session.scalar(
                select(Account)
                .where(
                    Account.id
                    == select(EnforcementAction.account_id)
                    .where(EnforcementAction.id == action_id)
                    .scalar_subquery()
                )
                .with_for_update()
            )
            claimed = await session.execute(
                update(EnforcementAction)
                .where(EnforcementAction.id == action_id, EnforcementAction.ended_at.is_(None))
                .values(ended_at=now)
            )
            if cast("CursorResult[Any]", claimed).rowcount != 1:
                continue  # another process, an operator or an appeal ended it first
            action = await session.get(EnforcementAction, action_id)
            assert action is not None
            if account is None or account.status != AccountStatus.SUSPENDED.value:
                continue  # nothing holds the account any more; the claim tidies the row
            _undo(
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


def _undo(
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
    _tell(
        rt, session, account, f"enforcement.{move.value}", subject, why + _ACTIVE_AGAIN, action, now
    )


# --- appeals ----------------------------------------------------------------------------


async def appeal(
    rt: Runtime, account_id: str, action_id: str, statement: str, address: str | None
) -> Appeal:
    """The account appeals an action against it: once per action, within the window."""
    text = clean_text(statement, field="the statement", max_length=MAX_STATEMENT, required=True)
    now = rt.clock()
    try:
        async with rt.transaction() as session:
            action = await session.scalar(
                select(EnforcementAction)
                .where(
                    EnforcementAction.id == action_id,
                    EnforcementAction.account_id == account_id,
                )
                .with_for_update()
            )
            if action is None:
                # Another account's action is "not found", never "forbidden".
                raise NotFound(f"no enforcement action {action_id}", code="action_not_found")
            account = await session.get(Account, account_id)
            assert account is not None  # the action's foreign key says so
            appealed = await session.scalar(select(Appeal.id).where(Appeal.action_id == action.id))
            window = _window(rt.policy.enforcement, action, now, appealed=appealed is not None)
            if isinstance(window, AppealClosed):
                code = "already_appealed" if appealed else "appeal_window_closed"
                raise Conflict(window.reason, code=code)
            filed = Appeal(
                id=str(uuid.uuid4()),
                action_id=action.id,
                account_id=account_id,
                statement=text or "",
                submitted_at=now,
                status=AppealStatus.PENDING,
            )
            session.add(filed)
            await session.flush()
            evidence.record(
                session,
                ev.AppealSubmitted(
                    appeal=filed.id, action=action.id, step=action.action, client_address=address
                ),
                actor=ev.Actor.account(account_id),
                at=now,
                account_id=account_id,
            )
            _tell(
                rt,
                session,
                account,
                "appeal.received",
                "We received your appeal",
                f"Your appeal against the {_NOUNS[action.action]} of "
                f"{action.created_at:%Y-%m-%d} is with the operators. You will be told "
                "their decision and its reason.",
                action,
                now,
            )
    except IntegrityError as exc:
        # Two appeals of one action at once: the unique action_id lets one through.
        raise Conflict(
            "this action was already appealed; one appeal per action", code="already_appealed"
        ) from exc
    return filed


async def decide_appeal(
    rt: Runtime, appeal_id: str, move: AppealMove, reason: str, actor: str
) -> Appeal:
    """An operator upholds or overturns an appeal; overturning undoes what the action still
    does to the account (lifts its suspension, restores it from termination)."""
    move = AppealMove(move)
    reason = _reason(reason)
    now = rt.clock()
    async with rt.transaction() as session:
        filed = await session.scalar(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
        if filed is None:
            raise NotFound(f"no appeal {appeal_id}", code="appeal_not_found")
        if ev.Actor.parse(actor).is_account(filed.account_id):
            raise Conflict("you cannot decide an appeal of your own account", code="own_appeal")
        try:
            after = apply_appeal_move(AppealStatus(filed.status), move)
        except IllegalAppealMove as exc:
            raise Conflict(str(exc), code="illegal_appeal_move") from exc
        account = await session.get(Account, filed.account_id, with_for_update=True)
        action = await session.get(EnforcementAction, filed.action_id, with_for_update=True)
        # The appeal's foreign keys say both exist.
        assert action is not None
        assert account is not None
        filed.status = after
        filed.decided_at = now
        filed.decided_by = actor
        filed.decision_reason = reason
        undo = None
        if move is AppealMove.OVERTURN:
            undo = overturn_move(
                EnforcementStep(action.action),
                AccountStatus(account.status),
                in_force=_in_force(action, account.status),
            )
        evidence.record(
            session,
            ev.APPEAL_DECISIONS[move](
                appeal=filed.id,
                action=action.id,
                step=action.action,
                reason=reason,
                account_move=undo.value if undo else None,
            ),
            actor=ev.Actor.parse(actor),
            at=now,
            account_id=account.id,
        )
        if undo is not None:
            _undo(
                rt,
                session,
                account,
                action,
                undo,
                actor=actor,
                now=now,
                data={"reason": reason, "appeal": filed.id},
                why=None,
            )
        noun = _NOUNS[action.action]
        if move is AppealMove.UPHOLD:
            subject = "Your appeal was not successful"
            body = f"The operators upheld the {noun} of {action.created_at:%Y-%m-%d}."
        else:
            subject = "Your appeal was successful"
            body = f"The operators overturned the {noun} of {action.created_at:%Y-%m-%d}."
            body += " It no longer counts against your account."
        body += f"\nReason: {reason}"
        if undo is not None:
            body += _ACTIVE_AGAIN
        _tell(rt, session, account, "appeal.decided", subject, body, action, now)
    return filed


# --- shared -----------------------------------------------------------------------------

_NOUNS = {"warn": "warning", "suspend": "suspension", "terminate": "termination"}
_ACTIVE_AGAIN = (
    "\nYour account is active again: your grants, API keys and download links work as "
    "before, and you may apply for access."
)


def check_step(
    checks: FieldChecks, step: EnforcementStep | None, reason: str, days: int | None
) -> str | None:
    """The step's reason, cleaned; the reason's and the days' problems kept in `checks`."""
    cleaned = checks.check("reason", lambda: _reason(reason))
    if days is not None and step is not None and step is not EnforcementStep.SUSPEND:
        checks.refuse(
            "days", InvalidInput("--days applies to a suspension only", code="invalid_days")
        )
    if days is not None and not 1 <= days <= MAX_SUSPEND_DAYS:
        refusal = f"--days must be between 1 and {MAX_SUSPEND_DAYS}"
        checks.refuse("days", InvalidInput(refusal, code="invalid_days"))
    return cleaned


def _reason(reason: str) -> str:
    return clean_text(reason, field="the reason", max_length=MAX_REASON, required=True) or ""


async def _account(session: AsyncSession, address: str, *, lock: bool) -> Account:
    query = select(Account).where(func.lower(Account.email) == address.lower())
    account = await session.scalar(query.with_for_update() if lock else query)
    if account is None:
        raise NotFound(f"no account {address}", code="account_not_found")
    return account


async def _incident(session: AsyncSession, ref: str) -> Incident:
    """An incident by its id or its tracking code."""
    ref = ref.strip()
    incident = await session.scalar(
        select(Incident).where(or_(Incident.id == ref, Incident.tracking_code == ref))
    )
    if incident is None:
        raise NotFound(f"no incident {ref}", code="incident_not_found")
    return incident


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


def _tell(
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


def describe_step(step: str) -> str:
    """'warning', 'suspension' or 'termination'."""
    return _NOUNS.get(step, step)


__all__ = [
    "MAX_SUSPEND_DAYS",
    "ActionRecord",
    "AppealRecord",
    "Standing",
    "appeal",
    "decide_appeal",
    "describe_step",
    "enforce",
    "lift",
    "lift_expired_suspensions",
    "list_actions",
    "list_appeals",
    "standing",
    "suggest",
    "suggestion_for",
]
