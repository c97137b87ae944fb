"""Every query of the incidents feature: reports, the console's lists, the timeline, the
accounts linked to an incident and the evidence its triggers left. Plain reads and adds;
the services decide when a unit of work enters its write phase."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.keyset import keyset_page
from gateway.db.models import (
    Account,
    Evidence,
    Incident,
    IncidentAccount,
    IncidentEvent,
    Model,
    Release,
)
from gateway.pagination import Keyset
from stages import evidence as ev
from stages.incidents import OPEN_INCIDENT_STATUSES, IncidentStatus
from stages.names import ModelRef

# A row of an incident with its subject: (incident, org, name, version).
SubjectRow = Row[Incident, str | None, str | None, str | None]


def _with_subject(
    query: Select[Incident],
) -> Select[Incident, str | None, str | None, str | None]:
    return (
        query.add_columns(Model.org, Model.name, Release.version)
        .outerjoin(Model, Model.id == Incident.model_id)
        .outerjoin(Release, Release.id == Incident.release_id)
    )


def subject_of(row: Any) -> str | None:
    """`ORG/NAME:VERSION` (or `ORG/NAME`) of a row read with its subject; None for none."""
    _, org, name, version = row
    if org is None:
        return None
    return f"{org}/{name}:{version}" if version is not None else f"{org}/{name}"


def _by_ref(id_or_code: str, code: str | None) -> Select[Incident]:
    clauses = [Incident.id == id_or_code]
    if code is not None:
        clauses.append(Incident.tracking_code == code)
    return select(Incident).where(or_(*clauses))


# --- subjects and reporters --------------------------------------------------------------


async def model_by_ref(session: AsyncSession, model: ModelRef) -> Model | None:
    return await session.scalar(
        select(Model).where(Model.org == model.org, Model.name == model.name)
    )


async def release_of(session: AsyncSession, model_id: int, version: str) -> Release | None:
    return await session.scalar(
        select(Release).where(Release.model_id == model_id, Release.version == version)
    )


async def account_exists(session: AsyncSession, account_id: str) -> bool:
    return await session.get(Account, account_id) is not None


async def email_of(session: AsyncSession, account_id: str) -> str | None:
    return await session.scalar(select(Account.email).where(Account.id == account_id))


async def emails_of(session: AsyncSession, account_ids: Collection[str]) -> dict[str, str]:
    """account id -> email, for the ids that exist."""
    if not account_ids:
        return {}
    rows = await session.execute(
        select(Account.id, Account.email).where(Account.id.in_(list(account_ids)))
    )
    return {row.id: row.email for row in rows}


async def active_operators(session: AsyncSession) -> list[tuple[str, str]]:
    """(account id, email) of every active operator."""
    rows = await session.execute(
        select(Account.id, Account.email).where(
            Account.is_operator.is_(True), Account.status == "active"
        )
    )
    return [(account_id, email) for account_id, email in rows.all()]


async def code_taken(session: AsyncSession, code: str) -> bool:
    return (
        await session.scalar(select(Incident.id).where(Incident.tracking_code == code)) is not None
    )


# --- incidents ---------------------------------------------------------------------------


async def by_code_with_subject(session: AsyncSession, code: str) -> SubjectRow | None:
    return (
        await session.execute(_with_subject(select(Incident)).where(Incident.tracking_code == code))
    ).first()


async def by_ref_with_subject(
    session: AsyncSession, id_or_code: str, code: str | None
) -> SubjectRow | None:
    return (await session.execute(_with_subject(_by_ref(id_or_code, code)))).first()


async def locked_by_ref(
    session: AsyncSession, id_or_code: str, code: str | None
) -> Incident | None:
    return await session.scalar(_by_ref(id_or_code, code).with_for_update())


async def locked_by_id(session: AsyncSession, incident_id: str) -> Incident | None:
    return await session.scalar(
        select(Incident).where(Incident.id == incident_id).with_for_update()
    )


async def get(session: AsyncSession, incident_id: str) -> Incident | None:
    return await session.get(Incident, incident_id)


async def status_moves(
    session: AsyncSession, incident_id: str, moves: Iterable[str]
) -> Sequence[Row[str, Any, str | None]]:
    """(move, at, note) of the incident's status-changing events, oldest first."""
    return (
        await session.execute(
            select(IncidentEvent.move, IncidentEvent.at, IncidentEvent.note)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.move.in_(list(moves)))
            .order_by(IncidentEvent.id)
        )
    ).all()


