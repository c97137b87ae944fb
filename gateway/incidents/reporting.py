"""Reporting an incident: anyone reports one, and follows it by its tracking code.

The same functions serve the public report form and the JSON API. A report is checked in
full before anything is written, then written with its first timeline line and its
evidence in the request's unit of work; the operators are told.

What a reporter may see of an incident is a PublicStatus: its status and its public
resolution (the reason it was dismissed, the note it was resolved with). Never the
internal notes, the severity, the assignee or the linked accounts: the type has no field
for them, so no page can show them by mistake.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Incident, Model, Release
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, FieldChecks, InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.incidents import repository
from gateway.notify.service import notify
from gateway.ratelimits import RateLimit, RateLimiter
from gateway.runtime import Runtime
from gateway.staging.quarantine import consider_quarantine
from gateway.text import clean_text
from stages import evidence as ev
from stages.incidents import (
    TERMINAL_INCIDENT_STATUSES,
    Category,
    IncidentMove,
    IncidentStatus,
    Severity,
)
from stages.names import InvalidName, ModelRef, check_version, parse_release_ref

MIN_DESCRIPTION: Final = 20
MAX_DESCRIPTION: Final = 10_000
MAX_LINKS: Final = 10
MAX_LINK_LENGTH: Final = 2_000
MAX_NOTE: Final = 5_000
MAX_ADDRESS: Final = 100  # the column's width; an IPv6 address with a zone fits
PUBLIC_ACTOR: Final = ev.PUBLIC

# Crockford's base32 has no I, L, O or U: a code copied by hand or read aloud survives.
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_CHARS: Final = 8  # 40 random bits
_CONFUSABLE: Final = str.maketrans("OIL", "011")

# What each status means, in words for the person who reported it.
PUBLIC_STATUS_TEXT: Final[Mapping[IncidentStatus, str]] = {
    IncidentStatus.REPORTED: "received; the release team has not reviewed it yet",
    IncidentStatus.TRIAGED: "the release team is looking into it",
    IncidentStatus.CONFIRMED: "the release team confirmed the problem and is acting on it",
    IncidentStatus.DISMISSED: "closed without action",
    IncidentStatus.RESOLVED: "closed: the problem was dealt with",
}
# Events that change the status; the others (notes, severity, links, triggers) are internal.
_STATUS_EVENTS: Final = frozenset({"report", *(move.value for move in IncidentMove)})


# --- parsing what people type ------------------------------------------------------------


def parse_category(text: str) -> Category:
    try:
        return Category(text.strip().lower())
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise InvalidInput(
            f"unknown category {text!r}; expected one of {known}", code="unknown_category"
        ) from None


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in Severity)
        raise InvalidInput(
            f"unknown severity {text!r}; expected one of {known}", code="unknown_severity"
        ) from None


def parse_subject(text: str | None) -> tuple[ModelRef | None, str | None]:
    """`ORG/NAME` or `ORG/NAME:VERSION` (blank: about no model in particular)."""
    text = (text or "").strip()
    if not text:
        return None, None
    try:
        return parse_release_ref(text, version_required=False)
    except InvalidName as exc:
        raise InvalidInput(str(exc), code="invalid_name") from exc


def new_tracking_code() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))
    return f"INC-{chars[:4]}-{chars[4:]}"


def normalise_tracking_code(text: str) -> str | None:
    """`INC-XXXX-XXXX` from what a person typed (any case, dashes or not, O for 0), or None."""
    raw = "".join(text.split()).upper().replace("-", "")
    raw = raw.removeprefix("INC").translate(_CONFUSABLE)
    if len(raw) != _CODE_CHARS or any(c not in _ALPHABET for c in raw):
        return None
    return f"INC-{raw[:4]}-{raw[4:]}"


def status_url(rt: Runtime, code: str) -> str:
    return f"{rt.settings.public_url}/report/status?code={code}"


def _description(text: str) -> str:
    cleaned = clean_text(text, field="the description", max_length=MAX_DESCRIPTION, required=True)
    assert cleaned is not None  # required
    if len(cleaned) < MIN_DESCRIPTION:
        raise InvalidInput(
            f"the description is at least {MIN_DESCRIPTION} characters: say what happened, "
            "where, and how you came across it",
            code="description_too_short",
        )
    return cleaned


def _links(links: Sequence[str]) -> list[str]:
    given = [link.strip() for link in links if link and link.strip()]
    if len(given) > MAX_LINKS:
        raise InvalidInput(f"give at most {MAX_LINKS} links", code="too_many_links")
    for number, link in enumerate(given, start=1):
        if len(link) > MAX_LINK_LENGTH:
            raise InvalidInput(
                f"link {number} is longer than {MAX_LINK_LENGTH} characters", code="invalid_link"
            )
        try:
            parts = urlsplit(link)
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in link)
        ):
            raise InvalidInput(
                f"link {number} is not a web address (http:// or https://): {link[:100]!r}",
                code="invalid_link",
            )
    return list(dict.fromkeys(given))


def _contact(contact: str | None) -> str | None:
    text = (contact or "").strip()
    if not text:
        return None
    try:
        return normalise_email(text)
    except InvalidInput:
        raise InvalidInput(
            "the contact is an email address we may write to (or leave it empty)",
            code="invalid_contact",
        ) from None


def clean_note(note: str | None, *, field: str = "the note") -> str | None:
    return clean_text(note, field=field, max_length=MAX_NOTE)


# --- reporting ---------------------------------------------------------------------------


async def report(
    uow: UnitOfWork,
    *,
    model: ModelRef | None,
    version: str | None,
    category: str,
    description: str,
    links: Sequence[str],
    contact: str | None,
    reporter_account_id: str | None,
    address: str | None,
    limiter: RateLimiter | None = None,
    checks: FieldChecks | None = None,
) -> Incident:
    """A new incident from anyone. Checked in full before anything is written, every field
    at once (with the refusals the caller's `checks` already holds); with a `limiter`,
    counted against the client address's allowance."""
    checks = checks or FieldChecks()
    kind = checks.check("category", lambda: parse_category(category))
    text = checks.check("description", lambda: _description(description))
    urls = checks.check("links", lambda: _links(links))
    reply_to = checks.check("contact", lambda: _contact(contact))
    if version is not None:
        if model is None:
            checks.refuse(
                "release", InvalidInput("a version needs its model", code="version_without_model")
            )
        try:
            check_version(version)
        except InvalidName as exc:
            checks.refuse("release", InvalidInput(str(exc), code="invalid_name"))
    checks.done()
    assert kind is not None  # checks.done() raised otherwise
    assert text is not None
    assert urls is not None
    rt = uow.rt
    if limiter is not None:
        # The counter takes a connection of its own: none is held while it waits.
        await uow.end_read()
        await limiter.take(RateLimit.INCIDENT_REPORTS_PER_ADDRESS, address or "unknown")
    now = rt.clock()
    actor = ev.Actor.account(reporter_account_id) if reporter_account_id else PUBLIC_ACTOR
    session = uow.session
    if reporter_account_id and not await repository.account_exists(session, reporter_account_id):
        raise NotFound("no such account", code="account_not_found")
    model_row, release_row = await _subject(session, model, version)
    code = await _fresh_code(session)
    session = await uow.write()
    incident = Incident(
        id=str(uuid.uuid4()),
        tracking_code=code,
        release_id=release_row.id if release_row else None,
        model_id=model_row.id if model_row else None,
        category=kind.value,
        description=text,
        links={"urls": urls},
        contact=reply_to,
        reporter_account_id=reporter_account_id or None,
        reporter_address=address[:MAX_ADDRESS] if address else None,
        status=IncidentStatus.REPORTED,
        severity=None,
        assignee=None,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    await session.flush()
    repository.add_event(
        session, incident, at=now, actor=actor, move="report", from_status=None, note=None
    )
    evidence.record(
        session,
        ev.IncidentReported(incident=incident.id, category=kind.value, links=len(urls)),
        actor=actor,
        at=now,
        model_id=incident.model_id,
        release_id=incident.release_id,
        account_id=incident.reporter_account_id,
    )
    await _tell_operators(rt, session, incident, _subject_text(model_row, release_row), now)
    if reporter_account_id:
        await consider_quarantine(uow, incident)
    return incident


async def _subject(
    session: AsyncSession, model: ModelRef | None, version: str | None
) -> tuple[Model | None, Release | None]:
    if model is None:
        return None, None
    model_row = await repository.model_by_ref(session, model)
    if model_row is None:
        raise NotFound(f"no model {model}", code="model_not_found")
    if version is None:
        return model_row, None
    release = await repository.release_of(session, model_row.id, version)
    if release is None:
        raise NotFound(f"no release {model}:{version}", code="release_not_found")
    return model_row, release


def _subject_text(model: Model | None, release: Release | None) -> str | None:
    if model is None:
        return None
    return f"{model.ref}:{release.version}" if release is not None else model.ref


async def _fresh_code(session: AsyncSession) -> str:
    # 40 random bits rarely collide; the unique index is the backstop if they ever do.
    for _ in range(5):
        code = new_tracking_code()
        if not await repository.code_taken(session, code):
            return code
    raise Conflict("could not pick a tracking code; try again", code="tracking_code_taken")


async def _tell_operators(
    rt: Runtime, session: AsyncSession, incident: Incident, subject: str | None, now: datetime
) -> None:
    about = f" about {subject}" if subject else ""
    for account_id, email in await repository.active_operators(session):
        notify(
            session,
            rt.settings,
            account_id=account_id,
            kind="incident.reported",
            subject=f"New {incident.category} incident {incident.tracking_code}{about}",
            body=(
                f"A {incident.category} incident was reported{about}. It waits for triage "
                "on the operator console."
            ),
            link=f"{rt.settings.public_url}/ops/incidents/{incident.id}",
            now=now,
            email=email,
            data={"incident": incident.id, "category": incident.category, "subject": subject},
        )


# --- what the reporter sees --------------------------------------------------------------


@dataclass(frozen=True)
class PublicStatus:
    """All that the public status page and API show of an incident."""

    tracking_code: str
    status: str
    meaning: str
    category: str
    subject: str | None
    reported_at: datetime
    status_changed_at: datetime
    resolution: str | None  # the dismissal's reason or the resolution's note, once closed


async def get_by_code(uow: UnitOfWork, code: str) -> PublicStatus:
    """The public status of the incident with this tracking code."""
    session = uow.session
    normal = normalise_tracking_code(code)
    row = None
    if normal is not None:
        row = await repository.by_code_with_subject(session, normal)
    if row is None:
        raise NotFound("no report has that tracking code", code="incident_not_found")
    incident, subject = row[0], repository.subject_of(row)
    moves = await repository.status_moves(session, incident.id, _STATUS_EVENTS)
    status = IncidentStatus(incident.status)
    closing = moves[-1] if moves and status in TERMINAL_INCIDENT_STATUSES else None
    return PublicStatus(
        tracking_code=incident.tracking_code,
        status=status.value,
        meaning=PUBLIC_STATUS_TEXT[status],
        category=incident.category,
        subject=subject,
        reported_at=incident.created_at,
        status_changed_at=moves[-1].at if moves else incident.created_at,
        resolution=closing.note if closing is not None else None,
    )
