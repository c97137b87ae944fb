"""Quarantine (PEP 792): a release held while reports about it are looked into.

A quarantined release gives out nothing new: no manifest (so no new download links) and
no API use; a link already issued for one file still serves, and nothing else about the
release changes. The policy's `[quarantine]` names trusted reporters (accounts by email,
or every account of a domain); when `reports` distinct trusted reporters have open
incidents about one release, the report that makes the count quarantines it at once,
faster than a full triage. An operator may quarantine by hand too, and lifts it (or
recalls the release) once they have decided. Both are evidence; operators are told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway import evidence
from gateway.catalog.repository import release_by_ref
from gateway.db.models import Incident, Release
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict
from gateway.incidents import repository as incidents
from gateway.notify.service import notify
from gateway.staging.yanks import clean_reason
from stages import evidence as ev
from stages.names import ModelRef
from stages.release import Status


@dataclass(frozen=True)
class QuarantineState:
    ref: str
    quarantined: bool
    reason: str | None
    at: datetime | None
    by: str | None

    @classmethod
    def of(cls, release: Release) -> QuarantineState:
        return cls(
            ref=f"{release.model.ref}:{release.version}",
            quarantined=release.quarantined_at is not None,
            reason=release.quarantine_reason,
            at=release.quarantined_at,
            by=release.quarantined_by,
        )


async def quarantine(
    uow: UnitOfWork, model: ModelRef, version: str, *, reason: str, actor: str
) -> QuarantineState:
    """Quarantine a release by hand."""
    reason = clean_reason(reason)
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
    ref = f"{release.model.ref}:{release.version}"
    if release.status == Status.DECOMMISSIONED:
        raise Conflict(f"{ref} is decommissioned: nothing to hold", code="decommissioned")
    if release.quarantined_at is not None:
        raise Conflict(
            f"{ref} is already quarantined (since {release.quarantined_at:%Y-%m-%d %H:%M} "
            f"UTC: {release.quarantine_reason})",
            code="already_quarantined",
        )
    await _hold(uow, release, reason, actor, ())
    return QuarantineState.of(release)


async def lift_quarantine(
    uow: UnitOfWork, model: ModelRef, version: str, *, reason: str, actor: str
) -> QuarantineState:
    """An operator's decision: the release gives out links and API use again."""
    reason = clean_reason(reason)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
    ref = f"{release.model.ref}:{release.version}"
    if release.quarantined_at is None:
        raise Conflict(f"{ref} is not quarantined", code="not_quarantined")
    release.quarantined_at = None
    release.quarantine_reason = None
    release.quarantined_by = None
    evidence.record(
        session,
        ev.ReleaseQuarantineLifted(reason=reason),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    await _tell_operators(uow, release, f"{ref} is no longer quarantined", f"Lifted: {reason}")
    return QuarantineState.of(release)


async def consider_quarantine(uow: UnitOfWork, incident: Incident) -> bool:
    """After a report about a release: quarantine it if enough distinct trusted reporters
    now have open incidents about it. Runs in the report's unit, with the release row
    locked, so two reports arriving together quarantine it once."""
    rules = uow.rt.policy.quarantine
    if not rules.trusted_reporters or incident.release_id is None:
        return False
    session = await uow.write()
    # FOR NO KEY UPDATE: the incident this unit inserted holds a key-share lock on the
    # release (its foreign key), as does a report arriving at once; a full FOR UPDATE
    # would deadlock the two, this one lets them take turns.
    release = await session.get(Release, incident.release_id, with_for_update={"key_share": True})
    if release is None or release.quarantined_at is not None:
        return False
    if release.status == Status.DECOMMISSIONED:
        return False
    trusted: dict[str, str] = {}  # reporter email -> the first of their open incidents
    for incident_id, email in await incidents.open_reporters(session, release.id):
        if rules.trusts(email):
            trusted.setdefault(email.lower(), incident_id)
    if len(trusted) < rules.reports:
        return False
    await session.refresh(release, ["model"])
    reason = f"{len(trusted)} trusted reporters reported it: " + ", ".join(sorted(trusted))
    await _hold(uow, release, reason, ev.TRIGGER, tuple(trusted.values()))
    return True


async def _hold(
    uow: UnitOfWork, release: Release, reason: str, actor: str, incident_ids: tuple[str, ...]
) -> None:
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    release.quarantined_at = now
    release.quarantine_reason = reason
    release.quarantined_by = actor
    evidence.record(
        session,
        ev.ReleaseQuarantined(reason=reason, incidents=incident_ids),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
    )
    ref = f"{release.model.ref}:{release.version}"
    await _tell_operators(
        uow,
        release,
        f"{ref} is quarantined",
        f"{ref} is quarantined: no new download links or API use until an operator lifts it "
        f"(`gateway quarantine lift {ref} --reason ...`) or recalls it.\nReason: {reason}",
    )


async def _tell_operators(uow: UnitOfWork, release: Release, subject: str, body: str) -> None:
    rt = uow.rt
    session = await uow.write()
    model = release.model
    link = f"{rt.settings.public_url}/ops/releases/{model.org}/{model.name}/{release.version}"
    for account_id, email in await incidents.active_operators(session):
        notify(
            session,
            rt.settings,
            account_id=account_id,
            kind="release.quarantine",
            subject=subject,
            body=body,
            link=link,
            now=rt.clock(),
            email=email,
            data={"release": f"{release.model.ref}:{release.version}"},
        )