def _matching(
    *,
    statuses: Collection[str] | None,
    severity: str | None,
    model: ModelRef | None,
    version: str | None,
) -> Select[Incident, str | None, str | None, str | None]:
    """Incidents with their subjects that pass the filters, in no order yet."""
    query = _with_subject(select(Incident))
    if statuses is not None:
        query = query.where(Incident.status.in_(list(statuses)))
    if severity is not None:
        query = query.where(Incident.severity == severity)
    if model is not None:
        query = query.where(Model.org == model.org, Model.name == model.name)
    if version is not None:
        query = query.where(Release.version == version)
    return query


async def page_of_incidents(
    session: AsyncSession,
    *,
    statuses: Collection[str] | None,
    severity: str | None,
    model: ModelRef | None,
    version: str | None,
    limit: int,
    offset: int,
) -> tuple[list[SubjectRow], int]:
    """Incidents newest first (ties: the greater id first, as `incidents_after`), one
    page, and how many match in all."""
    query = _matching(statuses=statuses, severity=severity, model=model, version=version)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.execute(
        query.order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), total


async def incidents_after(
    session: AsyncSession,
    *,
    statuses: Collection[str] | None,
    severity: str | None,
    model: ModelRef | None,
    version: str | None,
    after: Keyset | None,
    limit: int,
) -> list[SubjectRow]:
    """Up to `limit` + 1 incidents that match, newest first (ties: the greater id first),
    from just after `after` in that order."""
    query = _matching(statuses=statuses, severity=severity, model=model, version=version)
    page = keyset_page(query, Incident.created_at, Incident.id, after, limit, descending=True)
    return list((await session.execute(page)).all())


async def timeline(session: AsyncSession, incident_id: str) -> list[IncidentEvent]:
    events = await session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id)
    )
    return list(events.all())


async def linked_accounts(session: AsyncSession, incident_id: str) -> list[Account]:
    linked = await session.scalars(
        select(Account)
        .join(IncidentAccount, IncidentAccount.account_id == Account.id)
        .where(IncidentAccount.incident_id == incident_id)
        .order_by(Account.email)
    )
    return list(linked.all())


async def is_linked(session: AsyncSession, incident_id: str, account_id: str) -> bool:
    return await session.get(IncidentAccount, (incident_id, account_id)) is not None


def link(session: AsyncSession, incident_id: str, account_id: str) -> None:
    session.add(IncidentAccount(incident_id=incident_id, account_id=account_id))


def add_event(
    session: AsyncSession,
    incident: Incident,
    *,
    at: Any,
    actor: str,
    move: str,
    from_status: str | None,
    note: str | None,
) -> None:
    """A line of the incident's timeline, from `from_status` to the status it has now."""
    incident.updated_at = at
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=at,
            actor=actor,
            move=move,
            from_status=from_status,
            to_status=incident.status,
            note=note,
        )
    )


# --- what the triggers read --------------------------------------------------------------


async def confirmed_ids(session: AsyncSession) -> list[str]:
    return list(
        (
            await session.scalars(
                select(Incident.id)
                .where(Incident.status == IncidentStatus.CONFIRMED.value)
                .order_by(Incident.created_at, Incident.id)
            )
        ).all()
    )


async def release_facts(session: AsyncSession, release_id: int) -> Row[str, str, str, str, str]:
    """(version, stage, status, org, name) of a release."""
    return (
        await session.execute(
            select(Release.version, Release.stage, Release.status, Model.org, Model.name)
            .join(Model, Model.id == Release.model_id)
            .where(Release.id == release_id)
        )
    ).one()


