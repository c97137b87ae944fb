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
- The digest job runs in one unit of work and claims the entries it summarises with one
  guarded UPDATE per operator (the GATHER move), so two runs never mail an entry twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.applications import repository
from gateway.db.models import Account, Application, Model
from gateway.db.uow import UnitOfWork
from gateway.identity import repository as identity_repository
from gateway.notify import repository as notify_repository
from gateway.notify.service import notify, queue_mail
from stages.enforcement import AccountStatus

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


async def send_operator_digests(uow: UnitOfWork) -> int:
    """Mail a summary to each operator whose oldest held notice is a day old; how many."""
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    mailed = 0
    for account_id, oldest in await notify_repository.held_for_digest(session):
        if oldest > now - DIGEST_EVERY:
            continue
        notes = await notify_repository.gather_for_digest(session, account_id)
        operator = await identity_repository.get_account(session, account_id)
        if (
            not notes
            or operator is None
            or not operator.is_operator
            or operator.status != AccountStatus.ACTIVE
        ):
            continue  # no longer one to mail: the entries stay in the inbox, unmailed
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
        mailed += 1
    return mailed
