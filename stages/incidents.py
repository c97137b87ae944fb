# Incidents: how bad they are, what they are about, and the moves of their status.
#
# Rules:
# - Severities are ordered low < medium < high < critical and compare by that order, not
#   alphabetically; `rank` is the 1-based position.
# - The legal moves are the data in _TRANSITIONS: the statuses a move may start from and
#   the status it leads to. Anything else raises an IncidentMoveError and, statuses being
#   plain values, changes nothing.
# - dismissed and resolved are terminal: a closed incident is never reopened; a new
#   report is a new incident.
# - A reporting clock (ReportingClock) is `running` until its reminder, `due_soon` until
#   its deadline, then `overdue`; a report recorded ends it as `reported`, or
#   `reported_late` when made after the deadline. The first report made is the one
#   that counts.
# - Dismissing needs a reason: the reporter and the transparency report are told why a
#   report was not acted on. Blank text is no reason.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    """How bad an incident is; severities compare by rank, so max() gives the worst."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """1 for low up to 4 for critical."""
        return list(Severity).index(self) + 1

    # A StrEnum would otherwise compare as text, where "critical" < "high".
    def __lt__(self, other: str) -> bool:
        return self.rank < Severity(other).rank

    def __le__(self, other: str) -> bool:
        return self.rank <= Severity(other).rank

    def __gt__(self, other: str) -> bool:
        return self.rank > Severity(other).rank

    def __ge__(self, other: str) -> bool:
        return self.rank >= Severity(other).rank


class Category(StrEnum):
    """What an incident is about."""

    MISUSE = "misuse"  # the weights used against the license or use guidance
    SAFETY = "safety"  # harmful model behaviour found in use
    SECURITY = "security"  # a vulnerability in the model, its code or the gateway
    LEAK = "leak"  # weights shared outside the grants that allow them
    LEGAL = "legal"  # a legal claim or request about the release
    OTHER = "other"


class IncidentStatus(StrEnum):
    REPORTED = "reported"
    TRIAGED = "triaged"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"


class IncidentMove(StrEnum):
    TRIAGE = "triage"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class _Transition:
    starts_from: frozenset[IncidentStatus]
    leads_to: IncidentStatus
    reason_required: bool


_S = IncidentStatus
_UNDECIDED: Final = frozenset({_S.REPORTED, _S.TRIAGED})

_TRANSITIONS: Final[Mapping[IncidentMove, _Transition]] = {
    IncidentMove.TRIAGE: _Transition(frozenset({_S.REPORTED}), _S.TRIAGED, False),
    IncidentMove.CONFIRM: _Transition(_UNDECIDED, _S.CONFIRMED, False),
    IncidentMove.DISMISS: _Transition(_UNDECIDED, _S.DISMISSED, True),
    IncidentMove.RESOLVE: _Transition(frozenset({_S.CONFIRMED}), _S.RESOLVED, False),
}

TERMINAL_INCIDENT_STATUSES: Final = frozenset({_S.DISMISSED, _S.RESOLVED})
# Open incidents are the ones promotion gates count: not yet dismissed or resolved.
OPEN_INCIDENT_STATUSES: Final = frozenset(IncidentStatus) - TERMINAL_INCIDENT_STATUSES


class IncidentMoveError(Exception):
    """Base of the errors of the incident machine; nothing was changed."""


# The names read as the domain says them; an "Error" suffix would add nothing.
class IllegalIncidentMove(IncidentMoveError):
    """The move is not allowed from the incident's status."""

    def __init__(self, status: IncidentStatus, move: IncidentMove) -> None:
        self.status = status
        self.move = move
        why = f"cannot {move} an incident that is {status}"
        if status in TERMINAL_INCIDENT_STATUSES:
            why += ": it is closed"
        elif move is IncidentMove.RESOLVE:
            why += ": only a confirmed incident is resolved; dismiss one that is not confirmed"
        elif status is _S.CONFIRMED:
            why += ": it is already confirmed"
        super().__init__(why)


class IncidentReasonRequired(IncidentMoveError):
    """The move needs a reason and none (or only blank text) was given."""

    def __init__(self, move: IncidentMove) -> None:
        self.move = move
        super().__init__(f"a reason is required to {move} an incident: the reporter is told why")


def apply_incident_move(
    status: IncidentStatus, move: IncidentMove, reason: str | None = None
) -> IncidentStatus:
    """The status after `move`, or the IncidentMoveError saying why not."""
    # Values read back from storage arrive as text; an unknown one fails here, early.
    status, move = IncidentStatus(status), IncidentMove(move)
    transition = _TRANSITIONS[move]
    if status not in transition.starts_from:
        raise IllegalIncidentMove(status, move)
    if transition.reason_required and (reason is None or not reason.strip()):
        raise IncidentReasonRequired(move)
    return transition.leads_to


def legal_incident_moves(status: IncidentStatus) -> tuple[IncidentMove, ...]:
    """The moves allowed from `status`, in the order they are declared."""
    status = IncidentStatus(status)
    return tuple(move for move, rule in _TRANSITIONS.items() if status in rule.starts_from)


def incident_reason_required(move: IncidentMove) -> bool:
    """Whether `move` needs a reason (so a form can ask for one before it is sent)."""
    return _TRANSITIONS[IncidentMove(move)].reason_required


def is_open_incident(status: IncidentStatus) -> bool:
    """Whether the incident is still open: reported, triaged or confirmed."""
    return IncidentStatus(status) in OPEN_INCIDENT_STATUSES


# --- the clock of reporting to an authority ---------------------------------------------


class ClockState(StrEnum):
    RUNNING = "running"  # the deadline is ahead, the reminder not yet due
    DUE_SOON = "due_soon"  # the reminder is due: the deadline is near
    OVERDUE = "overdue"  # past the deadline, not reported
    REPORTED = "reported"  # reported by the deadline
    REPORTED_LATE = "reported_late"  # reported after it


@dataclass(frozen=True)
class ReportingClock:
    """An incident's deadline for reporting to an authority (from the policy, by its
    severity, counted from when the report reached the lab) and the first report made."""

    authority: str
    deadline: datetime
    reminder: datetime
    reported_at: datetime | None

    def state(self, now: datetime) -> ClockState:
        if self.reported_at is not None:
            late = self.reported_at > self.deadline
            return ClockState.REPORTED_LATE if late else ClockState.REPORTED
        if now >= self.deadline:
            return ClockState.OVERDUE
        return ClockState.DUE_SOON if now >= self.reminder else ClockState.RUNNING
