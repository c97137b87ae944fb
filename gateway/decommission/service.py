"""Decommission a release: announce the end of hosting with notice, remind the grantees,
end hosting at the date, and purge the stored files once the retention period is over.

When reminders fall and when purging becomes possible is decided in
policies/decommission.py; the release's status changes only through the stage machine
(gateway.staging.service.move_release). The two jobs (send_reminders, execute_due) are
ordinary, idempotent service calls: messages are claimed with GrantNotice rows (see
gateway.decommission.notices) and the execution with a guarded UPDATE on executed_at,
so two processes running them never act twice. Purging is never a job: an operator asks
for it, and it deletes only objects no other live release still uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway import evidence
from gateway.catalog.repository import release_by_ref
from gateway.db.models import (
    Artifact,
    Decommission,
    EvidenceAttachment,
    Grant,
    GrantNotice,
    License,
    Model,
    Release,
)
from gateway.db.uow import run_unit
from gateway.decommission import notices
from gateway.decommission.notices import Message
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.grants.lifecycle import request_closeouts
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from gateway.storage import Storage
from gateway.text import clean_text
from policies.decommission import decommission_schedule, reminders_due, retention_clock
from policies.schema import DecommissionRules
from stages import evidence as ev
from stages.grants import GrantMove, bulk_grant_move
from stages.names import InvalidName, ModelRef, check_version
from stages.release import DRAFT, Move, Status

SYSTEM = ev.SCHEDULER
GRANT_END_REASON = "the release was decommissioned"


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _link(rt: Runtime, model: Model, version: str) -> str:
    return f"{rt.settings.public_url}/models/{model.org}/{model.name}/releases/{version}"


# --- announce ------------------------------------------------------------------------


async def announce(
    rt: Runtime,
    model: ModelRef,
    version: str,
    *,
    at: datetime,
    reason: str,
    successor: str | None,
    license_text: str | None,
    actor: str,
) -> Decommission:
    """Announce that hosting of a release ends at `at`, and tell every grantee of the model."""
    reason = clean_text(reason, field="the reason (--reason)", max_length=5000, required=True) or ""
    if at.tzinfo is None:
        raise InvalidInput("the decommission date needs a time zone", code="invalid_date")
    at = at.astimezone(UTC)
    if license_text is not None:
        _check_license_text(license_text)
    now = rt.clock()
    ref = f"{model}:{version}"
    if at <= now:
        raise InvalidInput(
            f"the decommission date {_at(at)} is not in the future; ending hosting at once "
            "is a recall",
            code="decommission_date_past",
        )
    try:
        async with rt.transaction() as session:
            release = await _release(session, model, version, lock=True)
            if release.status == Status.DECOMMISSIONED:
                raise Conflict(f"{ref} is already decommissioned", code="release_decommissioned")
            announced = await session.get(Decommission, release.id)
            if announced is not None:
                raise Conflict(
                    f"{ref}: a decommission is already announced for {_at(announced.effective_at)}",
                    code="decommission_announced",
                )
            if successor is not None:
                await _check_successor(session, release, successor)
            new_license = None
            if license_text is not None:
                new_license = await _store_license(session, license_text, now)
                if new_license.id == release.license_id:
                    raise InvalidInput(
                        f"the new license is {ref}'s current license", code="license_unchanged"
                    )
            row = Decommission(
                release_id=release.id,
                announced_at=now,
                effective_at=at,
                reason=reason,
                successor_version=successor,
                new_license_id=new_license.id if new_license else None,
                announced_by=actor,
            )
            session.add(row)
            await session.flush()
            told = await notices.tell_grantees(
                session,
                rt,
                model_id=release.model_id,
                notice=notices.notice_name(release.id, notices.ANNOUNCED),
                message=_announcement(rt, release, row, new_license),
                now=now,
            )
            schedule = decommission_schedule(rt.policy.decommission, now, at)
            evidence.record(
                session,
                ev.ReleaseDecommissionAnnounced(
                    effective_at=at,
                    reason=reason,
                    successor=successor,
                    license_sha256=new_license.sha256 if new_license else None,
                    reminders=tuple(schedule),
                    grantees_notified=told,
                ),
                actor=ev.Actor.parse(actor),
                at=now,
                model_id=release.model_id,
                release_id=release.id,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"{ref}: another command announced its decommission (or stored the same "
            "license) at the same time; look at it again and retry",
            code="decommission_announced",
        ) from exc
    return row


def _check_license_text(text: str) -> None:
    if not text.strip():
        raise InvalidInput("the new license is empty", code="license_invalid")
    if "\x00" in text:  # PostgreSQL cannot store it, and no license has it
        raise InvalidInput("the new license contains NUL characters", code="license_invalid")


async def _check_successor(session: AsyncSession, release: Release, successor: str) -> None:
    try:
        check_version(successor)
    except InvalidName as exc:
        raise InvalidInput(f"--successor: {exc}", code="invalid_version") from exc
    ref = f"{release.model.ref}:{successor}"
    if successor == release.version:
        raise InvalidInput("a release cannot be its own successor", code="invalid_successor")
    found = await session.scalar(
        select(Release).where(Release.model_id == release.model_id, Release.version == successor)
    )
    if found is None:
        raise NotFound(f"no release {ref} to be the successor", code="successor_not_found")
    if found.status == Status.DECOMMISSIONED:
        raise Conflict(
            f"the successor {ref} is decommissioned itself", code="successor_decommissioned"
        )


async def _store_license(session: AsyncSession, text: str, now: datetime) -> License:
    # The same content-addressed row publishing uses: one row per license text.
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = await session.scalar(select(License).where(License.sha256 == sha256))
    if row is None:
        row = License(sha256=sha256, text=text, created_at=now)
        session.add(row)
        await session.flush()
    return row


def _announcement(
    rt: Runtime, release: Release, row: Decommission, new_license: License | None
) -> Message:
    ref = f"{release.model.ref}:{release.version}"
    lines = [
        f"{ref} will no longer be hosted from {_at(row.effective_at)}: downloads stop then.",
        f"Reason: {row.reason}",
    ]
    if row.successor_version:
        lines.append(f"Its successor is {release.model.ref}:{row.successor_version}.")
    if new_license is not None:
        lines.append(
            f"From that date its license changes (new license SHA-256 {new_license.sha256})."
        )
    lines.append("Download what you still need before then.")
    return Message(
        kind="release.decommission_announced",
        subject=f"Hosting of {ref} ends on {row.effective_at:%Y-%m-%d}",
        body="\n\n".join(lines),
        link=_link(rt, release.model, release.version),
        data={
            "release": ref,
            "effective_at": row.effective_at.isoformat(),
            "successor": row.successor_version,
        },
    )


# --- reminders (a job) ---------------------------------------------------------------


async def send_reminders(rt: Runtime) -> int:
    """Remind grantees before a decommission date, per the policy; each reminder once.

    Returns how many messages were sent. When several reminders are due at once (the job
    did not run for a while), one message says how long is actually left.
    """
    rules = rt.policy.decommission
    now = rt.clock()
    sent = 0
    async with rt.transaction() as session:
        pending = (
            await session.scalars(
                select(Decommission)
                .where(Decommission.executed_at.is_(None), Decommission.effective_at > now)
                .order_by(Decommission.effective_at)
            )
        ).all()
        for row in pending:
            release = await _release_by_id(session, row.release_id)
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
        f"Hosting of {ref} ends {left}, on {_at(row.effective_at)}: downloads stop then.",
        f"Reason: {row.reason}",
    ]
    if row.successor_version:
        lines.append(f"Its successor is {release.model.ref}:{row.successor_version}.")
    return Message(
        kind="release.decommission_reminder",
        subject=f"Hosting of {ref} ends {left}",
        body="\n\n".join(lines),
        link=_link(rt, release.model, release.version),
        data={"release": ref, "effective_at": row.effective_at.isoformat()},
    )


# --- execution at the date (a job) ---------------------------------------------------


async def execute_due(rt: Runtime) -> int:
    """Decommission every release whose date has come; how many this run did.

    Downloads stop at once (the access decision denies a decommissioned release). When no
    other release of the model is open (active and past draft), the model's grants end
    and close-out attestations are requested.
    """
    now = rt.clock()
    async with rt.sessionmaker() as session:
        due = (
            await session.execute(
                select(
                    Decommission.release_id,
                    Decommission.reason,
                    Model.org,
                    Model.name,
                    Release.version,
                )
                .select_from(Decommission)
                .join(Release, Release.id == Decommission.release_id)
                .join(Model, Model.id == Release.model_id)
                .where(Decommission.executed_at.is_(None), Decommission.effective_at <= now)
                .order_by(Decommission.effective_at, Decommission.release_id)
            )
        ).all()
    done = 0
    grants_ended = 0
    for release_id, reason, org, name, version in due:
        outcome = await _execute(rt, release_id, ModelRef(org, name), version, reason)
        if outcome is not None:
            done += 1
            grants_ended += outcome
    if grants_ended:
        await request_closeouts(rt)
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
    now = rt.clock()
    async with rt.transaction() as session:
        claimed = await session.execute(
            update(Decommission)
            .where(Decommission.release_id == release_id, Decommission.executed_at.is_(None))
            .values(executed_at=now)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        release = await _release_by_id(session, release_id)
        if release.status != Status.DECOMMISSIONED:
            # move_release refused for a reason other than "already decommissioned";
            # raising rolls the claim back so that the next run tries again.
            raise Conflict(
                f"{model}:{version} could not be decommissioned (status {release.status})",
                code="illegal_stage_move",
            )
        row = await session.get(Decommission, release_id)
        assert row is not None
        successor_open = await _other_open_release(session, release)
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


async def _other_open_release(session: AsyncSession, release: Release) -> bool:
    """Whether grants of the model still have something to download once this one is gone."""
    other = await session.scalar(
        select(Release.id)
        .where(
            Release.model_id == release.model_id,
            Release.id != release.id,
            Release.status == Status.ACTIVE.value,
            Release.stage != DRAFT,
        )
        .limit(1)
    )
    return other is not None


async def _end_grants(session: AsyncSession, release: Release, now: datetime) -> int:
    ref = f"{release.model.ref}:{release.version}"
    # The statuses an expiry starts from and the one it leads to, from the grant table.
    open_statuses, expired = bulk_grant_move(GrantMove.EXPIRE)
    ids = (
        await session.scalars(
            select(Grant.id).where(
                Grant.model_id == release.model_id, Grant.status.in_(open_statuses)
            )
        )
    ).all()
    ended = 0
    for grant_id in ids:
        result = await session.execute(
            update(Grant)
            .where(Grant.id == grant_id, Grant.status.in_(open_statuses))
            .values(status=expired, status_reason=GRANT_END_REASON, status_changed_at=now)
            .returning(Grant.account_id, Grant.status)
        )
        claimed = result.first()
        if claimed is None:
            continue
        evidence.record(
            session,
            ev.GrantExpired(grant=grant_id, reason=GRANT_END_REASON, release=ref),
            actor=SYSTEM,
            at=now,
            model_id=release.model_id,
            account_id=claimed.account_id,
        )
        ended += 1
    return ended


async def _change_license(
    session: AsyncSession, release: Release, row: Decommission, now: datetime
) -> str | None:
    """Put the announced license in force; the new license's SHA-256, None if none was given."""
    if row.new_license_id is None:
        return None
    new = await session.get(License, row.new_license_id)
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
    lines = [f"{ref} is no longer hosted as of {_at(row.effective_at)}.", f"Reason: {row.reason}"]
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
        link=_link(rt, release.model, release.version),
        data={"release": ref, "grants_continue": successor_open},
    )


