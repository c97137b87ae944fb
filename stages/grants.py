# Grant statuses and the moves between them.
#
# Rules:
# - The legal moves are a table; anything else raises IllegalGrantMove and changes nothing.
# - `revoked` and `expired` are final: access once taken away is granted again only by a
#   new grant (with its own evidence), never by flipping a status back.
# - A grant's window is [starts_at, expires_at); periods for quotas count from starts_at.

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class GrantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class GrantMove(StrEnum):
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"
    EXPIRE = "expire"


_MOVES: dict[tuple[GrantStatus, GrantMove], GrantStatus] = {
    (GrantStatus.ACTIVE, GrantMove.SUSPEND): GrantStatus.SUSPENDED,
    (GrantStatus.SUSPENDED, GrantMove.REINSTATE): GrantStatus.ACTIVE,
    (GrantStatus.ACTIVE, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.SUSPENDED, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.ACTIVE, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.SUSPENDED, GrantMove.EXPIRE): GrantStatus.EXPIRED,
}


class IllegalGrantMove(Exception):
    def __init__(self, status: GrantStatus, move: GrantMove) -> None:
        self.status = status
        self.move = move
        super().__init__(f"cannot {move.value} a grant that is {status.value}")


def apply_grant_move(status: GrantStatus, move: GrantMove) -> GrantStatus:
    """The status after `move`, or IllegalGrantMove."""
    try:
        return _MOVES[(status, move)]
    except KeyError:
        raise IllegalGrantMove(status, move) from None


def quota_period(starts_at: datetime, now: datetime, period_days: int) -> int:
    """Which quota period `now` falls in: 0 for the first `period_days` of the grant."""
    return max(0, (now - starts_at).days // period_days)
