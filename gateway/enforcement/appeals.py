"""Appeals: an account appeals an action against it, once, within its window; operators
uphold or overturn it, and overturning undoes what the action still does to the account.
In the caller's unit of work, like the rest of enforcement."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from gateway import evidence
from gateway.db.models import Appeal
from gateway.db.uow import UnitOfWork
from gateway.enforcement import repository
from gateway.enforcement.history import describe_step, in_force, window
from gateway.enforcement.service import ACTIVE_AGAIN, MAX_STATEMENT, clean_reason, tell, undo
from gateway.errors import Conflict, NotFound
from gateway.text import clean_text
from policies.enforcement import AppealClosed
from stages import evidence as ev
from stages.enforcement import (
    AccountStatus,
    AppealMove,
    AppealStatus,
    EnforcementStep,
    IllegalAppealMove,
    apply_appeal_move,
    overturn_move,
)


async def appeal(
    uow: UnitOfWork, account_id: str, action_id: str, statement: str, address: str | None
) -> Appeal:
    """The account appeals an action against it: once per action, within the window."""
    text = clean_text(statement, field="the statement", max_length=MAX_STATEMENT, required=True)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    action = await repository.locked_action_of(session, action_id, account_id)
    if action is None:
        # Another account's action is "not found", never "forbidden".
        raise NotFound(f"no enforcement action {action_id}", code="action_not_found")
    account = await repository.account(session, account_id)
    assert account is not None  # the action's foreign key says so
    appealed = await repository.is_appealed(session, action.id)
    closed = window(rt.policy.enforcement, action, now, appealed=appealed)
    if isinstance(closed, AppealClosed):
        code = "already_appealed" if appealed else "appeal_window_closed"
        raise Conflict(closed.reason, code=code)
    filed = Appeal(
        id=str(uuid.uuid4()),
        action_id=action.id,
        account_id=account_id,
        statement=text or "",
        submitted_at=now,
        status=AppealStatus.PENDING,
    )
    try:
        # A savepoint: the refusal below leaves the unit usable for the page that shows it.
        async with session.begin_nested():
            session.add(filed)
            await session.flush()
    except IntegrityError as exc:
        # Two appeals of one action at once: the unique action_id lets one through.
        raise Conflict(
            "this action was already appealed; one appeal per action", code="already_appealed"
        ) from exc
    evidence.record(
        session,
        ev.AppealSubmitted(
            appeal=filed.id, action=action.id, step=action.action, client_address=address
        ),
        actor=ev.Actor.account(account_id),
        at=now,
        account_id=account_id,
    )
    tell(
        rt,
        session,
        account,
        "appeal.received",
        "We received your appeal",
        f"Your appeal against the {describe_step(action.action)} of "
        f"{action.created_at:%Y-%m-%d} is with the operators. You will be told "
        "their decision and its reason.",
        action,
        now,
    )
    return filed


async def decide_appeal(
    uow: UnitOfWork, appeal_id: str, move: AppealMove, reason: str, actor: str
) -> Appeal:
    """An operator upholds or overturns an appeal; overturning undoes what the action still
    does to the account (lifts its suspension, restores it from termination)."""
    move = AppealMove(move)
    reason = clean_reason(reason)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    filed = await repository.locked_appeal(session, appeal_id)
    if filed is None:
        raise NotFound(f"no appeal {appeal_id}", code="appeal_not_found")
    if ev.Actor.parse(actor).is_account(filed.account_id):
        raise Conflict("you cannot decide an appeal of your own account", code="own_appeal")
    try:
        after = apply_appeal_move(AppealStatus(filed.status), move)
    except IllegalAppealMove as exc:
        raise Conflict(str(exc), code="illegal_appeal_move") from exc
    account = await repository.account(session, filed.account_id, lock=True)
    action = await repository.action(session, filed.action_id, lock=True)
    # The appeal's foreign keys say both exist.
    assert action is not None
    assert account is not None
    account_move = None
    if move is AppealMove.OVERTURN:
        account_move = overturn_move(
            EnforcementStep(action.action),
            AccountStatus(account.status),
            in_force=in_force(action, account.status),
        )
    filed.status = after
    filed.decided_at = now
    filed.decided_by = actor
    filed.decision_reason = reason
    evidence.record(
        session,
        ev.APPEAL_DECISIONS[move](
            appeal=filed.id,
            action=action.id,
            step=action.action,
            reason=reason,
            account_move=account_move.value if account_move else None,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        account_id=account.id,
    )
    if account_move is not None:
        undo(
            rt,
            session,
            account,
            action,
            account_move,
            actor=actor,
            now=now,
            data={"reason": reason, "appeal": filed.id},
            why=None,
        )
    noun = describe_step(action.action)
    if move is AppealMove.UPHOLD:
        subject = "Your appeal was not successful"
        body = f"The operators upheld the {noun} of {action.created_at:%Y-%m-%d}."
    else:
        subject = "Your appeal was successful"
        body = f"The operators overturned the {noun} of {action.created_at:%Y-%m-%d}."
        body += " It no longer counts against your account."
    body += f"\nReason: {reason}"
    if account_move is not None:
        body += ACTIVE_AGAIN
    tell(rt, session, account, "appeal.decided", subject, body, action, now)
    return filed
