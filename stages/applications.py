# Application statuses, the moves between them, and who may make each move.
#
# Rules:
# - The legal moves are the data in _TRANSITIONS: the statuses a move may start from,
#   the status it leads to, the actors who may make it, and whether it needs a reason.
#   Anything else raises an ApplicationMoveError and, statuses being plain values,
#   changes nothing.
# - Checks run in a fixed order: the actor, then the status, then the reason. A move an
#   actor may never make is refused the same way whatever the status, so an applicant
#   learns nothing about an application's state by trying an operator's move.
# - approved, denied, withdrawn and expired are terminal: a closed application is never
#   reopened; the account applies again (after any cooldown) with a new one.
# - A reason is required where the applicant must be told why (deny) or what to do
#   (request_changes). Blank text is no reason.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class ApplicationMove(StrEnum):
    START_REVIEW = "start_review"
    REQUEST_CHANGES = "request_changes"
    RESUBMIT = "resubmit"
    APPROVE = "approve"
    DENY = "deny"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"


class Actor(StrEnum):
    APPLICANT = "applicant"
    OPERATOR = "operator"
    SYSTEM = "system"  # the gateway itself: automatic approval, the scheduler


@dataclass(frozen=True)
class _Transition:
    starts_from: frozenset[ApplicationStatus]
    leads_to: ApplicationStatus
    actors: frozenset[Actor]
    reason_required: bool


_S = ApplicationStatus
_REVIEWABLE: Final = frozenset({_S.SUBMITTED, _S.UNDER_REVIEW})

_TRANSITIONS: Final[Mapping[ApplicationMove, _Transition]] = {
    ApplicationMove.START_REVIEW: _Transition(
        frozenset({_S.SUBMITTED}), _S.UNDER_REVIEW, frozenset({Actor.OPERATOR}), False
    ),
    ApplicationMove.REQUEST_CHANGES: _Transition(
        _REVIEWABLE, _S.CHANGES_REQUESTED, frozenset({Actor.OPERATOR}), True
    ),
    ApplicationMove.RESUBMIT: _Transition(
        frozenset({_S.CHANGES_REQUESTED}), _S.SUBMITTED, frozenset({Actor.APPLICANT}), False
    ),
    ApplicationMove.APPROVE: _Transition(
        _REVIEWABLE, _S.APPROVED, frozenset({Actor.OPERATOR, Actor.SYSTEM}), False
    ),
    ApplicationMove.DENY: _Transition(_REVIEWABLE, _S.DENIED, frozenset({Actor.OPERATOR}), True),
    ApplicationMove.WITHDRAW: _Transition(
        _REVIEWABLE | {_S.CHANGES_REQUESTED}, _S.WITHDRAWN, frozenset({Actor.APPLICANT}), False
    ),
    # The scheduler's move once the applicant has let the policy's response_days pass.
    ApplicationMove.EXPIRE: _Transition(
        frozenset({_S.CHANGES_REQUESTED}), _S.EXPIRED, frozenset({Actor.SYSTEM}), False
    ),
}

TERMINAL_STATUSES: Final = frozenset({_S.APPROVED, _S.DENIED, _S.WITHDRAWN, _S.EXPIRED})

# How the messages say things; the enum values are for programs.
_VERB: Final[Mapping[ApplicationMove, str]] = {
    ApplicationMove.START_REVIEW: "start reviewing",
    ApplicationMove.REQUEST_CHANGES: "request changes to",
    ApplicationMove.RESUBMIT: "resubmit",
    ApplicationMove.APPROVE: "approve",
    ApplicationMove.DENY: "deny",
    ApplicationMove.WITHDRAW: "withdraw",
    ApplicationMove.EXPIRE: "expire",
}
_STATUS_WORDS: Final[Mapping[ApplicationStatus, str]] = {
    _S.SUBMITTED: "submitted",
    _S.UNDER_REVIEW: "under review",
    _S.CHANGES_REQUESTED: "waiting for changes",
    _S.APPROVED: "approved",
    _S.DENIED: "denied",
    _S.WITHDRAWN: "withdrawn",
    _S.EXPIRED: "expired",
}
_WHO: Final[Mapping[Actor, str]] = {
    Actor.APPLICANT: "the applicant",
    Actor.OPERATOR: "an operator",
    Actor.SYSTEM: "the gateway itself",
}
_WHY_A_REASON: Final[Mapping[ApplicationMove, str]] = {
    ApplicationMove.REQUEST_CHANGES: "say what the applicant should change",
    ApplicationMove.DENY: "it is shown to the applicant",
}


class ApplicationMoveError(Exception):
    """Base of the errors of the application machine; nothing was changed."""


# The names read as the domain says them; an "Error" suffix would add nothing.
class IllegalApplicationMove(ApplicationMoveError):
    """The move is not allowed from the application's status."""

    def __init__(self, status: ApplicationStatus, move: ApplicationMove) -> None:
        self.status = status
        self.move = move
        why = f"cannot {_VERB[move]} an application that is {_STATUS_WORDS[status]}"
        if status in TERMINAL_STATUSES:
            why += ": it is closed"
        super().__init__(why)


class ActorNotAllowed(ApplicationMoveError):
    """The actor may never make this move, whatever the status."""

    def __init__(self, move: ApplicationMove, actor: Actor) -> None:
        self.move = move
        self.actor = actor
        allowed = " or ".join(_WHO[who] for who in Actor if who in _TRANSITIONS[move].actors)
        super().__init__(f"{_WHO[actor]} cannot {_VERB[move]} an application; only {allowed} can")


class ReasonRequired(ApplicationMoveError):
    """The move needs a reason and none (or only blank text) was given."""

    def __init__(self, move: ApplicationMove) -> None:
        self.move = move
        super().__init__(
            f"a reason is required to {_VERB[move]} an application: {_WHY_A_REASON[move]}"
        )


def apply_application_move(
    status: ApplicationStatus, move: ApplicationMove, actor: Actor, reason: str | None = None
) -> ApplicationStatus:
    """The status after `actor` makes `move`, or the ApplicationMoveError saying why not."""
    # Values read back from storage arrive as text; an unknown one fails here, early.
    status, move, actor = ApplicationStatus(status), ApplicationMove(move), Actor(actor)
    transition = _TRANSITIONS[move]
    if actor not in transition.actors:
        raise ActorNotAllowed(move, actor)
    if status not in transition.starts_from:
        raise IllegalApplicationMove(status, move)
    if transition.reason_required and (reason is None or not reason.strip()):
        raise ReasonRequired(move)
    return transition.leads_to


def legal_moves(status: ApplicationStatus, actor: Actor) -> tuple[ApplicationMove, ...]:
    """The moves `actor` may make from `status`, in the order they are declared."""
    return tuple(
        move
        for move, transition in _TRANSITIONS.items()
        if actor in transition.actors and status in transition.starts_from
    )


def reason_required(move: ApplicationMove) -> bool:
    """Whether `move` needs a reason (so a form can ask for one before it is sent)."""
    return _TRANSITIONS[ApplicationMove(move)].reason_required


def is_open(status: ApplicationStatus) -> bool:
    """Whether the application is still open; an account has at most one per model and tier."""
    return ApplicationStatus(status) not in TERMINAL_STATUSES


def awaits_review(status: ApplicationStatus) -> bool:
    """Whether the application is in the operators' queue (its review clock is running)."""
    return ApplicationStatus(status) in _REVIEWABLE
