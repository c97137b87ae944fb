"""Announcing a release's decommission: the end of hosting with notice, told to every
grantee of the model; and the announcement's status as operators see it.

When reminders fall and when purging becomes possible is decided in
policies/decommission.py. Everything here runs in the caller's unit of work; the jobs that
remind and end hosting are in service.py, purging in purge.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Decommission, License, Model, Release
from gateway.db.uow import UnitOfWork
from gateway.decommission import notices, repository
from gateway.decommission.notices import Message
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.runtime import Runtime
from gateway.text import clean_text
from policies.decommission import decommission_schedule, retention_clock
from policies.schema import DecommissionRules
from stages import evidence as ev
from stages.names import InvalidName, ModelRef, check_version
from stages.release import Status

SYSTEM = ev.SCHEDULER


def parse_when(text: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO date and time (UTC unless it carries an offset):
    the decommission date as `gateway decommission --at` and the operator API take it."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid date {text!r}: expected YYYY-MM-DD or an ISO date and time "
            "such as 2030-06-30T12:00 (UTC unless it has an offset)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def at_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def release_link(rt: Runtime, model: Model, version: str) -> str:
    return f"{rt.settings.public_url}/models/{model.org}/{model.name}/releases/{version}"


async def load_release(
    session: AsyncSession, model: ModelRef, version: str, *, lock: bool = False
) -> Release:
    """The release with its model and license; NotFound without it. `lock` serialises an
    announcement with a concurrent stage move of the same release."""
    release = await repository.release_by_ref(session, model, version, lock=lock)
    if release is None:
        raise NotFound(f"no release {model}:{version}", code="release_not_found")
    return release


async def load_release_by_id(session: AsyncSession, release_id: int) -> Release:
    release = await repository.release_by_id(session, release_id)
    assert release is not None
    return release


# --- announce ------------------------------------------------------------------------


async def announce(
    uow: UnitOfWork,
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
    rt = uow.rt
    now = rt.clock()
    ref = f"{model}:{version}"
    if at <= now:
        raise InvalidInput(
            f"the decommission date {at_text(at)} is not in the future; ending hosting at once "
            "is a recall",
            code="decommission_date_past",
        )
    session = await uow.write()
    try:
        release = await load_release(session, model, version, lock=True)
        if release.status == Status.DECOMMISSIONED:
            raise Conflict(f"{ref} is already decommissioned", code="release_decommissioned")
        announced = await repository.decommission_of(session, release.id)
        if announced is not None:
            raise Conflict(
                f"{ref}: a decommission is already announced for {at_text(announced.effective_at)}",
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


async def announce_with_status(
    uow: UnitOfWork,
    model: ModelRef,
    version: str,
    *,
    at: datetime | str,
    reason: str,
    successor: str | None,
    license_text: str | None,
    actor: str,
) -> DecommissionStatus:
    """Announce (as `announce`; `at` may be the text `parse_when` reads, 400 invalid_date
    if it does not) and return the announcement as operators see it."""
    if isinstance(at, str):
        try:
            at = parse_when(at)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="invalid_date") from exc
    await announce(
        uow,
        model,
        version,
        at=at,
        reason=reason,
        successor=successor,
        license_text=license_text,
        actor=actor,
    )
    rt = uow.rt
    shown = await status(uow, model, version, rules=rt.policy.decommission, now=rt.clock())
    assert shown is not None  # just announced, in this unit
    return shown


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
    found = await repository.release_of_model(session, release.model_id, successor)
    if found is None:
        raise NotFound(f"no release {ref} to be the successor", code="successor_not_found")
    if found.status == Status.DECOMMISSIONED:
        raise Conflict(
            f"the successor {ref} is decommissioned itself", code="successor_decommissioned"
        )


async def _store_license(session: AsyncSession, text: str, now: datetime) -> License:
    # The same content-addressed row publishing uses: one row per license text.
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = await repository.license_by_sha256(session, sha256)
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
        f"{ref} will no longer be hosted from {at_text(row.effective_at)}: downloads stop then.",
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
        link=release_link(rt, release.model, release.version),
        data={
            "release": ref,
            "effective_at": row.effective_at.isoformat(),
            "successor": row.successor_version,
        },
    )


# --- status ------------------------------------------------------------------------


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
    uow: UnitOfWork,
    model: ModelRef,
    version: str,
    *,
    rules: DecommissionRules,
    now: datetime,
) -> DecommissionStatus | None:
    """The release's decommission, None if none was announced; NotFound without the release."""
    session = uow.session
    release = await load_release(session, model, version)
    row = await repository.decommission_of(session, release.id)
    if row is None:
        return None
    new_license = (
        await repository.license_by_id(session, row.new_license_id) if row.new_license_id else None
    )
    notified = await repository.announced_to(
        session, notices.notice_name(release.id, notices.ANNOUNCED)
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
        grantees_notified=notified,
        executed_at=row.executed_at,
        purge_at=clock.purge_at,
        purgeable=clock.purgeable and row.executed_at is not None and row.purged_at is None,
        purged_at=row.purged_at,
    )