async def linked_standings(session: AsyncSession, incident_id: str) -> dict[str, tuple[str, str]]:
    """account id -> (email, status) of the accounts linked to the incident."""
    linked = await session.execute(
        select(Account.id, Account.email, Account.status)
        .join(IncidentAccount, IncidentAccount.account_id == Account.id)
        .where(IncidentAccount.incident_id == incident_id)
    )
    return {account_id: (email, status) for account_id, email, status in linked.all()}


async def account_status(session: AsyncSession, account_id: str) -> str | None:
    return await session.scalar(select(Account.status).where(Account.id == account_id))


def fired_evidence_query(
    release_id: int | None, accounts: Collection[str]
) -> Select[dict[str, Any]] | None:
    """The query of `fired_evidence` (None: nothing to look in). Each branch is an index's
    prefix: (release_id, kind), or (account_id, kind), so an account's millions of
    download rows are never read to find its few trigger.fired ones."""
    query = select(Evidence.data).where(evidence.of_kind(ev.EvidenceKind.TRIGGER_FIRED))
    if release_id is not None:
        return query.where(Evidence.release_id == release_id)
    if accounts:
        return query.where(Evidence.account_id.in_(sorted(accounts)))
    return None


async def fired_evidence(
    session: AsyncSession, release_id: int | None, accounts: Mapping[str, object]
) -> list[dict[str, Any]]:
    """The data of the trigger.fired evidence that may be this incident's: through the
    indexed columns (a release's evidence, or the linked accounts'); the caller picks the
    incident out of the rows' data."""
    query = fired_evidence_query(release_id, list(accounts))
    if query is None:
        return []
    return list((await session.scalars(query)).all())


# --- what the reporting clocks read ------------------------------------------------------


async def first_moves(
    session: AsyncSession, incident_ids: Collection[str], moves: Collection[str]
) -> dict[tuple[str, str], datetime]:
    """When each of `incident_ids` first made each of `moves` (absent: never)."""
    if not incident_ids:
        return {}
    rows = await session.execute(
        select(IncidentEvent.incident_id, IncidentEvent.move, func.min(IncidentEvent.at))
        .where(IncidentEvent.incident_id.in_(incident_ids), IncidentEvent.move.in_(moves))
        .group_by(IncidentEvent.incident_id, IncidentEvent.move)
    )
    return {(incident_id, move): at for incident_id, move, at in rows.all()}


async def unreported(
    session: AsyncSession, severities: Collection[str], reported_move: str, done_move: str
) -> list[Incident]:
    """Incidents of `severities`, not dismissed, with no `reported_move` nor `done_move`
    on their timeline: the clocks that may still call for a reminder."""
    made = select(IncidentEvent.id).where(
        IncidentEvent.incident_id == Incident.id, IncidentEvent.move.in_((reported_move, done_move))
    )
    found = await session.scalars(
        select(Incident)
        .where(
            Incident.severity.in_(severities),
            Incident.status != IncidentStatus.DISMISSED.value,
            ~made.exists(),
        )
        .order_by(Incident.created_at, Incident.id)
    )
    return list(found.all())


async def open_reporters(session: AsyncSession, release_id: int) -> list[tuple[str, str]]:
    """(incident id, reporter's email) of each open incident about the release that a
    signed-in, active account with a confirmed email address reported: an address nobody
    has confirmed proves nothing about who reports."""
    rows = await session.execute(
        select(Incident.id, Account.email)
        .join(Account, Account.id == Incident.reporter_account_id)
        .where(
            Incident.release_id == release_id,
            Incident.status.in_([s.value for s in OPEN_INCIDENT_STATUSES]),
            Account.email_verified_at.is_not(None),
            Account.status == "active",
        )
        .order_by(Incident.created_at, Incident.id)
    )
    return [(incident_id, email) for incident_id, email in rows.all()]
