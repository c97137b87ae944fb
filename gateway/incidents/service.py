"""Incidents: anyone reports one; operators triage, confirm, dismiss or resolve it.

The same functions serve the public report form, the JSON API, the operator console and
the CLI. Every step goes through the machine in stages/incidents.py and is written as an
IncidentEvent and as evidence in the same transaction.

What a reporter may see of an incident is a PublicStatus: its status and its public
resolution (the reason it was dismissed, the note it was resolved with). Never the
internal notes, the severity, the assignee or the linked accounts: the type has no field
for them, so no page can show them by mistake.

Confirming an incident (or linking an account to a confirmed one) sets off the policy's
triggers after the step has committed: a failure there never undoes the confirmation, and
the scheduler's re-check (triggers.recheck_triggers) finishes what was left.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account, Incident, IncidentAccount, IncidentEvent, Model, Release
from gateway.errors import Conflict, FieldChecks, GatewayError, InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.identity.repository import find_account
from gateway.incidents.triggers import apply_triggers
from gateway.notify.service import notify
from gateway.ratelimits import RateLimit, RateLimiter
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.incidents import (
    TERMINAL_INCIDENT_STATUSES,
    Category,
    IncidentMove,
    IncidentMoveError,
    IncidentReasonRequired,
    IncidentStatus,
    Severity,
    apply_incident_move,
    is_open_incident,
    legal_incident_moves,
)
from stages.names import InvalidName, ModelRef, check_version, parse_release_ref

logger = logging.getLogger("gateway.incidents")

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


def _note(note: str | None, *, field: str = "the note") -> str | None:
    return clean_text(note, field=field, max_length=MAX_NOTE)


# --- reporting ---------------------------------------------------------------------------


async def report(
    rt: Runtime,
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
    if limiter is not None:
        await limiter.take(RateLimit.INCIDENT_REPORTS_PER_ADDRESS, address or "unknown")
    now = rt.clock()
    actor = ev.Actor.account(reporter_account_id) if reporter_account_id else PUBLIC_ACTOR
    async with rt.transaction() as session:
        if reporter_account_id and await session.get(Account, reporter_account_id) is None:
            raise NotFound("no such account", code="account_not_found")
        model_row, release_row = await _subject(session, model, version)
        incident = Incident(
            id=str(uuid.uuid4()),
            tracking_code=await _fresh_code(session),
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
        _event(session, incident, now, actor, "report", None, None)
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
    return incident


async def _subject(
    session: AsyncSession, model: ModelRef | None, version: str | None
) -> tuple[Model | None, Release | None]:
    if model is None:
        return None, None
    model_row = await session.scalar(
        select(Model).where(Model.org == model.org, Model.name == model.name)
    )
    if model_row is None:
        raise NotFound(f"no model {model}", code="model_not_found")
    if version is None:
        return model_row, None
    release = await session.scalar(
        select(Release).where(Release.model_id == model_row.id, Release.version == version)
    )
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
        taken = await session.scalar(select(Incident.id).where(Incident.tracking_code == code))
        if taken is None:
            return code
    raise Conflict("could not pick a tracking code; try again", code="tracking_code_taken")


async def _tell_operators(
    rt: Runtime, session: AsyncSession, incident: Incident, subject: str | None, now: datetime
) -> None:
    operators = await session.execute(
        select(Account.id, Account.email).where(
            Account.is_operator.is_(True), Account.status == "active"
        )
    )
    about = f" about {subject}" if subject else ""
    for account_id, email in operators.all():
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


async def get_by_code(session: AsyncSession, code: str) -> PublicStatus:
    """The public status of the incident with this tracking code."""
    normal = normalise_tracking_code(code)
    row = None
    if normal is not None:
        row = (
            await session.execute(
                _with_subject(select(Incident)).where(Incident.tracking_code == normal)
            )
        ).first()
    if row is None:
        raise NotFound("no report has that tracking code", code="incident_not_found")
    incident, subject = row[0], _subject_of(row)
    moves = (
        await session.execute(
            select(IncidentEvent.move, IncidentEvent.at, IncidentEvent.note)
            .where(
                IncidentEvent.incident_id == incident.id,
                IncidentEvent.move.in_(_STATUS_EVENTS),
            )
            .order_by(IncidentEvent.id)
        )
    ).all()
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


# --- what operators see ------------------------------------------------------------------


STATUS_FILTERS: Final = ("open", "all", *(status.value for status in IncidentStatus))


@dataclass(frozen=True)
class IncidentFilter:
    status: str = "open"  # open (not dismissed or resolved), all, or one status
    severity: Severity | None = None
    model: ModelRef | None = None
    version: str | None = None


def incident_filter(
    *, status: str | None, severity: str | None, release: str | None
) -> IncidentFilter:
    """Check the filters as typed (console and CLI) and build the service's filter."""
    status = (status or "").strip() or "open"
    if status not in STATUS_FILTERS:
        raise InvalidInput(
            f"unknown status {status!r}; expected one of {', '.join(STATUS_FILTERS)}",
            code="unknown_status",
        )
    level = parse_severity(severity) if severity and severity.strip() else None
    model, version = parse_subject(release)
    return IncidentFilter(status=status, severity=level, model=model, version=version)


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    subject: str | None


