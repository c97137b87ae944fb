"""Yanking a release (PEP 592's softer response than a recall).

A yanked release is no longer anyone's latest: the catalog, the API's verification of a
model without a version and `gateway download ORG/NAME` pass over it to the newest
release that is not yanked. It stays downloadable by its exact version for the grants
that allow it, flagged with its reason in the catalog, the manifest and the client's
warning. Un-yanking puts it back as it was. Both are evidence; grantees are told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway import evidence
from gateway.catalog.repository import release_by_ref
from gateway.db.models import Release
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict
from gateway.notify.service import notify
from gateway.staging.repository import grantees_of
from gateway.text import clean_text
from stages import evidence as ev
from stages.names import ModelRef
from stages.release import Status

REASON_MAX = 2000


def clean_reason(reason: str) -> str:
    """The reason for a move on a release (a yank, a quarantine): required text."""
    cleaned = clean_text(
        reason, field="the reason (--reason)", max_length=REASON_MAX, required=True
    )
    return cleaned or ""


@dataclass(frozen=True)
class YankState:
    ref: str
    yanked: bool
    reason: str | None
    at: datetime | None
    by: str | None
    grantees_notified: int = 0

    @classmethod
    def of(cls, release: Release, notified: int = 0) -> YankState:
        return cls(
            ref=f"{release.model.ref}:{release.version}",
            yanked=release.yanked_at is not None,
            reason=release.yanked_reason,
            at=release.yanked_at,
            by=release.yanked_by,
            grantees_notified=notified,
        )


async def yank(
    uow: UnitOfWork, model: ModelRef, version: str, *, reason: str, actor: str
) -> YankState:
    """Yank a release with a reason shown to everyone who sees it."""
    reason = clean_reason(reason)
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
    ref = f"{release.model.ref}:{release.version}"
    if release.status == Status.DECOMMISSIONED:
        raise Conflict(f"{ref} is decommissioned: there is nothing to yank", code="decommissioned")
    if release.yanked_at is not None:
        raise Conflict(
            f"{ref} is already yanked (since {release.yanked_at:%Y-%m-%d %H:%M} UTC: "
            f"{release.yanked_reason}); un-yank it first to give another reason",
            code="already_yanked",
        )
    release.yanked_at = now
    release.yanked_reason = reason
    release.yanked_by = actor
    told = await _announce(
        uow,
        release,
        ev.ReleaseYanked(reason=reason),
        actor=actor,
        at=now,
        kind="release.yanked",
        subject=f"{ref} was yanked",
        body=(
            f"{ref} was yanked: it is no longer the latest release of {release.model.ref}, "
            f"and downloads without a version now pass over it.\nReason: {reason}\n"
            f"It stays downloadable as {ref} while your grant allows it; "
            "consider moving to another release."
        ),
    )
    return YankState.of(release, told)


async def unyank(uow: UnitOfWork, model: ModelRef, version: str, *, actor: str) -> YankState:
    """Take a yank back: the release is again what it was before."""
    rt = uow.rt
    now = rt.clock()
    session = await uow.write()
    release = await release_by_ref(session, model, version, lock=True)
    ref = f"{release.model.ref}:{release.version}"
    if release.yanked_at is None:
        raise Conflict(f"{ref} is not yanked", code="not_yanked")
    reason = release.yanked_reason or ""
    release.yanked_at = None
    release.yanked_reason = None
    release.yanked_by = None
    told = await _announce(
        uow,
        release,
        ev.ReleaseUnyanked(reason=reason),
        actor=actor,
        at=now,
        kind="release.unyanked",
        subject=f"{ref} is no longer yanked",
        body=f"{ref} is no longer yanked (it had been for: {reason}).",
    )
    return YankState.of(release, told)


async def _announce(
    uow: UnitOfWork,
    release: Release,
    payload: ev.Payload,
    *,
    actor: str,
    at: datetime,
    kind: str,
    subject: str,
    body: str,
) -> int:
    """Record the move as evidence and tell each grantee of the model once; how many."""
    rt = uow.rt
    session = await uow.write()
    evidence.record(
        session,
        payload,
        actor=ev.Actor.parse(actor),
        at=at,
        model_id=release.model_id,
        release_id=release.id,
    )
    told: set[str] = set()
    for grant, account in await grantees_of(session, release.model_id, None):
        if account.id in told:
            continue
        told.add(account.id)
        notify(
            session,
            rt.settings,
            account_id=account.id,
            kind=kind,
            subject=subject,
            body=body,
            link=f"{rt.settings.public_url}/models/{release.model.org}/{release.model.name}",
            now=at,
            email=account.email,
            data={"release": f"{release.model.ref}:{release.version}", "grant": grant.id},
        )
    return len(told)
