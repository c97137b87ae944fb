"""Create, list and change grants. Every change writes its evidence in the same unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from gateway import evidence
from gateway.applications.reviewing import checked_model, checked_tier
from gateway.db.models import Account, Closeout, Grant, Model
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.exports.filters import one_of
from gateway.grants import repository
from gateway.identity.accounts import normalise_email
from gateway.identity.repository import find_account
from gateway.pagination import Keyset, Page, decode_cursor, page_of
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.grants import GrantMove, GrantStatus, IllegalGrantMove, apply_grant_move
from stages.names import ModelRef
from stages.tiers import UnknownTier


async def create_grant(
    uow: UnitOfWork, *, email: str, model: ModelRef, tier: str, days: int | None, actor: str
) -> Grant:
    """A new active grant from now, for the tier's grant length unless `days` is given."""
    session = await uow.write()
    account = await find_account(session, normalise_email(email))
    if account is None:
        raise NotFound(f"no account {email}", code="account_not_found")
    model_row = await repository.model_by_ref(session, model)
    if model_row is None:
        raise NotFound(f"no model {model}", code="model_not_found")
    grant = await add_grant(
        uow, account=account, model=model_row, tier=tier, days=days, actor=actor
    )
    grant.account = account
    grant.model = model_row
    return grant


async def add_grant(
    uow: UnitOfWork,
    *,
    account: Account,
    model: Model,
    tier: str,
    days: int | None,
    actor: str,
    application_id: str | None = None,
) -> Grant:
    """Add a grant in the caller's unit of work (operators, and approved applications)."""
    rt = uow.rt
    try:
        terms = rt.policy.ladder.get(tier)
    except UnknownTier as exc:
        raise InvalidInput(str(exc), code="unknown_tier") from exc
    if days is not None and not 1 <= days <= 3650:
        raise InvalidInput("--days must be between 1 and 3650", code="invalid_days")
    session = await uow.write()
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
    tier: str | None = None
    status: GrantStatus | None = None


def grant_filter(
    rt: Runtime, *, email: str | None, model: str | None, tier: str | None, status: str | None
) -> GrantFilter:
    """Check the list's filters as typed (400 with what was expected) and build the
    service's filter from them; an empty filter lets every grant through."""
    return GrantFilter(
        email=normalise_email(email) if email and email.strip() else None,
        model=checked_model(model),
        tier=checked_tier(rt, tier),
        status=one_of(status, GrantStatus, "status"),
    )


async def list_grants(uow: UnitOfWork, where: GrantFilter) -> Sequence[Grant]:
    """Grants newest first, with their account and model."""
    return await repository.search(
        uow.session,
        email=None if where.email is None else normalise_email(where.email),
        account_id=where.account_id,
        model=where.model,
        tier=where.tier,
        status=where.status,
    )


GRANTS_LISTING: Final = "grants"


def _grant_keyset(grant: Grant) -> Keyset:
    return Keyset(grant.created_at, grant.id)


async def grants_page(
    uow: UnitOfWork, where: GrantFilter, *, cursor: str | None, limit: int
) -> Page[Grant]:
    """A page of grants (the order of `list_grants`), from `cursor` on."""
    rows = await repository.search_after(
        uow.session,
        email=where.email,
        model=where.model,
        tier=where.tier,
        status=where.status,
        after=decode_cursor(GRANTS_LISTING, cursor),
        limit=limit,
    )
    return page_of(GRANTS_LISTING, rows, limit, _grant_keyset)


async def get_grant(uow: UnitOfWork, grant_id: str) -> Grant:
    """One grant, with its account and model, for operators."""
    grant = await repository.grant(uow.session, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}", code="grant_not_found")
    return grant


async def own_grant(uow: UnitOfWork, account_id: str, grant_id: str) -> Grant:
    """The account's own grant; another's is "not found"."""
    for grant in await list_grants(uow, GrantFilter(account_id=account_id)):
        if grant.id == grant_id:
            return grant
    raise NotFound(f"no grant {grant_id}", code="grant_not_found")


async def closeouts_of(uow: UnitOfWork, account_id: str) -> dict[str, Closeout]:
    """The account's close-outs, by grant."""
    return await repository.closeouts_of(uow.session, account_id)


async def change_grant(
    uow: UnitOfWork, grant_id: str, move: GrantMove, *, reason: str, actor: str
) -> Grant:
    """Suspend, reinstate or revoke a grant; takes effect on the next request of any URL."""
    reason = clean_text(reason, field="the reason (--reason)", max_length=5000, required=True) or ""
    now = uow.rt.clock()
    session = await uow.write()
    grant = await repository.for_update(session, grant_id)
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
