"""The clocks of reporting incidents to an authority (the policy's `[reporting]`; the
shipped default follows the EU AI Act, Article 73).

An incident whose severity has a deadline in the policy must be reported by then,
counted from when its report reached the lab; a dismissed one has none. The report is
made outside the gateway (the authority's own form) and recorded here, with the
authority's reference, as a line of the timeline and as evidence that says whether it
met the deadline. The scheduler reminds every operator once when a deadline is near and
once when it has passed unreported; each reminder is a line of the timeline, so none is
sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from gateway import evidence
from gateway.db.models import Incident, IncidentEvent
from gateway.db.uow import UnitOfWork
from gateway.errors import NotFound
from gateway.incidents import repository
from gateway.incidents.reporting import MAX_NOTE, normalise_tracking_code
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.text import clean_text
from stages import evidence as ev
from stages.incidents import ClockState, IncidentStatus, ReportingClock

REPORTED: Final = "authority_report"
REMINDED: Final = "deadline_reminder"
OVERDUE: Final = "deadline_overdue"
MAX_AUTHORITY: Final = 200
MAX_REFERENCE: Final = 200


def clock_of(
    rt: Runtime, incident: Incident, reported_at: datetime | None
) -> ReportingClock | None:
    """The incident's clock, if the policy gives its severity a deadline."""
    if incident.status == IncidentStatus.DISMISSED:
        return None
    rules = rt.policy.reporting
    deadline = rules.deadline(incident.severity, incident.created_at)
    if deadline is None:
        return None
    return ReportingClock(rules.authority, deadline, rules.reminder(deadline), reported_at)


@dataclass(frozen=True)
class ClockReading:
    """A clock as it stands now."""

    clock: ReportingClock
    state: ClockState

    @property
    def overdue(self) -> bool:
        return self.state is ClockState.OVERDUE


def read_clock(
    rt: Runtime, incident: Incident, reported_at: datetime | None
) -> ClockReading | None:
    clock = clock_of(rt, incident, reported_at)
    return None if clock is None else ClockReading(clock, clock.state(rt.clock()))


def first_report(events: Sequence[IncidentEvent]) -> datetime | None:
    """When the timeline first records a report to an authority."""
    return min((e.at for e in events if e.move == REPORTED), default=None)


async def clocks_of(uow: UnitOfWork, incidents: Sequence[Incident]) -> dict[str, ClockReading]:
    """The clocks of a page of incidents, by id (one query for every report made)."""
    reported = await repository.first_moves(uow.session, [i.id for i in incidents], (REPORTED,))
    clocks = {}
    for incident in incidents:
        clock = read_clock(uow.rt, incident, reported.get((incident.id, REPORTED)))
        if clock is not None:
            clocks[incident.id] = clock
    return clocks


@dataclass(frozen=True)
class AuthorityReport:
    incident: Incident
    authority: str
    reference: str | None
    clock: ClockReading | None


async def report_to_authority(
    uow: UnitOfWork,
    ref: str,
    *,
    authority: str | None,
    reference: str | None,
    note: str | None,
    actor: str,
) -> AuthorityReport:
    """Record a report of the incident to an authority (the policy's, unless named)."""
    rt = uow.rt
    named = clean_text(authority, field="the authority", max_length=MAX_AUTHORITY)
    reference = clean_text(reference, field="the reference", max_length=MAX_REFERENCE)
    note = clean_text(note, field="the note", max_length=MAX_NOTE)
    to = named or rt.policy.reporting.authority
    now = rt.clock()
    session = await uow.write()
    ref = ref.strip()
    incident = await repository.locked_by_ref(session, ref, normalise_tracking_code(ref))
    if incident is None:
        raise NotFound(f"no incident {ref}", code="incident_not_found")
    earlier = await repository.first_moves(session, [incident.id], (REPORTED,))
    clock = read_clock(rt, incident, earlier.get((incident.id, REPORTED), now))
    line = f"reported to {to}" + (f", reference {reference}" if reference else "")
    repository.add_event(
        session,
        incident,
        at=now,
        actor=actor,
        move=REPORTED,
        from_status=incident.status,
        note=f"{line}: {note}" if note else line,
    )
    evidence.record(
        session,
        ev.IncidentAuthorityReported(
            incident=incident.id,
            authority=to,
            reference=reference,
            severity=incident.severity,
            deadline=clock.clock.deadline.isoformat() if clock is not None else None,
            on_time=None if clock is None else now <= clock.clock.deadline,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=incident.model_id,
        release_id=incident.release_id,
    )
    return AuthorityReport(incident, to, reference, clock)


async def remind_deadlines(uow: UnitOfWork) -> int:
    """Tell every operator of each deadline that is near, and of each that has passed
    unreported, once each; how many reminders were sent."""
    rt = uow.rt
    rules = rt.policy.reporting
    if not rules.deadline_days:
        return 0
    now = rt.clock()
    session = await uow.write()
    candidates = await repository.unreported(
        session, [s.value for s in rules.deadline_days], REPORTED, OVERDUE
    )
    reminded = await repository.first_moves(session, [i.id for i in candidates], (REMINDED,))
    operators = await repository.active_operators(session)
    sent = 0
    for incident in candidates:
        clock = clock_of(rt, incident, None)
        state = clock.state(now) if clock is not None else None
        if state is ClockState.OVERDUE:
            move = OVERDUE
        elif state is ClockState.DUE_SOON and (incident.id, REMINDED) not in reminded:
            move = REMINDED
        else:
            continue
        assert clock is not None
        _remind(uow, incident, clock, move, operators, now)
        sent += 1
    return sent


def _remind(
    uow: UnitOfWork,
    incident: Incident,
    clock: ReportingClock,
    move: str,
    operators: Sequence[tuple[str, str]],
    now: datetime,
) -> None:
    rt = uow.rt
    session = uow.session
    due = f"{clock.deadline:%Y-%m-%d %H:%M} UTC"
    code = incident.tracking_code
    overdue = move == OVERDUE
    subject = (
        f"Overdue: report incident {code}" if overdue else f"Due {due}: report incident {code}"
    )
    body = (
        f"Incident {code} ({incident.severity}) must be reported to {clock.authority} by {due}"
        + (" and has not been." if overdue else ".")
        + "\nRecord the report on the console or with "
        f"`gateway incidents report-authority {code} --reference REF`."
    )
    for account_id, email in operators:
        notify(
            session,
            rt.settings,
            account_id=account_id,
            kind=f"incident.{move}",
            subject=subject,
            body=body,
            link=f"{rt.settings.public_url}/ops/incidents/{incident.id}",
            now=now,
            email=email,
            data={"incident": incident.id, "deadline": clock.deadline.isoformat()},
        )
    repository.add_event(
        session,
        incident,
        at=now,
        actor=ev.SCHEDULER,
        move=move,
        from_status=incident.status,
        note=f"{len(operators)} operator(s) reminded; the deadline is {due}",
    )
