"""Incidents as operators handle them: the console's list and detail, and the steps of
triage, confirmation, dismissal and resolution.

The same functions serve the operator console, the CLI and the scheduler. Every step goes
through the machine in stages/incidents.py and is written as an IncidentEvent and as
evidence in the caller's unit of work.

Confirming an incident (or linking an account to a confirmed one) sets off the policy's
triggers once the step's unit has committed: a failure there never undoes the
confirmation, and the scheduler's re-check (triggers.recheck_triggers) finishes what was
left. The step's Triggered answer is filled in then, before the boundary answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.models import Account, Incident, IncidentEvent
from gateway.db.uow import UnitOfWork, run_unit
from gateway.errors import Conflict, GatewayError, InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.identity.repository import find_account
from gateway.incidents import repository
from gateway.incidents.deadlines import ClockReading, clocks_of, first_report, read_clock
from gateway.incidents.reporting import (
    MAX_NOTE,
    PUBLIC_ACTOR,
    PUBLIC_STATUS_TEXT,
    clean_note,
    normalise_tracking_code,
    parse_severity,
    parse_subject,
    status_url,
)
from gateway.incidents.triggers import apply_triggers
from gateway.notify.service import notify
from gateway.pagination import Keyset, Page, decode_cursor, page_of
from gateway.text import clean_text
from stages import evidence as ev
from stages.actors import TRIGGER, Actor, ActorKind
from stages.incidents import (
    IncidentMove,
    IncidentMoveError,
    IncidentReasonRequired,
    IncidentStatus,
    Severity,
    apply_incident_move,
    is_open_incident,
    legal_incident_moves,
)
from stages.names import ModelRef

logger = logging.getLogger("gateway.incidents")

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
    clock: ClockReading | None = None


def _statuses(where: IncidentFilter) -> list[str] | None:
    """The statuses the filter lets through; None: every one."""
    if where.status == "open":
        return [s.value for s in IncidentStatus if is_open_incident(s)]
    if where.status == "all":
        return None
    return [where.status]


async def list_incidents(
    uow: UnitOfWork, where: IncidentFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[IncidentRow], int]:
    """Incidents newest first, one page at a time, and how many match in all."""
    rows, total = await repository.page_of_incidents(
        uow.session,
        statuses=_statuses(where),
        severity=where.severity.value if where.severity is not None else None,
        model=where.model,
        version=where.version,
        limit=limit,
        offset=offset,
    )
    return await _with_clocks(uow, rows), total


async def _with_clocks(uow: UnitOfWork, rows: Sequence[Any]) -> list[IncidentRow]:
    clocks = await clocks_of(uow, [row[0] for row in rows])
    return [IncidentRow(row[0], repository.subject_of(row), clocks.get(row[0].id)) for row in rows]


INCIDENTS_LISTING: Final = "incidents"


def _incident_keyset(row: IncidentRow) -> Keyset:
    return Keyset(row.incident.created_at, row.incident.id)


async def incidents_page(
    uow: UnitOfWork, where: IncidentFilter, *, cursor: str | None, limit: int
) -> Page[IncidentRow]:
    """A page of incidents (the order of `list_incidents`), from `cursor` on."""
    rows = await repository.incidents_after(
        uow.session,
        statuses=_statuses(where),
        severity=where.severity.value if where.severity is not None else None,
        model=where.model,
        version=where.version,
        after=decode_cursor(INCIDENTS_LISTING, cursor),
        limit=limit,
    )
    items = await _with_clocks(uow, rows)
    return page_of(INCIDENTS_LISTING, items, limit, _incident_keyset)


@dataclass(frozen=True)
class IncidentDetail:
    """An incident as operators see it: everything, with its timeline."""

    incident: Incident
    subject: str | None
    reporter_email: str | None
    events: list[IncidentEvent]
    linked: list[Account]
    moves: tuple[IncidentMove, ...]
    clock: ClockReading | None = None  # the deadline of reporting it to an authority

    @property
    def links(self) -> list[str]:
        urls = self.incident.links.get("urls", [])
        return [str(url) for url in urls] if isinstance(urls, list) else []


def _code_of(ref: str) -> str | None:
    return normalise_tracking_code(ref)


async def get_incident(uow: UnitOfWork, ref: str) -> IncidentDetail:
    """One incident by id or tracking code, for operators."""
    session = uow.session
    ref = ref.strip()
    row = await repository.by_ref_with_subject(session, ref, _code_of(ref))
    if row is None:
        raise NotFound(f"no incident {ref}", code="incident_not_found")
    incident = row[0]
    reporter = None
    if incident.reporter_account_id:
        reporter = await repository.email_of(session, incident.reporter_account_id)
    events = await repository.timeline(session, incident.id)
    return IncidentDetail(
        incident=incident,
        subject=repository.subject_of(row),
        reporter_email=reporter,
        events=events,
        linked=await repository.linked_accounts(session, incident.id),
        moves=legal_incident_moves(IncidentStatus(incident.status)),
        clock=read_clock(uow.rt, incident, first_report(events)),
    )


async def actor_names(uow: UnitOfWork, actors: Sequence[str]) -> dict[str, str]:
    """Who each actor of a timeline is, as people read it: accounts by their email."""
    names = {actor: actor for actor in actors}
    names[PUBLIC_ACTOR] = "the reporter (not signed in)"
    names[TRIGGER] = "the gateway (policy trigger)"
    ids = {who.id for who in map(Actor.parse, actors) if who.kind is ActorKind.ACCOUNT}
    emails = await repository.emails_of(uow.session, ids)
    names.update({Actor.account(account_id): email for account_id, email in emails.items()})
    return names


# --- operators' steps --------------------------------------------------------------------


@dataclass
class Triggered:
    """A step that may set off the policy's triggers, and what they did.

    `triggers` describes each action taken, with the rule that asked for it;
    `trigger_error` says why they could not all be taken (the scheduler tries again).
    Both are filled in once the step's unit has committed, before its boundary answers.
    """

    incident: Incident
    triggers: list[str] = field(default_factory=list)
    trigger_error: str | None = None


async def triage(
    uow: UnitOfWork,
    incident_ref: str,
    *,
    severity: str,
    assignee: str | None,
    note: str | None,
    actor: str,
) -> Incident:
    """Take a reported incident in: how bad it looks, and who looks after it."""
    level = parse_severity(severity)
    text = clean_note(note)
    now = uow.rt.clock()
    session = await uow.write()
    incident = await _locked(session, incident_ref)
    after = _next(incident, IncidentMove.TRIAGE, text)
    who = await _operator_email(session, assignee) if assignee and assignee.strip() else None
    before = _move(incident, after)
    _event(session, incident, now, actor, IncidentMove.TRIAGE.value, before, text)
    _set_severity(session, incident, level, actor, now)
    if who is not None:
        _set_assignee(session, incident, who, actor, now)
    _evidence(session, incident, now, actor, IncidentMove.TRIAGE, before)
    return incident


async def confirm(
    uow: UnitOfWork, incident_ref: str, *, severity: str | None, note: str | None, actor: str
) -> Triggered:
    """Confirm an incident (its severity is required by now), then fire the policy's
    triggers for it."""
    level = parse_severity(severity) if severity and severity.strip() else None
    text = clean_note(note)
    now = uow.rt.clock()
    session = await uow.write()
    incident = await _locked(session, incident_ref)
    after = _next(incident, IncidentMove.CONFIRM, text)
    if level is None and incident.severity:
        level = Severity(incident.severity)
    if level is None:
        raise InvalidInput(
            "a confirmed incident needs a severity: low, medium, high or critical",
            code="severity_required",
        )
    before = _move(incident, after)
    _event(session, incident, now, actor, IncidentMove.CONFIRM.value, before, text)
    _set_severity(session, incident, level, actor, now)
    _evidence(session, incident, now, actor, IncidentMove.CONFIRM, before)
    return _fire(uow, incident)


async def dismiss(uow: UnitOfWork, incident_ref: str, *, reason: str, actor: str) -> Incident:
    """Close a report without action; the reporter is told the reason."""
    text = clean_note(reason, field="the reason")
    now = uow.rt.clock()
    session = await uow.write()
    incident = await _locked(session, incident_ref)
    before = _move(incident, _next(incident, IncidentMove.DISMISS, text))
    _event(session, incident, now, actor, IncidentMove.DISMISS.value, before, text)
    _evidence(session, incident, now, actor, IncidentMove.DISMISS, before, resolution=text)
    await _tell_reporter(uow, session, incident, text or "", now)
    return incident


async def resolve(uow: UnitOfWork, incident_ref: str, *, note: str, actor: str) -> Incident:
    """Close a confirmed incident; the note is the resolution the reporter is shown."""
    text = clean_note(note, field="the resolution note")
    now = uow.rt.clock()
    session = await uow.write()
    incident = await _locked(session, incident_ref)
    after = _next(incident, IncidentMove.RESOLVE, text)
    if text is None:
        raise InvalidInput(
            "a resolution note is required: the reporter is shown how it was resolved",
            code="note_required",
        )
    before = _move(incident, after)
    _event(session, incident, now, actor, IncidentMove.RESOLVE.value, before, text)
    _evidence(session, incident, now, actor, IncidentMove.RESOLVE, before, resolution=text)
    await _tell_reporter(uow, session, incident, text, now)
    return incident


async def add_note(uow: UnitOfWork, incident_ref: str, *, note: str, actor: str) -> Incident:
    """An internal note on the incident's timeline (never shown to the reporter)."""
    text = clean_text(note, field="the note", max_length=MAX_NOTE, required=True)
    now = uow.rt.clock()
    session = await uow.write()
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