def _with_subject(
    query: Select[Incident],
) -> Select[Incident, str | None, str | None, str | None]:
    return (
        query.add_columns(Model.org, Model.name, Release.version)
        .outerjoin(Model, Model.id == Incident.model_id)
        .outerjoin(Release, Release.id == Incident.release_id)
    )


def _subject_of(row: Any) -> str | None:
    _, org, name, version = row
    if org is None:
        return None
    return f"{org}/{name}:{version}" if version is not None else f"{org}/{name}"


async def list_incidents(
    session: AsyncSession, where: IncidentFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[IncidentRow], int]:
    """Incidents newest first, one page at a time, and how many match in all."""
    query = _with_subject(select(Incident))
    if where.status == "open":
        open_statuses = [s.value for s in IncidentStatus if is_open_incident(s)]
        query = query.where(Incident.status.in_(open_statuses))
    elif where.status != "all":
        query = query.where(Incident.status == where.status)
    if where.severity is not None:
        query = query.where(Incident.severity == where.severity.value)
    if where.model is not None:
        query = query.where(Model.org == where.model.org, Model.name == where.model.name)
    if where.version is not None:
        query = query.where(Release.version == where.version)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.execute(
        query.order_by(Incident.created_at.desc(), Incident.id).limit(limit).offset(offset)
    )
    return [IncidentRow(row[0], _subject_of(row)) for row in rows.all()], total


@dataclass(frozen=True)
class IncidentDetail:
    """An incident as operators see it: everything, with its timeline."""

    incident: Incident
    subject: str | None
    reporter_email: str | None
    events: list[IncidentEvent]
    linked: list[Account]
    moves: tuple[IncidentMove, ...]

    @property
    def links(self) -> list[str]:
        urls = self.incident.links.get("urls", [])
        return [str(url) for url in urls] if isinstance(urls, list) else []


def _by_ref(ref: str) -> Select[Incident]:
    """An incident by its id or its tracking code."""
    ref = ref.strip()
    clauses = [Incident.id == ref]
    code = normalise_tracking_code(ref)
    if code is not None:
        clauses.append(Incident.tracking_code == code)
    return select(Incident).where(or_(*clauses))


async def get_incident(session: AsyncSession, ref: str) -> IncidentDetail:
    """One incident by id or tracking code, for operators."""
    row = (await session.execute(_with_subject(_by_ref(ref)))).first()
    if row is None:
        raise NotFound(f"no incident {ref}", code="incident_not_found")
    incident = row[0]
    events = await session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(IncidentEvent.id)
    )
    linked = await session.scalars(
        select(Account)
        .join(IncidentAccount, IncidentAccount.account_id == Account.id)
        .where(IncidentAccount.incident_id == incident.id)
        .order_by(Account.email)
    )
    reporter = None
    if incident.reporter_account_id:
        reporter = await session.scalar(
            select(Account.email).where(Account.id == incident.reporter_account_id)
        )
    return IncidentDetail(
        incident=incident,
        subject=_subject_of(row),
        reporter_email=reporter,
        events=list(events.all()),
        linked=list(linked.all()),
        moves=legal_incident_moves(IncidentStatus(incident.status)),
    )


# --- operators' steps --------------------------------------------------------------------


@dataclass(frozen=True)
class Triggered:
    """A step that may set off the policy's triggers, and what they did.

    `triggers` describes each action taken, with the rule that asked for it;
    `trigger_error` says why they could not all be taken (the scheduler tries again).
    """

    incident: Incident
    triggers: list[str]
    trigger_error: str | None = None


