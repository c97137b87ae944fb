"""The end of a grant: expiry warnings, expiry, and the close-out attestation.

Each function is an ordinary, idempotent service call that a scheduler job runs. Work is
claimed row by row with a guarded UPDATE or an INSERT of a unique notice, so two
processes running the same job never act twice on one grant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway import evidence
from gateway.db.models import Closeout, Grant, GrantNotice
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.grants import repository
from gateway.notify.service import notify
from gateway.runtime import Runtime
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


async def _claim_notice(session: AsyncSession, grant_id: str, notice: str, now: datetime) -> bool:
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(GrantNotice)
        .values(grant_id=grant_id, notice=notice, sent_at=now)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def send_expiry_warnings(rt: Runtime) -> LifecycleReport:
    """Warn grantees a policy-set number of days before their grant ends; each warning once."""
    rules = rt.policy.lifecycle
    now = rt.clock()
    horizon = now + timedelta(days=max(rules.expiry_warning_days, default=0))
    warned = 0
    async with rt.transaction() as session:
        grants = (
            await session.scalars(
                select(Grant)
                .options(selectinload(Grant.account), selectinload(Grant.model))
                .where(
                    Grant.status == "active", Grant.expires_at > now, Grant.expires_at <= horizon
                )
            )
        ).all()
        for grant in grants:
            sent = (
                await session.scalars(
                    select(GrantNotice.notice).where(GrantNotice.grant_id == grant.id)
                )
            ).all()
            already = frozenset(int(n.split(":")[1]) for n in sent if n.startswith("expiry:"))
            due = expiry_warnings_due(rules, grant.expires_at, now, already)
            if not due:
                continue
            claimed = [
                days
                for days in due
                if await _claim_notice(session, grant.id, f"expiry:{days}", now)
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


async def expire_grants(rt: Runtime) -> LifecycleReport:
    """End grants whose window has passed, tell the grantee, and ask for a close-out."""
    now = rt.clock()
    expired = 0
    # The statuses an expiry starts from and the one it leads to, from the grant table.
    sources, leads_to = bulk_grant_move(GrantMove.EXPIRE)
    async with rt.transaction() as session:
        due = (
            await session.scalars(
                select(Grant.id).where(Grant.status.in_(sources), Grant.expires_at <= now)
            )
        ).all()
        for grant_id in due:
            claimed = await session.execute(
                update(Grant)
                .where(Grant.id == grant_id, Grant.status.in_(sources))
                .values(
                    status=leads_to,
                    status_reason="the grant's window ended",
                    status_changed_at=now,
                )
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                continue
            grant = await session.scalar(
                select(Grant)
                .options(selectinload(Grant.account), selectinload(Grant.model))
                .where(Grant.id == grant_id)
            )
            assert grant is not None
            evidence.record(
                session,
                ev.GrantExpired(grant=grant.id),
                actor=SYSTEM,
                at=now,
                model_id=grant.model_id,
                account_id=grant.account_id,
            )
            expired += 1
    report = await request_closeouts(rt)
    return LifecycleReport(expired=expired, closeouts=report.closeouts)


async def request_closeouts(rt: Runtime) -> LifecycleReport:
    """For every ended (expired or revoked) grant without one, ask for a close-out."""
    rules = rt.policy.lifecycle
    now = rt.clock()
    asked = 0
    async with rt.transaction() as session:
        ended = (
            await session.scalars(
                select(Grant)
                .options(selectinload(Grant.account), selectinload(Grant.model))
                .outerjoin(Closeout, Closeout.grant_id == Grant.id)
                .where(Grant.status.in_(sorted(ENDED_GRANT_STATUSES)), Closeout.id.is_(None))
            )
        ).all()
        for grant in ended:
            if not await _claim_notice(session, grant.id, "ended", now):
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