async def link_account(uow: UnitOfWork, incident_ref: str, email: str, *, actor: str) -> Triggered:
    """Link an account to an open incident (e.g. the grantee whose copy leaked). Linked to a
    confirmed incident, it is subject to the triggers at once."""
    address = normalise_email(email)
    now = uow.rt.clock()
    session = await uow.write()
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
    if await repository.is_linked(session, incident.id, account.id):
        raise Conflict(f"{account.email} is already linked to this incident", code="linked")
    repository.link(session, incident.id, account.id)
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
        return _fire(uow, incident)
    return Triggered(incident)


def _fire(uow: UnitOfWork, incident: Incident) -> Triggered:
    """The answer of a step that sets off the triggers, filled in once its unit has
    committed: the triggers' actions run in units of their own (a recall, a suspension)."""
    triggered = Triggered(incident)
    rt = uow.rt

    async def fire() -> None:
        try:
            triggered.triggers.extend(await apply_triggers(rt, incident.id))
        except Exception as exc:
            # The step itself has committed; the scheduler's re-check takes the actions later.
            logger.exception("the triggers of incident %s failed", incident.id)
            triggered.trigger_error = (
                exc.message if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
            )
            # On the timeline, so that the console's page after the step shows it too.
            try:
                await run_unit(rt, lambda unit: _note_trigger_failure(unit, incident.id, triggered))
            except Exception:
                logger.exception("the trigger failure of incident %s went unnoted", incident.id)

    uow.after_commit(fire)
    return triggered


