"""The end of a grant: expiry warnings, expiry, and the close-out attestation.

Each function is an ordinary, idempotent service call that a scheduler job runs in its
unit of work. Work is claimed row by row with a guarded UPDATE or an INSERT of a unique
notice, so two processes running the same job never act twice on one grant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from gateway import evidence
from gateway.db.models import Closeout, Grant
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.grants import repository
from gateway.notify.service import notify
from gateway.text import clean_text
from policies.lifecycle import expiry_warnings_due
from stages import evidence as ev
from stages.grants import ENDED_GRANT_STATUSES, GrantMove, bulk_grant_move

SYSTEM = ev.SCHEDULER


@dataclass(frozen=True)
class LifecycleReport:
    warned: int = 0
    expired: int = 0
    closeouts: int = 0


async def send_expiry_warnings(uow: UnitOfWork) -> LifecycleReport:
    """Warn grantees a policy-set number of days before their grant ends; each warning once."""
    rt = uow.rt
    rules = rt.policy.lifecycle
    now = rt.clock()
    horizon = now + timedelta(days=max(rules.expiry_warning_days, default=0))
    session = await uow.write()
    warned = 0
    for grant in await repository.active_ending_between(session, now, horizon):
        sent = await repository.notices_of(session, grant.id)
        already = frozenset(int(n.split(":")[1]) for n in sent if n.startswith("expiry:"))
        due = expiry_warnings_due(rules, grant.expires_at, now, already)
        claimed = [
            days
            for days in due
            if await repository.claim_notice(session, grant.id, f"expiry:{days}", now)
        ]
        if not claimed:
            continue
        left = max(0, (grant.expires_at - now).days)
        notify(
            session,
            rt.settings,
            account_id=grant.account_id,
            kind="grant.expiring",
            subject=f"Your access to {grant.model.ref} ends in {left} day(s)",
            body=(
                f"Your {grant.tier} access to {grant.model.ref} ends on "
                f"{grant.expires_at:%Y-%m-%d}. You can ask to renew it from your grants page."
            ),
            link=f"{rt.settings.public_url}/grants",
            now=now,
            email=grant.account.email,
            data={"grant": grant.id, "expires_at": grant.expires_at.isoformat()},
        )
        warned += 1
    return LifecycleReport(warned=warned)


async def expire_grants(uow: UnitOfWork) -> LifecycleReport:
    """End grants whose window has passed, tell the grantee, and ask for a close-out."""
    now = uow.rt.clock()
    # The statuses an expiry starts from and the one it leads to, from the grant table.
    sources, leads_to = bulk_grant_move(GrantMove.EXPIRE)
    session = await uow.write()
    expired = 0
    for grant_id in await repository.ids_ended_by(session, sources, now):
        grant = await repository.move_if_in(
            session, grant_id, sources, leads_to, reason="the grant's window ended", now=now
        )
        if grant is None:
            continue  # moved by someone else since it was read
        evidence.record(
            session,
            ev.GrantExpired(grant=grant.id),
            actor=SYSTEM,
            at=now,
            model_id=grant.model_id,
            account_id=grant.account_id,
        )
        expired += 1
    report = await request_closeouts(uow)
    return LifecycleReport(expired=expired, closeouts=report.closeouts)


async def request_closeouts(uow: UnitOfWork) -> LifecycleReport:
    """For every ended (expired or revoked) grant without one, ask for a close-out."""
    rt = uow.rt
    rules = rt.policy.lifecycle
    now = rt.clock()
    session = await uow.write()
    asked = 0
    for grant in await repository.ended_without_closeout(session, sorted(ENDED_GRANT_STATUSES)):
        if not await repository.claim_notice(session, grant.id, "ended", now):
            continue
        closeout = Closeout(
            id=str(uuid.uuid4()),
            grant_id=grant.id,
            account_id=grant.account_id,
            requested_at=now,
            due_at=now + timedelta(days=rules.closeout_days),
        )
        session.add(closeout)
        notify(
            session,
            rt.settings,
            account_id=grant.account_id,
            kind="grant.ended",
            subject=f"Your access to {grant.model.ref} has ended",
            body=(
                f"Your {grant.tier} access to {grant.model.ref} has {grant.status}. Please "
                f"delete every copy of the weights and confirm it on your grants page by "
                f"{closeout.due_at:%Y-%m-%d}."
            ),
            link=f"{rt.settings.public_url}/grants",
            now=now,
            email=grant.account.email,
            data={"grant": grant.id, "closeout": closeout.id},
        )
        evidence.record(
            session,
            ev.CloseoutRequested(grant=grant.id, closeout=closeout.id),
            actor=SYSTEM,
            at=now,
            model_id=grant.model_id,
            account_id=grant.account_id,
        )
        asked += 1
    return LifecycleReport(closeouts=asked)


async def attest_closeout(
    uow: UnitOfWork, account_id: str, closeout_id: str, statement: str, address: str | None
) -> Closeout:
    """The grantee attests that the weights were deleted. Once; another's close-out is 404."""
    cleaned = clean_text(statement, field="the statement", max_length=5000)
    if cleaned is None:
        raise InvalidInput("say briefly how the copies were deleted", code="statement_required")
    statement = cleaned
    now = uow.rt.clock()
    session = await uow.write()
    closeout = await repository.closeout_for_update(session, closeout_id, account_id)
    if closeout is None:
        raise NotFound(f"no close-out {closeout_id}", code="closeout_not_found")
    if closeout.attested_at is not None:
        raise Conflict("this close-out was already attested", code="closeout_done")
    closeout.attested_at = now
    closeout.statement = statement
    closeout.attested_from = address
    grant = await session.get(Grant, closeout.grant_id)
    evidence.record(
        session,
        ev.CloseoutAttested(grant=closeout.grant_id, closeout=closeout.id, client_address=address),
        actor=ev.Actor.account(account_id),
        at=now,
        model_id=grant.model_id if grant else None,
        account_id=account_id,
    )
    return closeout
