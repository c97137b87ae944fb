"""An export's filters, checked the same for the operator API and `gateway export`: a bad
one is refused (400, exit code 2) with what was expected, before a row is read.

Dates are YYYY-MM-DD (midnight UTC) or an ISO date and time (UTC unless it carries an
offset). The window is half open, `since` <= t < `until` (gateway/db/batches.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from gateway.applications.reviewing import checked_model, checked_tier
from gateway.db.batches import Window
from gateway.decommission.announce import parse_when
from gateway.errors import InvalidInput
from gateway.runtime import Runtime
from stages.enforcement import EnforcementStep
from stages.names import ModelRef

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class AccessQuery:
    """The filters of an export of applications or grants, as asked: text, unchecked."""

    status: str | None = None
    model: str | None = None
    tier: str | None = None
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class AccessFilter(Generic[S]):
    """Applications or grants (S, their status) of a model, a tier, a window, checked."""

    status: S | None
    model: ModelRef | None
    tier: str | None
    window: Window


@dataclass(frozen=True)
class EnforcementFilter:
    action: EnforcementStep | None
    window: Window


def one_of(value: str | None, states: type[S], what: str) -> S | None:
    """`value` as one of `states`, or None for none; 400 unknown_<what> otherwise."""
    if not value:
        return None
    try:
        return states(value)
    except ValueError:
        known = ", ".join(state.value for state in states)
        raise InvalidInput(
            f"unknown {what} {value!r}; expected one of {known}", code=f"unknown_{what}"
        ) from None


def _moment(name: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_when(text)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}", code="invalid_date") from None
    except OverflowError:
        # A date at the very edge of the calendar whose offset moves it past that edge.
        raise InvalidInput(f"{name}: {text!r} is out of range", code="invalid_date") from None


def window(since: str | None, until: str | None) -> Window:
    """The window of `since` and `until`; 400 invalid_date for a bad date or for `since`
    after `until`."""
    start, end = _moment("since", since), _moment("until", until)
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"since ({start:%Y-%m-%d %H:%M} UTC) is after until ({end:%Y-%m-%d %H:%M} UTC)",
            code="invalid_date",
        )
    return Window(start, end)


def access_filter(rt: Runtime, states: type[S], asked: AccessQuery) -> AccessFilter[S]:
    """The filters of an export of applications (`since` and `until` bound the submission
    time) or of grants (their creation time), checked."""
    return AccessFilter(
        status=one_of(asked.status, states, "status"),
        model=checked_model(asked.model),
        tier=checked_tier(rt, asked.tier),
        window=window(asked.since, asked.until),
    )


def enforcement_filter(
    *, action: str | None, since: str | None, until: str | None
) -> EnforcementFilter:
    """The enforcement export's filters, checked; `since` and `until` bound when the
    action was taken."""
    return EnforcementFilter(
        action=one_of(action, EnforcementStep, "action"), window=window(since, until)
    )
