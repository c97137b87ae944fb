"""The two jobs of a decommission: remind the grantees before the date, and end hosting
at the date.

The release's status changes only through the stage machine
(gateway.staging.service.move_release). Both jobs are ordinary, idempotent service calls:
messages are claimed with GrantNotice rows (see gateway.decommission.notices) and the
execution with a guarded UPDATE on executed_at, so two processes running them never act
twice.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Decommission, Release
from gateway.db.uow import UnitOfWork, run_unit
from gateway.decommission import notices, repository
from gateway.decommission.announce import SYSTEM, at_text, load_release_by_id, release_link
from gateway.decommission.notices import Message
from gateway.errors import Conflict
from gateway.grants.lifecycle import request_closeouts
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from policies.decommission import reminders_due
from policies.schema import DecommissionRules
from stages import evidence as ev
from stages.grants import GrantMove, bulk_grant_move
from stages.names import ModelRef
from stages.release import Move, Status

GRANT_END_REASON = "the release was decommissioned"

# --- reminders (a job) ---------------------------------------------------------------


async def send_reminders(uow: UnitOfWork) -> int:
    """Remind grantees before a decommission date, per the policy; each reminder once.

    Returns how many messages were sent. When several reminders are due at once (the job
    did not run for a while), one message says how long is actually left.
    """
    rt = uow.rt
    rules = rt.policy.decommission
    now = rt.clock()
    sent = 0
    session = await uow.write()
    for row in await repository.pending_announcements(session, now):
        release = await load_release_by_id(session, row.release_id)
        sent += await _remind(session, rt, rules, release, row, now)
    return sent


async def _remind(
    session: AsyncSession,
    rt: Runtime,
    rules: DecommissionRules,
    release: Release,
    row: Decommission,
    now: datetime,
) -> int:
    sent = 0
    for grants in (await notices.grants_by_account(session, release.model_id, now)).values():
        already = notices.reminder_days(release.id, await notices.notices_of(session, grants))
        due = reminders_due(rules, row.announced_at, row.effective_at, now, already)
        claimed = [
            days
            for days in due
            if await notices.claim(session, grants, notices.notice_name(release.id, days), now)
        ]
        if not claimed:
            continue
        notices.send(session, rt, grants[0], _reminder(rt, release, row, now), now)
        sent += 1
    return sent


def _reminder(rt: Runtime, release: Release, row: Decommission, now: datetime) -> Message:
    ref = f"{release.model.ref}:{release.version}"
    days = (row.effective_at - now).days
    left = f"in {days} day(s)" if days >= 1 else "in less than a day"
    lines = [
        f"Hosting of {ref} ends {left}, on {at_text(row.effective_at)}: downloads stop then.",
        f"Reason: {row.reason}",
    ]
    if row.successor_version:
        lines.append(f"Its successor is {release.model.ref}:{row.successor_version}.")
    return Message(
        kind="release.decommission_reminder",
        subject=f"Hosting of {ref} ends {left}",
        body="\n\n".join(lines),
        link=release_link(rt, release.model, release.version),
        data={"release": ref, "effective_at": row.effective_at.isoformat()},
    )


# --- execution at the date (a job) ---------------------------------------------------


async def execute_due(rt: Runtime) -> int:
    """Decommission every release whose date has come; how many this run did.

    Downloads stop at once (the access decision denies a decommissioned release). When no
    other release of the model is open (active and past draft), the model's grants end
    and close-out attestations are requested.

    A job's boundary: each release is a stage move of its own (move_release), then a unit
    that claims and records the rest, so one release's failure leaves the others done.
    """
    now = rt.clock()
    due = await run_unit(rt, lambda uow: repository.due_decommissions(uow.session, now))
    done = 0
    grants_ended = 0
    for release_id, reason, org, name, version in due:
        outcome = await _execute(rt, release_id, ModelRef(org, name), version, reason)
        if outcome is not None:
            done += 1
            grants_ended += outcome
    if grants_ended:
        await run_unit(rt, request_closeouts)
    return done


async def _execute(
    rt: Runtime, release_id: int, model: ModelRef, version: str, reason: str
) -> int | None:
    """Decommission one release; the number of grants ended, None if another run did it."""
    # Conflict: already decommissioned, by a run that stopped before recording the rest,
    # by a concurrent run, or by hand. The guarded UPDATE below decides who finishes.
    with contextlib.suppress(Conflict):
        await run_unit(
            rt,
            lambda uow: move_release(
                uow, model, version, Move.DECOMMISSION, target=None, actor=SYSTEM, reason=reason
            ),
        )
    return await run_unit(rt, lambda uow: _record_execution(uow, release_id, model, version))


async def _record_execution(
    uow: UnitOfWork, release_id: int, model: ModelRef, version: str
) -> int | None:
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    if not await repository.claim_execution(session, release_id, now):
        return None
    release = await load_release_by_id(session, release_id)
    if release.status != Status.DECOMMISSIONED:
        # move_release refused for a reason other than "already decommissioned";
        # raising rolls the claim back so that the next run tries again.
        raise Conflict(
            f"{model}:{version} could not be decommissioned (status {release.status})",
            code="illegal_stage_move",
        )
    row = await repository.decommission_of(session, release_id)
    assert row is not None
    successor_open = await repository.other_open_release(session, release)
    told = await notices.tell_grantees(
        session,
        rt,
        model_id=release.model_id,
        notice=notices.notice_name(release.id, notices.ENDED),
        message=_ended(rt, release, row, successor_open=successor_open),
        now=now,
    )
    ended = 0 if successor_open else await _end_grants(session, release, now)
    new_sha256 = await _change_license(session, release, row, now)
    evidence.record(
        session,
        ev.ReleaseDecommissioned(
            effective_at=row.effective_at,
            reason=row.reason,
            successor=row.successor_version,
            other_release_open=successor_open,
            grants_ended=ended,
            grantees_notified=told,
            license_sha256=new_sha256,
        ),
        actor=SYSTEM,
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    return ended


async def _end_grants(session: AsyncSession, release: Release, now: datetime) -> int:
    ref = f"{release.model.ref}:{release.version}"
    # The statuses an expiry starts from and the one it leads to, from the grant table.
    open_statuses, expired = bulk_grant_move(GrantMove.EXPIRE)
    ended = 0
    for grant_id in await repository.open_grant_ids(session, release.model_id, open_statuses):
        account_id = await repository.end_grant(
            session,
            grant_id,
            statuses=open_statuses,
            to=expired,
            reason=GRANT_END_REASON,
            now=now,
        )
        if account_id is None:
            continue
        evidence.record(
            session,
            ev.GrantExpired(grant=grant_id, reason=GRANT_END_REASON, release=ref),
            actor=SYSTEM,
            at=now,
            model_id=release.model_id,
            account_id=account_id,
        )
        ended += 1
    return ended


async def _change_license(
    session: AsyncSession, release: Release, row: Decommission, now: datetime
) -> str | None:
    """Put the announced license in force; the new license's SHA-256, None if none was given."""
    if row.new_license_id is None:
        return None
    new = await repository.license_by_id(session, row.new_license_id)
    assert new is not None
    old = release.license
    release.license_id = new.id
    evidence.record(
        session,
        ev.LicenseChanged(from_sha256=old.sha256, to_sha256=new.sha256, cause="decommission"),
        actor=SYSTEM,
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    return new.sha256


def _ended(rt: Runtime, release: Release, row: Decommission, *, successor_open: bool) -> Message:
    ref = f"{release.model.ref}:{release.version}"
    lines = [
        f"{ref} is no longer hosted as of {at_text(row.effective_at)}.",
        f"Reason: {row.reason}",
    ]
    if row.successor_version:
        lines.append(f"Its successor is {release.model.ref}:{row.successor_version}.")
    if successor_open:
        lines.append(f"Your access to {release.model.ref} continues for its other releases.")
    else:
        lines.append(
            f"Your access to {release.model.ref} has ended with it: you will be asked to "
            "confirm that you deleted your copies."
        )
    return Message(
        kind="release.decommissioned",
        subject=f"{ref} is no longer hosted",
        body="\n\n".join(lines),
        link=release_link(rt, release.model, release.version),
        data={"release": ref, "grants_continue": successor_open},
    )
