"""One move of an application, the same for every use case: the machine in
stages/applications.py decides it; the row, its ApplicationEvent, the evidence and the
applicant's notice are written in the caller's unit of work, and an approval issues or
extends the grant.

Every check that can refuse a move runs before any row changes, so a refused move leaves
the unit as it was and the page that shows the refusal commits nothing of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account, Application, ApplicationEvent, Grant, Model
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.grants.service import add_grant
from gateway.notify.service import notify
from gateway.runtime import Runtime
from stages import evidence as ev
from stages.applications import (
    Actor,
    ApplicationMove,
    ApplicationMoveError,
    ApplicationStatus,
    apply_application_move,
)
from stages.grants import GrantMove, IllegalGrantMove, Renewal, apply_grant_move, renewal
from stages.tiers import UnknownTier


def record_event(
    session: AsyncSession,
    application: Application,
    now: datetime,
    actor: str,
    move: str,
    before: ApplicationStatus | None,
    after: ApplicationStatus,
    reason: str | None,
) -> None:
    session.add(
        ApplicationEvent(
            application_id=application.id,
            at=now,
            actor=actor,
            move=move,
            from_status=before.value if before else None,
            to_status=after.value,
            reason=reason,
        )
    )


def tell_applicant(
    rt: Runtime,
    session: AsyncSession,
    application: Application,
    account: Account,
    model: Model,
    kind: str,
    subject: str,
    body: str,
) -> None:
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind=kind,
        subject=subject,
        body=body,
        link=f"{rt.settings.public_url}/applications/{application.id}",
        now=rt.clock(),
        email=account.email,
        data={
            "application": application.id,
            "model": model.ref,
            "tier": application.tier,
            "status": application.status,
        },
    )


_MESSAGES = {
    ApplicationMove.APPROVE: ("application.decided", "Your application was approved"),
    ApplicationMove.DENY: ("application.decided", "Your application was denied"),
    ApplicationMove.REQUEST_CHANGES: (
        "application.changes_requested",
        "Changes requested to your application",
    ),
    ApplicationMove.EXPIRE: ("application.decided", "Your application expired"),
}


def check_move(
    application: Application, move: ApplicationMove, actor_kind: Actor, reason: str | None
) -> ApplicationStatus:
    """The status `move` leads to; Conflict if the machine refuses it. Changes nothing."""
    try:
        return apply_application_move(
            ApplicationStatus(application.status), move, actor_kind, reason
        )
    except ApplicationMoveError as exc:
        raise Conflict(str(exc), code="illegal_application_move") from exc


async def move(
    uow: UnitOfWork,
    application: Application,
    account: Account,
    model: Model,
    move: ApplicationMove,
    actor_kind: Actor,
    actor: str,
    reason: str | None,
) -> None:
    """Make `move` on a row loaded in the write phase of `uow`."""
    rt = uow.rt
    session = await uow.write()
    before = ApplicationStatus(application.status)
    after = check_move(application, move, actor_kind, reason)
    extend: Grant | None = None
    if move is ApplicationMove.APPROVE:
        extend = await _grant_to_extend(session, application, account)
        if extend is None and application.tier not in rt.policy.ladder:
            raise InvalidInput(f"unknown tier {application.tier!r}", code="unknown_tier")
    now = rt.clock()
    application.status = after
    application.updated_at = now
    if after in (ApplicationStatus.APPROVED, ApplicationStatus.DENIED, ApplicationStatus.EXPIRED):
        application.decided_at = now
        application.decided_by = actor
        application.decision_reason = reason
    if move is ApplicationMove.RESUBMIT:
        application.submitted_at = now  # the review clock starts again
    if move is ApplicationMove.APPROVE:
        await _grant_for(uow, session, application, account, model, actor, extend)
    record_event(session, application, now, actor, move.value, before, after, reason)
    evidence.record(
        session,
        ev.APPLICATION_MOVES[move](
            application=application.id,
            tier=application.tier,
            from_=before.value,
            to=after.value,
            reason=reason,
            grant=application.grant_id,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=model.id,
        account_id=account.id,
    )
    if move in _MESSAGES:
        kind, subject = _MESSAGES[move]
        status = after.value.replace("_", " ")
        body = f"Your application for the {application.tier} tier of {model.ref} is now {status}."
        if reason:
            body += f"\nReason: {reason}"
        if move is ApplicationMove.DENY:
            try:
                cooldown_days = rt.policy.application_rules(application.tier).cooldown_days
            except UnknownTier:
                cooldown_days = 0
            body += (
                f"\nYou may apply again after {cooldown_days} days."
                if cooldown_days
                else "\nYou may apply again at once."
            )
        tell_applicant(rt, session, application, account, model, kind, subject, body)


async def _grant_to_extend(
    session: AsyncSession, application: Application, account: Account
) -> Grant | None:
    """The grant an approved renewal extends, or None when the approval issues a grant."""
    if not application.renewal_of:
        return None
    grant = await session.get(Grant, application.renewal_of)
    if grant is None or grant.account_id != account.id:
        raise NotFound("the grant to renew is gone", code="grant_not_found")
    try:
        how = renewal(grant.status)
    except IllegalGrantMove as exc:  # suspended or revoked since the application
        raise Conflict(str(exc), code="renewal_refused") from exc
    return grant if how is Renewal.EXTEND else None


async def _grant_for(
    uow: UnitOfWork,
    session: AsyncSession,
    application: Application,
    account: Account,
    model: Model,
    actor: str,
    grant: Grant | None,
) -> None:
    rt = uow.rt
    if grant is not None:
        terms = rt.policy.ladder.get(grant.tier)
        start = max(grant.expires_at, rt.clock())
        grant.expires_at = start + timedelta(days=terms.grant_days)
        grant.status = apply_grant_move(grant.status, GrantMove.RENEW)
        application.grant_id = grant.id
        evidence.record(
            session,
            ev.GrantRenewed(
                grant=grant.id, expires_at=grant.expires_at, application=application.id
            ),
            actor=ev.Actor.parse(actor),
            at=rt.clock(),
            model_id=model.id,
            account_id=account.id,
        )
        return
    # A new grant, or the renewal of an expired one: expired is final, so it stays
    # expired and the renewal issues the grant that follows it.
    issued = await add_grant(
        uow,
        account=account,
        model=model,
        tier=application.tier,
        days=None,
        actor=actor,
        application_id=application.id,
    )
    application.grant_id = issued.id
