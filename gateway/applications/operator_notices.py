"""Telling operators that an application awaits their review.

Rules of this module:
- Every active operator gets an inbox entry when an application enters the review
  queue, in the transaction that submits it; the applicant, if an operator, is not told
  of their own application.
- `operator_notices = "immediate"` (gateway.toml) mails each entry as it is made;
  `"daily"` holds the entries' mail, and the digest job mails each operator one summary
  of what was held, through the same delivery as every other mail, once the oldest entry
  held for them is a day old. So an operator gets at most one digest a day (every entry
  of the next one came after this one), and no entry waits much longer than a day.
- A notice says who applied, for what, and where to review it: never the answers, and
  nothing secret.
- The digest job claims the entries it summarises with one conditional UPDATE, so two
  runs never mail the same entry twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from gateway.applications import repository
from gateway.db.models import Account, Application, Model, Notification
from gateway.db.uow import UnitOfWork
from gateway.notify.service import DIGESTED, HELD_FOR_DIGEST, notify, queue_mail
from gateway.runtime import Runtime

KIND = "ops.application_submitted"
DIGEST_KIND = "ops.application_digest"
DIGEST_EVERY = timedelta(days=1)


async def tell_operators(
    uow: UnitOfWork,
    application: Application,
    applicant: Account,
    model: Model,
    due_at: datetime,
) -> int:
    """Queue the notice of a new application for every active operator; how many."""
    rt = uow.rt
    session = await uow.write()
    operators = await repository.active_operators(session, besides=applicant.id)
    who = applicant.email
    if applicant.display_name:
        who = f"{applicant.display_name} ({applicant.email})"
    link = f"{rt.settings.public_url}/ops/applications/{application.id}"
    for operator in operators:
        notify(
            session,
            rt.settings,
            account_id=operator.id,
            kind=KIND,
            subject=f"New application: {model.ref}, {application.tier} tier",
            body=f"{who} applied for the {application.tier} tier of {model.ref}. "
            f"It is in the review queue; the review is due by {due_at:%Y-%m-%d %H:%M} UTC.",
            link=link,
            now=rt.clock(),
            email=operator.email,
            data={"application": application.id, "model": model.ref, "tier": application.tier},
            digest=rt.settings.operator_notices == "daily",
        )
    return len(operators)


async def send_operator_digests(rt: Runtime) -> int:
    """Mail a summary to each operator whose oldest held notice is a day old; how many."""
    async with rt.reading() as session:
        held = (
            await session.execute(
                select(Notification.account_id, Notification.id, Notification.created_at)
                .where(Notification.email_status == HELD_FOR_DIGEST)
                .order_by(Notification.account_id, Notification.created_at, Notification.id)
            )
        ).all()
    by_account: dict[str, list[int]] = {}
    oldest: dict[str, datetime] = {}
    for account_id, note_id, created_at in held:
        by_account.setdefault(account_id, []).append(note_id)
        oldest.setdefault(account_id, created_at)
    due = rt.clock() - DIGEST_EVERY
    by_account = {a: ids for a, ids in by_account.items() if oldest[a] <= due}
    mailed = 0
    for account_id, ids in by_account.items():
        if await _digest_for(rt, account_id, ids):
            mailed += 1
    return mailed


class _Taken(Exception):
    """Another run claimed some of the entries first: this run's claim is undone."""


async def _digest_for(rt: Runtime, account_id: str, ids: list[int]) -> bool:
    try:
        return await _claim_and_mail(rt, account_id, ids)
    except _Taken:
        return False


async def _claim_and_mail(rt: Runtime, account_id: str, ids: list[int]) -> bool:
    now = rt.clock()
    async with rt.transaction() as session:
        operator = await session.get(Account, account_id)
        notes = (
            await session.scalars(
                select(Notification)
                .where(Notification.id.in_(ids), Notification.email_status == HELD_FOR_DIGEST)
                .order_by(Notification.created_at, Notification.id)
            )
        ).all()
        if not notes:
            return False
        claimed = await session.execute(
            update(Notification)
            .where(
                Notification.id.in_([note.id for note in notes]),
                Notification.email_status == HELD_FOR_DIGEST,
            )
            .values(email_status=DIGESTED)
            .execution_options(synchronize_session=False)
        )
        if cast("CursorResult[Any]", claimed).rowcount != len(notes):
            raise _Taken
        if operator is None or not operator.is_operator or operator.status != "active":
            return False  # no longer one to mail: the entries stay in the inbox, unmailed
        count = len(notes)
        lines = [f"- {note.subject}\n  {note.body}\n  {note.link or ''}".rstrip() for note in notes]
        queue_mail(
            session,
            rt.settings,
            account_id=account_id,
            kind=DIGEST_KIND,
            subject=f"{count} new application{'' if count == 1 else 's'} to review",
            body=f"Since the last digest, {count} application"
            f"{' was' if count == 1 else 's were'} submitted for review:\n\n"
            + "\n\n".join(lines)
            + f"\n\nThe review queue: {rt.settings.public_url}/ops",
            link=f"{rt.settings.public_url}/ops",
            now=now,
            email=operator.email,
        )
    return True