async def _note_trigger_failure(uow: UnitOfWork, incident_id: str, triggered: Triggered) -> None:
    session = await uow.write()
    incident = await repository.locked_by_id(session, incident_id)
    if incident is None:
        return
    note = (
        f"the policy's triggers could not all be applied: {triggered.trigger_error}; "
        "the scheduler tries again"
    )
    _event(session, incident, uow.rt.clock(), TRIGGER, "trigger_failed", incident.status, note)


async def _locked(session: AsyncSession, ref: str) -> Incident:
    ref = ref.strip()
    incident = await repository.locked_by_ref(session, ref, _code_of(ref))
    if incident is None:
        raise NotFound(f"no incident {ref.strip()}", code="incident_not_found")
    return incident


def _next(incident: Incident, move: IncidentMove, reason: str | None) -> IncidentStatus:
    """The status the move leads to, changing nothing yet: every check of a step comes
    before its first change, so a refused step leaves nothing in the unit to write."""
    try:
        return apply_incident_move(IncidentStatus(incident.status), move, reason)
    except IncidentReasonRequired as exc:
        raise InvalidInput(str(exc), code="reason_required") from exc
    except IncidentMoveError as exc:
        raise Conflict(
            f"incident {incident.tracking_code}: {exc}", code="illegal_incident_move"
        ) from exc


def _move(incident: Incident, after: IncidentStatus) -> IncidentStatus:
    """Set the checked status; returns the status it had."""
    before = IncidentStatus(incident.status)
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
    repository.add_event(
        session,
        incident,
        at=now,
        actor=actor,
        move=move,
        from_status=str(from_status) if from_status is not None else None,
        note=note,
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
    uow: UnitOfWork, session: AsyncSession, incident: Incident, resolution: str, now: datetime
) -> None:
    if not incident.reporter_account_id:
        return
    rt = uow.rt
    email = await repository.email_of(session, incident.reporter_account_id)
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