# --- purge ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgePlan:
    """What purging a decommissioned release would delete, and what it keeps."""

    ref: str
    release_id: int
    delete: tuple[str, ...]  # SHA-256 of the objects to delete
    delete_bytes: int
    kept: int  # objects another release (or an evidence attachment) still uses


@dataclass(frozen=True)
class Purged:
    ref: str
    deleted: int
    deleted_bytes: int
    kept: int
    purged_at: datetime


async def plan_purge(
    rt: Runtime, model: ModelRef, version: str, *, now: datetime | None = None
) -> PurgePlan:
    """What purge() would delete; Conflict if the release may not be purged (yet)."""
    now = now or rt.clock()
    async with rt.sessionmaker() as session:
        release = await _release(session, model, version)
        row = await session.get(Decommission, release.id)
        _check_purgeable(rt.policy.decommission, f"{model}:{version}", row, now)
        return await _plan(session, release)


async def purge(
    rt: Runtime, model: ModelRef, version: str, *, actor: str, now: datetime | None = None
) -> Purged:
    """Delete the stored objects of a decommissioned release once its retention is over.

    An object another release that is not purged (or an evidence attachment) still uses
    is kept. The objects go first and the record after, so a purge that fails half-way
    can simply be run again.
    """
    now = now or rt.clock()
    plan = await plan_purge(rt, model, version, now=now)
    await asyncio.to_thread(_delete_all, rt.storage, plan.delete)
    async with rt.transaction() as session:
        claimed = await session.execute(
            update(Decommission)
            .where(Decommission.release_id == plan.release_id, Decommission.purged_at.is_(None))
            .values(purged_at=now)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            raise Conflict(f"{plan.ref} was purged by another command", code="already_purged")
        release = await _release_by_id(session, plan.release_id)
        evidence.record(
            session,
            ev.ReleasePurged(
                objects_deleted=len(plan.delete),
                bytes_deleted=plan.delete_bytes,
                objects_kept=plan.kept,
            ),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=release.model_id,
            release_id=release.id,
        )
    return Purged(
        ref=plan.ref,
        deleted=len(plan.delete),
        deleted_bytes=plan.delete_bytes,
        kept=plan.kept,
        purged_at=now,
    )


def _check_purgeable(
    rules: DecommissionRules, ref: str, row: Decommission | None, now: datetime
) -> None:
    if row is None:
        raise Conflict(
            f"{ref} has no decommission; announce one first (gateway decommission)",
            code="not_decommissioned",
        )
    if row.purged_at is not None:
        raise Conflict(f"{ref} was already purged on {_at(row.purged_at)}", code="already_purged")
    if row.executed_at is None:
        raise Conflict(
            f"{ref} is still hosted until {_at(row.effective_at)}; it can be purged "
            f"{rules.retention_days} day(s) after that",
            code="not_decommissioned",
        )
    clock = retention_clock(rules, row.effective_at, now)
    if not clock.purgeable:
        raise Conflict(
            f"{ref} is kept for {rules.retention_days} day(s) after it was decommissioned; "
            f"it can be purged from {_at(clock.purge_at)}",
            code="retention_period",
        )


async def _plan(session: AsyncSession, release: Release) -> PurgePlan:
    rows = await session.execute(
        select(Artifact.sha256, func.max(Artifact.size))
        .where(Artifact.release_id == release.id)
        .group_by(Artifact.sha256)
    )
    mine: dict[str, int] = dict(rows.all())
    own = select(Artifact.sha256).where(Artifact.release_id == release.id)
    # Another release uses an object until it is purged itself; an outer join leaves
    # purged_at NULL for a release that was never decommissioned.
    shared = set(
        (
            await session.scalars(
                select(Artifact.sha256)
                .join(Release, Release.id == Artifact.release_id)
                .outerjoin(Decommission, Decommission.release_id == Release.id)
                .where(
                    Artifact.release_id != release.id,
                    Artifact.sha256.in_(own),
                    Decommission.purged_at.is_(None),
                )
            )
        ).all()
    )
    shared.update(
        sha256
        for sha256 in (
            await session.scalars(
                select(EvidenceAttachment.file_sha256).where(
                    EvidenceAttachment.file_sha256.in_(own)
                )
            )
        ).all()
        if sha256 is not None
    )
    delete = tuple(sorted(set(mine) - shared))
    return PurgePlan(
        ref=f"{release.model.ref}:{release.version}",
        release_id=release.id,
        delete=delete,
        delete_bytes=sum(mine[sha256] for sha256 in delete),
        kept=len(set(mine) & shared),
    )


def _delete_all(storage: Storage, objects: Iterable[str]) -> None:
    for sha256 in objects:
        storage.delete(sha256)


# --- status --------------------------------------------------------------------------


@dataclass(frozen=True)
class DecommissionStatus:
    """A release's decommission as an operator sees it."""

    ref: str
    release_status: str
    announced_at: datetime
    announced_by: str
    effective_at: datetime
    reason: str
    successor: str | None
    new_license_sha256: str | None
    reminders: tuple[datetime, ...]  # when the policy's reminders fall
    grantees_notified: int  # accounts told of the announcement
    executed_at: datetime | None
    purge_at: datetime  # when the stored files may be purged
    purgeable: bool
    purged_at: datetime | None

    @property
    def phase(self) -> str:
        """announced, decommissioned or purged."""
        if self.purged_at is not None:
            return "purged"
        return "decommissioned" if self.executed_at is not None else "announced"


async def status(
    session: AsyncSession,
    model: ModelRef,
    version: str,
    *,
    rules: DecommissionRules,
    now: datetime,
) -> DecommissionStatus | None:
    """The release's decommission, None if none was announced; NotFound without the release."""
    release = await _release(session, model, version)
    row = await session.get(Decommission, release.id)
    if row is None:
        return None
    new_license = await session.get(License, row.new_license_id) if row.new_license_id else None
    notified = await session.scalar(
        select(func.count(func.distinct(Grant.account_id)))
        .join(GrantNotice, GrantNotice.grant_id == Grant.id)
        .where(GrantNotice.notice == notices.notice_name(release.id, notices.ANNOUNCED))
    )
    clock = retention_clock(rules, row.effective_at, now)
    return DecommissionStatus(
        ref=f"{model}:{version}",
        release_status=release.status,
        announced_at=row.announced_at,
        announced_by=row.announced_by,
        effective_at=row.effective_at,
        reason=row.reason,
        successor=row.successor_version,
        new_license_sha256=new_license.sha256 if new_license else None,
        reminders=decommission_schedule(rules, row.announced_at, row.effective_at),
        grantees_notified=notified or 0,
        executed_at=row.executed_at,
        purge_at=clock.purge_at,
        purgeable=clock.purgeable and row.executed_at is not None and row.purged_at is None,
        purged_at=row.purged_at,
    )


# --- loading -------------------------------------------------------------------------


_WITH_LICENSE = (selectinload(Release.model), selectinload(Release.license))


async def _release(
    session: AsyncSession, model: ModelRef, version: str, *, lock: bool = False
) -> Release:
    # `lock` serialises an announcement with a concurrent stage move of the same release.
    return await release_by_ref(session, model, version, load=_WITH_LICENSE, lock=lock)


async def _release_by_id(session: AsyncSession, release_id: int) -> Release:
    release = await session.scalar(
        select(Release)
        .options(selectinload(Release.model), selectinload(Release.license))
        .where(Release.id == release_id)
        .execution_options(populate_existing=True)
    )
    assert release is not None
    return release
