"""Telling a model's grantees about a decommission: each message once per account.

What was sent is kept as GrantNotice rows named `decommission:<release id>:<what>`, one
per grant of the account. A message is claimed by INSERTing its notice for every grant
the account holds; it is sent when at least one insert lands and no grant of the account
had it already, so two processes running the same job never send it twice, and a
grantee with two grants of the model (two tiers) hears once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Grant
from gateway.decommission import repository
from gateway.grants import repository as grant_repository
from gateway.notify.service import notify
from gateway.runtime import Runtime

PREFIX = "decommission"
ANNOUNCED = "announced"
ENDED = "ended"


def notice_name(release_id: int, what: str | int) -> str:
    """The GrantNotice of one decommission message: `what` is announced, ended or a day count."""
    return f"{PREFIX}:{release_id}:{what}"


def reminder_days(release_id: int, notices: Sequence[str]) -> frozenset[int]:
    """The reminders (days before the date) among `notices` for this release."""
    prefix = f"{PREFIX}:{release_id}:"
    return frozenset(
        int(name.removeprefix(prefix))
        for name in notices
        if name.startswith(prefix) and name.removeprefix(prefix).isdigit()
    )


@dataclass(frozen=True)
class Message:
    kind: str
    subject: str
    body: str
    link: str | None
    data: dict[str, Any]


async def grants_by_account(
    session: AsyncSession, model_id: int, now: datetime
) -> dict[str, list[Grant]]:
    """The model's grants that give access now (active, window not ended), per account."""
    grants = await repository.live_grants(session, model_id, now)
    by_account: dict[str, list[Grant]] = {}
    for grant in grants:
        by_account.setdefault(grant.account_id, []).append(grant)
    return by_account


async def notices_of(session: AsyncSession, grants: Sequence[Grant]) -> list[str]:
    """Every notice recorded for these grants."""
    return await repository.notices_of_grants(session, [g.id for g in grants])


async def claim(session: AsyncSession, grants: Sequence[Grant], notice: str, now: datetime) -> bool:
    """Record `notice` on every grant; True if at least one of them did not have it yet."""
    landed = False
    for grant in grants:  # every grant, not just the first: later runs look at all of them
        landed = await grant_repository.claim_notice(session, grant.id, notice, now) or landed
    return landed


async def tell_grantees(
    session: AsyncSession,
    rt: Runtime,
    *,
    model_id: int,
    notice: str,
    message: Message,
    now: datetime,
) -> int:
    """Send `message` once to every account with access to the model now; how many got it."""
    told = 0
    for grants in (await grants_by_account(session, model_id, now)).values():
        if notice in await notices_of(session, grants):
            continue
        if not await claim(session, grants, notice, now):
            continue
        send(session, rt, grants[0], message, now)
        told += 1
    return told


def send(session: AsyncSession, rt: Runtime, grant: Grant, message: Message, now: datetime) -> None:
    """Queue `message` for the grant's account (inbox, email, webhooks)."""
    notify(
        session,
        rt.settings,
        account_id=grant.account_id,
        kind=message.kind,
        subject=message.subject,
        body=message.body,
        link=message.link,
        now=now,
        email=grant.account.email,
        data=message.data,
    )
