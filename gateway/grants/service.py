"""Create, list and change grants. Every change writes its evidence in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway import evidence
from gateway.db.models import Account, Grant, Model
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.identity.repository import find_account
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.grants import GrantMove, GrantStatus, IllegalGrantMove, apply_grant_move
from stages.names import ModelRef
from stages.tiers import UnknownTier


async def create_grant(
    rt: Runtime, *, email: str, model: ModelRef, tier: str, days: int | None, actor: str
) -> Grant:
    """A new active grant from now, for the tier's grant length unless `days` is given."""
    async with rt.transaction() as session:
        account = await find_account(session, normalise_email(email))
        if account is None:
            raise NotFound(f"no account {email}", code="account_not_found")
        model_row = await session.scalar(
            select(Model).where(Model.org == model.org, Model.name == model.name)
        )
        if model_row is None:
            raise NotFound(f"no model {model}", code="model_not_found")
        grant = await add_grant(
            rt, session, account=account, model=model_row, tier=tier, days=days, actor=actor
        )
    grant.account = account
    grant.model = model_row
    return grant


async def add_grant(
    rt: Runtime,
    session: AsyncSession,
    *,
    account: Account,
    model: Model,
    tier: str,
    days: int | None,
    actor: str,
    application_id: str | None = None,
) -> Grant:
    """Add a grant to the caller's transaction (operators, and approved applications)."""
    try:
        terms = rt.policy.ladder.get(tier)
    except UnknownTier as exc:
        raise InvalidInput(str(exc), code="unknown_tier") from exc
    if days is not None and not 1 <= days <= 3650:
        raise InvalidInput("--days must be between 1 and 3650", code="invalid_days")
    now = rt.clock()
    grant = Grant(
        id=str(uuid.uuid4()),
        account_id=account.id,
        model_id=model.id,
        tier=tier,
        status=GrantStatus.ACTIVE,
        starts_at=now,
        expires_at=now + timedelta(days=days or terms.grant_days),
        download_quota=terms.download_quota,
        quota_period_days=terms.quota_period_days,
        created_at=now,
        created_by=actor,
        status_changed_at=now,
    )
    session.add(grant)
    await session.flush()
    evidence.record(
        session,
        ev.GrantIssued(
            grant=grant.id, tier=tier, expires_at=grant.expires_at, application=application_id
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=model.id,
        account_id=account.id,
    )
    return grant


@dataclass(frozen=True)
class GrantFilter:
    email: str | None = None
    model: ModelRef | None = None
    account_id: str | None = None


async def list_grants(session: AsyncSession, where: GrantFilter) -> Sequence[Grant]:
    query = (
        select(Grant)
        .join(Account, Grant.account_id == Account.id)
        .join(Model, Grant.model_id == Model.id)
        .options(selectinload(Grant.account), selectinload(Grant.model))
        .order_by(Grant.created_at.desc())
    )
    if where.email is not None:
        query = query.where(Account.email == normalise_email(where.email))
    if where.account_id is not None:
        query = query.where(Grant.account_id == where.account_id)
    if where.model is not None:
        query = query.where(Model.org == where.model.org, Model.name == where.model.name)
    return (await session.scalars(query)).all()


async def change_grant(
    rt: Runtime, grant_id: str, move: GrantMove, *, reason: str, actor: str
) -> Grant:
    """Suspend, reinstate or revoke a grant; takes effect on the next request of any URL."""
    reason = clean_text(reason, field="the reason (--reason)", max_length=5000, required=True) or ""
    now = rt.clock()
    async with rt.transaction() as session:
        grant = await session.scalar(
            select(Grant)
            .options(selectinload(Grant.account), selectinload(Grant.model))
            .where(Grant.id == grant_id)
            .with_for_update()
        )
        if grant is None:
            raise NotFound(f"no grant {grant_id}", code="grant_not_found")
        try:
            after = apply_grant_move(GrantStatus(grant.status), move)
        except IllegalGrantMove as exc:
            raise Conflict(str(exc), code="illegal_grant_move") from exc
        before = grant.status
        grant.status = after
        grant.status_reason = reason
        grant.status_changed_at = now
        evidence.record(
            session,
            ev.grant_moved(move, grant=grant.id, from_=before, to=after.value, reason=reason),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=grant.model_id,
            account_id=grant.account_id,
        )
    return grant
