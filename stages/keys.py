# The state of an API key: active, revoked or expired.
#
# Rules:
# - Pure: the clock comes in as `now`.
# - Revocation wins: a revoked key reads as revoked even after its expiry, since that is
#   what someone did to it.
# - A key is expired from the instant of `expires_at` on (the access decision refuses it
#   from then on too).

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class KeyState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


def key_state(*, revoked: bool, expires_at: datetime, now: datetime) -> KeyState:
    """What a key is at `now`."""
    if revoked:
        return KeyState.REVOKED
    if now >= expires_at:
        return KeyState.EXPIRED
    return KeyState.ACTIVE
