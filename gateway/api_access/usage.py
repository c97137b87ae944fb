"""API use that inference services report: batches of events, each counted once however
often it is sent, each kept as evidence that gates, usage reports and transparency
reports read.

An event says which grant was served (by the grantee's key, or the grant's id), which
release, when, how much (`units`: requests, tokens) and what the service noticed
(`flags`: safety_filter_triggered). A batch is checked event by event: a bad one is
refused with its index and reason while the good ones are kept. The key of an event is
the reporting service and the service's own `event_id`, so a retried batch adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from gateway import evidence
from gateway.api_access.repository import add_events, known_events, model_releases
from gateway.api_access.service import require_service
from gateway.credentials.api_key_format import is_well_formed
from gateway.db.models import Grant, Release
from gateway.db.uow import UnitOfWork
from gateway.downloads.access import grants_of
from gateway.errors import GatewayError, InvalidInput, NotFound
from gateway.keys.service import Caller, Unauthenticated, authenticate_cached
from stages import evidence as ev
from stages.actors import Actor
from stages.names import parse_release_ref

MAX_EVENTS: Final = 1000
MAX_EVENT_ID: Final = 200
MAX_REQUESTS: Final = 1_000_000
MAX_TOKENS: Final = 10**12
# How far from now an event's time may be: a service's clock may run a little ahead,
# and a service may send what it buffered, but not last quarter's use.
FUTURE: Final = timedelta(minutes=5)
PAST: Final = timedelta(days=7)
SAFETY_FLAG: Final = "safety_filter_triggered"
_FIELDS: Final = frozenset({"event_id", "key", "grant", "release", "time", "units", "flags"})


class EventStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # kept already, from an earlier batch or earlier in this one
    REFUSED = "refused"


@dataclass(frozen=True)
class EventOutcome:
    index: int
    event_id: str | None
    status: EventStatus
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class UsageReport:
    accepted: int
    duplicates: int
    refused: int
    events: tuple[EventOutcome, ...]


class TooManyEvents(GatewayError):
    status = 413


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Event:
    index: int
    event_id: str
    grant: Grant
    release: Release
    at: datetime
    requests: int
    tokens: int
    flagged: int


async def report_usage(uow: UnitOfWork, service: Caller, events: object) -> UsageReport:
    """Keep every good event of the batch not kept already; say what became of each."""
    now = uow.rt.clock()
    require_service(service, now)
    if not isinstance(events, list):
        raise InvalidInput(
            'expected {"events": [...]}: an array of usage events', code="invalid_events"
        )
    if not events:
        raise InvalidInput("the batch has no events", code="invalid_events")
    if len(events) > MAX_EVENTS:
        raise TooManyEvents(
            f"at most {MAX_EVENTS} events a batch, not {len(events)}: send the rest in another",
            code="too_many_events",
        )
    outcomes: dict[int, EventOutcome] = {}
    good: list[_Event] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        try:
            event = await _read(uow, index, raw, now)
        except _Refused as refused:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            outcomes[index] = EventOutcome(
                index,
                event_id if isinstance(event_id, str) else None,
                EventStatus.REFUSED,
                refused.code,
                refused.message,
            )
            continue
        if event.event_id in seen:
            outcomes[index] = EventOutcome(index, event.event_id, EventStatus.DUPLICATE)
            continue
        seen.add(event.event_id)
        good.append(event)
    kept = await known_events(uow.session, service.account.id, [e.event_id for e in good])
    fresh = [event for event in good if event.event_id not in kept]
    inserted: set[str] = set()
    if fresh:
        session = await uow.write()
        # A concurrent batch may have kept some since: the insert skips those.
        inserted = await add_events(session, [_row(service, event, now) for event in fresh])
        for event in fresh:
            if event.event_id in inserted:
                _record(session, service, event, now)
    for event in good:
        status = EventStatus.ACCEPTED if event.event_id in inserted else EventStatus.DUPLICATE
        outcomes[event.index] = EventOutcome(event.index, event.event_id, status)
    ordered = tuple(outcomes[index] for index in range(len(events)))
    return UsageReport(
        accepted=sum(o.status is EventStatus.ACCEPTED for o in ordered),
        duplicates=sum(o.status is EventStatus.DUPLICATE for o in ordered),
        refused=sum(o.status is EventStatus.REFUSED for o in ordered),
        events=ordered,
    )


async def _read(uow: UnitOfWork, index: int, raw: object, now: datetime) -> _Event:
    if not isinstance(raw, dict):
        raise _Refused("invalid_event", "an event is an object {event_id, key or grant, ...}")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _Refused(
            "invalid_event",
            f"unknown field {unknown[0]!r}; fields are {', '.join(sorted(_FIELDS))}",
        )
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= MAX_EVENT_ID:
        raise _Refused(
            "invalid_event_id", f"event_id must be text of 1 to {MAX_EVENT_ID} characters"
        )
    at = _time(raw.get("time"), now)
    requests, tokens = _units(raw.get("units"))
    flagged = requests if _flags(raw.get("flags")).get(SAFETY_FLAG, False) else 0
    release = await _release(uow, raw.get("release"))
    grant = await _grant(uow, raw.get("key"), raw.get("grant"), release, at)
    return _Event(index, event_id.strip(), grant, release, at, requests, tokens, flagged)


def _time(value: object, now: datetime) -> datetime:
    if not isinstance(value, str):
        raise _Refused(
            "invalid_time",
            "time must be an ISO 8601 time with its offset, e.g. 2026-12-02T10:00:00Z",
        )
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _Refused("invalid_time", f"time {value[:40]!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise _Refused("invalid_time", "time needs its offset (Z for UTC)")
    if at > now + FUTURE:
        raise _Refused("invalid_time", "time is in the future; check the service's clock")
    if at < now - PAST:
        raise _Refused(
            "invalid_time", f"time is more than {PAST.days} days ago; such use is no longer taken"
        )
    return at


def _units(value: object) -> tuple[int, int]:
    if value is None:
        return 1, 0
    if not isinstance(value, dict):
        raise _Refused(
            "invalid_units", "units must be an object such as {requests: 1, tokens: 350}"
        )
    unknown = sorted(set(value) - {"requests", "tokens"})
    if unknown:
        raise _Refused("invalid_units", f"unknown unit {unknown[0]!r}; units are requests, tokens")
    requests, tokens = value.get("requests", 1), value.get("tokens", 0)
    for name, number, most in (
        ("requests", requests, MAX_REQUESTS),
        ("tokens", tokens, MAX_TOKENS),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= most:
            raise _Refused(
                "invalid_units", f"units.{name} must be a whole number from 0 to {most:,}"
            )
    return requests, tokens


def _flags(value: object) -> dict[str, bool]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, bool) for k, v in value.items()
    ):
        raise _Refused(
            "invalid_flags",
            f"flags must be an object of true/false, such as {{{SAFETY_FLAG}: true}}",
        )
    return value


async def _release(uow: UnitOfWork, value: object) -> Release:
    if not isinstance(value, str):
        raise _Refused("invalid_release", "release must be text such as acme/llm:1.0")
    try:
        model, version = parse_release_ref(value)
        releases = await model_releases(uow, model)
    except (ValueError, NotFound, InvalidInput) as exc:
        raise _Refused("release_not_found", str(exc)) from None
    for release in releases:
        if release.version == version:
            return release
    raise _Refused("release_not_found", f"no release {value}")


async def _grant(
    uow: UnitOfWork, key: object, grant_id: object, release: Release, at: datetime
) -> Grant:
    """The grant served: named, or the key's grant on the release's model that gives API
    access and was in force at the event's time."""
    if (key is None) == (grant_id is None):
        raise _Refused("invalid_event", "name the grantee by key or by grant, one of the two")
    if key is not None:
        if not isinstance(key, str) or not is_well_formed(key.strip()):
            raise _Refused("key_invalid", "key is not an API key of this gateway")
        try:
            caller = await authenticate_cached(uow, key.strip())
        except Unauthenticated:
            raise _Refused("key_invalid", "key is not known to this gateway") from None
        account_id = caller.account.id
    else:
        account_id = ""
    ladder = uow.rt.policy.ladder
    candidates: Sequence[Grant]
    if grant_id is not None:
        if not isinstance(grant_id, str):
            raise _Refused("invalid_event", "grant must be a grant's id")
        found = await uow.session.get(Grant, grant_id)
        candidates = [found] if found is not None else []
        if found is None:
            raise _Refused("no_grant", f"no grant {grant_id[:40]}")
    else:
        candidates = await grants_of(uow, account_id, release.model_id)
    for grant in candidates:
        if grant.model_id != release.model_id:
            raise _Refused("no_grant", f"grant {grant.id} is for another model")
    serving = [
        g
        for g in candidates
        if g.tier in ladder
        and ladder.get(g.tier).api is not None
        and g.starts_at <= at < g.expires_at
    ]
    if not serving:
        raise _Refused(
            "no_grant", f"no grant with API access to {release.model.ref} at {at.isoformat()}"
        )
    return max(serving, key=lambda g: g.created_at)


def _row(service: Caller, event: _Event, now: datetime) -> dict[str, Any]:
    return {
        "service_id": service.account.id,
        "event_id": event.event_id,
        "release_id": event.release.id,
        "grant_id": event.grant.id,
        "account_id": event.grant.account_id,
        "at": event.at,
        "received_at": now,
        "requests": event.requests,
        "tokens": event.tokens,
        "flagged": event.flagged,
    }


def _record(session: Any, service: Caller, event: _Event, now: datetime) -> None:
    evidence.record(
        session,
        ev.ApiUseReported(
            event=event.event_id,
            grant=event.grant.id,
            tier=event.grant.tier,
            used_at=event.at,
            requests=event.requests,
            tokens=event.tokens,
            flagged=event.flagged,
        ),
        actor=Actor.account(service.account.id),
        at=now,
        model_id=event.release.model_id,
        release_id=event.release.id,
        account_id=event.grant.account_id,
    )