async def triage(
    rt: Runtime,
    incident_ref: str,
    *,
    severity: str,
    assignee: str | None,
    note: str | None,
    actor: str,
) -> Incident:
    """Take a reported incident in: how bad it looks, and who looks after it."""
    level = parse_severity(severity)
    text = _note(note)
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        before = _apply(incident, IncidentMove.TRIAGE, text)
        who = await _operator_email(session, assignee) if assignee and assignee.strip() else None
        _event(session, incident, now, actor, IncidentMove.TRIAGE.value, before, text)
        _set_severity(session, incident, level, actor, now)
        if who is not None:
            _set_assignee(session, incident, who, actor, now)
        _evidence(session, incident, now, actor, IncidentMove.TRIAGE, before)
    return incident


async def confirm(
    rt: Runtime, incident_ref: str, *, severity: str | None, note: str | None, actor: str
) -> Triggered:
    """Confirm an incident (its severity is required by now), then fire the policy's
    triggers for it."""
    level = parse_severity(severity) if severity and severity.strip() else None
    text = _note(note)
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        before = _apply(incident, IncidentMove.CONFIRM, text)
        if level is None and incident.severity:
            level = Severity(incident.severity)
        if level is None:
            raise InvalidInput(
                "a confirmed incident needs a severity: low, medium, high or critical",
                code="severity_required",
            )
        _event(session, incident, now, actor, IncidentMove.CONFIRM.value, before, text)
        _set_severity(session, incident, level, actor, now)
        _evidence(session, incident, now, actor, IncidentMove.CONFIRM, before)
    return await _fire(rt, incident)


async def dismiss(rt: Runtime, incident_ref: str, *, reason: str, actor: str) -> Incident:
    """Close a report without action; the reporter is told the reason."""
    text = _note(reason, field="the reason")
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        before = _apply(incident, IncidentMove.DISMISS, text)
        _event(session, incident, now, actor, IncidentMove.DISMISS.value, before, text)
        _evidence(session, incident, now, actor, IncidentMove.DISMISS, before, resolution=text)
        await _tell_reporter(rt, session, incident, text or "", now)
    return incident


async def resolve(rt: Runtime, incident_ref: str, *, note: str, actor: str) -> Incident:
    """Close a confirmed incident; the note is the resolution the reporter is shown."""
    text = _note(note, field="the resolution note")
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        before = _apply(incident, IncidentMove.RESOLVE, text)
        if text is None:
            raise InvalidInput(
                "a resolution note is required: the reporter is shown how it was resolved",
                code="note_required",
            )
        _event(session, incident, now, actor, IncidentMove.RESOLVE.value, before, text)
        _evidence(session, incident, now, actor, IncidentMove.RESOLVE, before, resolution=text)
        await _tell_reporter(rt, session, incident, text, now)
    return incident


async def add_note(rt: Runtime, incident_ref: str, *, note: str, actor: str) -> Incident:
    """An internal note on the incident's timeline (never shown to the reporter)."""
    text = clean_text(note, field="the note", max_length=MAX_NOTE, required=True)
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        status = IncidentStatus(incident.status)
        _event(session, incident, now, actor, "note", status, text)
        evidence.record(
            session,
            ev.IncidentNoteAdded(incident=incident.id, status=status.value),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=incident.model_id,
            release_id=incident.release_id,
        )
    return incident


async def link_account(rt: Runtime, incident_ref: str, email: str, *, actor: str) -> Triggered:
    """Link an account to an open incident (e.g. the grantee whose copy leaked). Linked to a
    confirmed incident, it is subject to the triggers at once."""
    address = normalise_email(email)
    now = rt.clock()
    async with rt.transaction() as session:
        incident = await _locked(session, incident_ref)
        status = IncidentStatus(incident.status)
        if not is_open_incident(status):
            raise Conflict(
                f"incident {incident.tracking_code} is {status.value}: it is closed",
                code="incident_closed",
            )
        account = await find_account(session, address)
        if account is None:
            raise NotFound(f"no account {address}", code="account_not_found")
        if await session.get(IncidentAccount, (incident.id, account.id)) is not None:
            raise Conflict(f"{account.email} is already linked to this incident", code="linked")
        session.add(IncidentAccount(incident_id=incident.id, account_id=account.id))
        _event(session, incident, now, actor, "link_account", status, account.email)
        evidence.record(
            session,
            ev.IncidentAccountLinked(incident=incident.id, status=status.value),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=incident.model_id,
            release_id=incident.release_id,
            account_id=account.id,
        )
    if status is IncidentStatus.CONFIRMED:
        return await _fire(rt, incident)
    return Triggered(incident, [])


