# Enforcement against accounts: the status an account is in, the steps that change it,
# and the appeal of each step.
#
# Rules:
# - An account is active, suspended or terminated. A warning is a record, not a status:
#   warning an account leaves its status as it was.
# - The legal moves are the data in _ACCOUNT_MOVES; anything else raises
#   IllegalAccountMove and, statuses being plain values, changes nothing.
# - terminated is final for every enforcement step. The one way out is `restore`, which
#   only an overturned appeal of the termination makes (see overturn_move).
# - Each enforcement action may be appealed once (the window is policy: see
#   policies.enforcement.appeal_window). An appeal is pending until it is upheld or
#   overturned; both are final.
# - Overturning undoes what the action still does to the account: an overturned
#   suspension that is still in force is lifted, an overturned termination restores the
#   account to active. An overturned warning changes no status; it simply stops counting
#   on the enforcement ladder.

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class EnforcementStep(StrEnum):
    """A rung of the enforcement ladder, from the mildest to the gravest."""

    WARN = "warn"
    SUSPEND = "suspend"
    TERMINATE = "terminate"

    @property
    def rank(self) -> int:
        """1 for warn up to 3 for terminate."""
        return list(EnforcementStep).index(self) + 1


class AccountMove(StrEnum):
    # The first three share their values with EnforcementStep: AccountMove(step) works.
    WARN = "warn"
    SUSPEND = "suspend"
    TERMINATE = "terminate"
    LIFT = "lift"  # end a suspension: it ran out, an operator lifted it, or it was overturned
    RESTORE = "restore"  # undo a termination overturned on appeal


_A = AccountStatus
_M = AccountMove

# (status, move) -> status after the move
_ACCOUNT_MOVES: Final[Mapping[tuple[AccountStatus, AccountMove], AccountStatus]] = {
    (_A.ACTIVE, _M.WARN): _A.ACTIVE,
    (_A.SUSPENDED, _M.WARN): _A.SUSPENDED,
    (_A.ACTIVE, _M.SUSPEND): _A.SUSPENDED,
    (_A.ACTIVE, _M.TERMINATE): _A.TERMINATED,
    (_A.SUSPENDED, _M.TERMINATE): _A.TERMINATED,
    (_A.SUSPENDED, _M.LIFT): _A.ACTIVE,
    (_A.TERMINATED, _M.RESTORE): _A.ACTIVE,
}

# Why a move is refused, most specific first: by (status, move), then by status or move.
_WHY_NOT_PAIR: Final[Mapping[tuple[AccountStatus, AccountMove], str]] = {
    (_A.SUSPENDED, _M.SUSPEND): "it is already suspended",
}
_WHY_NOT_STATUS: Final[Mapping[AccountStatus, str]] = {
    _A.TERMINATED: "termination is final unless overturned on appeal",
}
_WHY_NOT_MOVE: Final[Mapping[AccountMove, str]] = {
    _M.LIFT: "only a suspension can be lifted",
    _M.RESTORE: "only a terminated account is restored, after its termination is overturned",
}
_VERB: Final[Mapping[AccountMove, str]] = {_M.LIFT: "lift the suspension of"}


class EnforcementError(Exception):
    """Base of the errors of the enforcement and appeal machines; nothing was changed."""


# The names read as the domain says them; an "Error" suffix would add nothing.
class IllegalAccountMove(EnforcementError):
    """The move is not allowed from the account's status."""

    def __init__(self, status: AccountStatus, move: AccountMove) -> None:
        self.status = status
        self.move = move
        why = (
            _WHY_NOT_PAIR.get((status, move))
            or _WHY_NOT_STATUS.get(status)
            or _WHY_NOT_MOVE.get(move, "")
        )
        article = "an" if status is _A.ACTIVE else "a"
        super().__init__(f"cannot {_VERB.get(move, move.value)} {article} {status} account: {why}")


def apply_enforcement(status: AccountStatus, move: AccountMove) -> AccountStatus:
    """The account's status after `move`, or IllegalAccountMove."""
    # Values read back from storage arrive as text; an unknown one fails here, early.
    status, move = AccountStatus(status), AccountMove(move)
    try:
        return _ACCOUNT_MOVES[(status, move)]
    except KeyError:
        raise IllegalAccountMove(status, move) from None


def legal_account_moves(status: AccountStatus) -> tuple[AccountMove, ...]:
    """The moves allowed from `status`, in the order AccountMove declares them."""
    status = AccountStatus(status)
    return tuple(move for move in AccountMove if (status, move) in _ACCOUNT_MOVES)


class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class AppealMove(StrEnum):
    UPHOLD = "uphold"
    OVERTURN = "overturn"


_APPEAL_MOVES: Final[Mapping[tuple[AppealStatus, AppealMove], AppealStatus]] = {
    (AppealStatus.PENDING, AppealMove.UPHOLD): AppealStatus.UPHELD,
    (AppealStatus.PENDING, AppealMove.OVERTURN): AppealStatus.OVERTURNED,
}


class IllegalAppealMove(EnforcementError):
    """An appeal that is already decided cannot be decided again."""

    def __init__(self, status: AppealStatus, move: AppealMove) -> None:
        self.status = status
        self.move = move
        super().__init__(f"cannot {move} an appeal that was {status}: the decision is final")


def apply_appeal_move(status: AppealStatus, move: AppealMove) -> AppealStatus:
    """The appeal's status after `move`, or IllegalAppealMove."""
    status, move = AppealStatus(status), AppealMove(move)
    try:
        return _APPEAL_MOVES[(status, move)]
    except KeyError:
        raise IllegalAppealMove(status, move) from None


def overturn_move(
    appealed: EnforcementStep, status: AccountStatus, *, in_force: bool
) -> AccountMove | None:
    """The account move that undoes an overturned `appealed` step, or None if none is needed.

    `status` is the account's status when the appeal is overturned; `in_force` says whether
    the appealed action is what holds the account in that status now (the suspension that
    is running, not an earlier one since lifted). A suspension that has ended needs nothing;
    one followed by a termination leaves the termination to its own appeal.
    """
    appealed, status = EnforcementStep(appealed), AccountStatus(status)
    if not in_force:
        return None
    if appealed is EnforcementStep.SUSPEND and status is _A.SUSPENDED:
        return _M.LIFT
    if appealed is EnforcementStep.TERMINATE and status is _A.TERMINATED:
        return _M.RESTORE
    return None
