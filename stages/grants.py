# Grant statuses and the moves between them.
#
# Rules:
# - The legal moves are a table; anything else raises IllegalGrantMove and changes nothing.
# - `revoked` and `expired` are final: access once taken away is granted again only by a
#   new grant (with its own evidence), never by flipping a status back.
# - A grant's window is [starts_at, expires_at); periods for quotas count from starts_at.
# - Renewal follows from the table: an active grant is renewed in place (the RENEW move,
#   which keeps it active and moves its end); an expired grant is final, so renewing it
#   issues a new grant. A suspended or revoked grant is not renewed.

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Final


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
    RENEW = "renew"  # the window moves on; the status stays


_MOVES: Final[Mapping[tuple[GrantStatus, GrantMove], GrantStatus]] = {
    (GrantStatus.ACTIVE, GrantMove.SUSPEND): GrantStatus.SUSPENDED,
    (GrantStatus.SUSPENDED, GrantMove.REINSTATE): GrantStatus.ACTIVE,
    (GrantStatus.ACTIVE, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.SUSPENDED, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.ACTIVE, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.SUSPENDED, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.ACTIVE, GrantMove.RENEW): GrantStatus.ACTIVE,
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


def grant_move_sources(move: GrantMove) -> frozenset[GrantStatus]:
    """The statuses `move` may start from, for a guarded bulk UPDATE."""
    return frozenset(status for status, each in _MOVES if each is GrantMove(move))


def bulk_grant_move(move: GrantMove) -> tuple[tuple[GrantStatus, ...], GrantStatus]:
    """For a guarded bulk UPDATE: the statuses `move` starts from (in declaration order),
    and the one status it leads to from each of them."""
    sources = grant_move_sources(move)
    (leads_to,) = {_MOVES[(status, GrantMove(move))] for status in sources}
    return tuple(status for status in GrantStatus if status in sources), leads_to


# Grants that may still give access, and those that never will again.
OPEN_GRANT_STATUSES: Final = grant_move_sources(GrantMove.EXPIRE)
ENDED_GRANT_STATUSES: Final = frozenset(GrantStatus) - OPEN_GRANT_STATUSES


class Renewal(StrEnum):
    """How a renewal is carried out, decided by the grant's status."""

    EXTEND = "extend"  # the RENEW move: the same grant, a later end
    NEW_GRANT = "new_grant"  # an expired grant stays expired; a new grant follows it


class RenewalRefusal(StrEnum):
    STATUS = "status"  # a suspended or revoked grant
    NOT_OPEN = "not_open"  # an active grant before its renewal window opens


def renewal(status: GrantStatus) -> Renewal:
    """How a grant in `status` is renewed, or IllegalGrantMove if it cannot be."""
    status = GrantStatus(status)
    if (status, GrantMove.RENEW) in _MOVES:
        return Renewal.EXTEND
    if status is GrantStatus.EXPIRED:
        return Renewal.NEW_GRANT
    raise IllegalGrantMove(status, GrantMove.RENEW)


def renewal_refusal(status: GrantStatus, *, window_open: bool) -> RenewalRefusal | None:
    """Why a grant in `status` may not be asked to renew now, or None if it may.

    An expired grant may be renewed at any time; an active one only inside its window
    (policies.lifecycle.renewal_open says whether it is open).
    """
    try:
        how = renewal(status)
    except IllegalGrantMove:
        return RenewalRefusal.STATUS
    if how is Renewal.EXTEND and not window_open:
        return RenewalRefusal.NOT_OPEN
    return None


def quota_period(starts_at: datetime, now: datetime, period_days: int) -> int:
    """Which quota period `now` falls in: 0 for the first `period_days` of the grant."""
    return max(0, (now - starts_at).days // period_days)