async def _fire(rt: Runtime, incident: Incident) -> Triggered:
    try:
        fired = await apply_triggers(rt, incident.id)
    except Exception as exc:
        # The step itself has committed; the scheduler's re-check takes the actions later.
        logger.exception("the triggers of incident %s failed", incident.id)
        message = exc.message if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
        return Triggered(incident, [], message)
    return Triggered(incident, fired)


async def _locked(session: AsyncSession, ref: str) -> Incident:
    incident = await session.scalar(_by_ref(ref).with_for_update())
    if incident is None:
        raise NotFound(f"no incident {ref.strip()}", code="incident_not_found")
    return incident


def _apply(incident: Incident, move: IncidentMove, reason: str | None) -> IncidentStatus:
    """Move the incident's status; returns the status it had. Conflict if not allowed."""
    before = IncidentStatus(incident.status)
    try:
        after = apply_incident_move(before, move, reason)
    except IncidentReasonRequired as exc:
        raise InvalidInput(str(exc), code="reason_required") from exc
    except IncidentMoveError as exc:
        raise Conflict(
            f"incident {incident.tracking_code}: {exc}", code="illegal_incident_move"
        ) from exc
    incident.status = after
    return before


async def _operator_email(session: AsyncSession, assignee: str) -> str:
    address = normalise_email(assignee)
    account = await find_account(session, address)
    if account is None or not account.is_operator:
        raise InvalidInput(
            f"{address} is not an operator: incidents are assigned to operators",
            code="not_an_operator",
        )
    return account.email


def _set_severity(
    session: AsyncSession, incident: Incident, level: Severity, actor: str, now: datetime
) -> None:
    if incident.severity == level.value:
        return
    was = f" (was {incident.severity})" if incident.severity else ""
    incident.severity = level.value
    _event(session, incident, now, actor, "severity", incident.status, f"{level.value}{was}")


def _set_assignee(
    session: AsyncSession, incident: Incident, email: str, actor: str, now: datetime
) -> None:
    if incident.assignee == email:
        return
    incident.assignee = email
    _event(session, incident, now, actor, "assign", incident.status, email)


def _event(
    session: AsyncSession,
    incident: Incident,
    now: datetime,
    actor: str,
    move: str,
    from_status: IncidentStatus | str | None,
    note: str | None,
) -> None:
    """A line of the timeline: the step, the status it started from and the one it left."""
    incident.updated_at = now
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=now,
            actor=actor,
            move=move,
            from_status=str(from_status) if from_status is not None else None,
            to_status=incident.status,
            note=note,
        )
    )


def _evidence(
    session: AsyncSession,
    incident: Incident,
    now: datetime,
    actor: str,
    move: IncidentMove,
    before: IncidentStatus,
    *,
    resolution: str | None = None,
) -> None:
    # Internal notes stay out of the evidence, which is kept for good; what the reporter
    # is told (the reason for a dismissal, the resolution) is public and goes in.
    evidence.record(
        session,
        ev.INCIDENT_MOVES[move](
            incident=incident.id,
            from_=before.value,
            to=incident.status,
            severity=incident.severity,
            assignee=incident.assignee,
            resolution=resolution,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=incident.model_id,
        release_id=incident.release_id,
    )


async def _tell_reporter(
    rt: Runtime, session: AsyncSession, incident: Incident, resolution: str, now: datetime
) -> None:
    if not incident.reporter_account_id:
        return
    email = await session.scalar(
        select(Account.email).where(Account.id == incident.reporter_account_id)
    )
    status = IncidentStatus(incident.status)
    notify(
        session,
        rt.settings,
        account_id=incident.reporter_account_id,
        kind="incident.closed",
        subject=f"Your report {incident.tracking_code} was {status.value}",
        body=(
            f"The report you sent ({incident.tracking_code}) is {status.value}: "
            f"{PUBLIC_STATUS_TEXT[status]}."
            f"\n{'Reason' if status is IncidentStatus.DISMISSED else 'Resolution'}: "
            f"{resolution}\nThank you for telling us."
        ),
        link=status_url(rt, incident.tracking_code),
        now=now,
        email=email,
        data={"tracking_code": incident.tracking_code, "status": status.value},
    )
