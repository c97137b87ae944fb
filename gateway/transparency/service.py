"""Transparency reports: building a draft from the evidence log, publishing it, reading.

A report is computed from the log as it stands at one checkpoint: the rows at leaves
below its size, folded by `stages.transparency` (downloads from the daily rollups, which
count the same rows the same way, brought up to that checkpoint first). Anyone with an
export of the log recomputes the same figures (`gateway transparency verify`).

Publishing signs the report: a signed note in the checkpoint format, over the tree the
report was computed from, with one more line naming the report's SHA-256, signed with
the evidence log's key. A published report is never changed (the database refuses it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gateway import evidence
from gateway.catalog.service import get_model
from gateway.db.models import TransparencyReport
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.evidence_log import checkpoints as notes
from gateway.evidence_log import repository as log_repository
from gateway.evidence_log import service as evidence_log
from gateway.evidence_log.entries import canonical
from gateway.jobs import repository as job_locks
from gateway.transparency import repository
from gateway.usage import service as usage
from stages import evidence as ev
from stages.actors import Actor
from stages.names import parse_model_ref
from stages.transparency.figures import Figures
from stages.transparency.report import (
    SCHEMA,
    SCHEMA_VERSION,
    Period,
    overlaps,
    parse_period,
    published,
)

GATEWAY: Final = ""  # the scope of a report of every model
# A report built this long after its period ended is complete: a transaction still open
# across the end has committed (or failed) by then, and its rows are sealed.
SETTLE: Final = timedelta(minutes=10)
_FOLDED: Final = tuple(
    sorted(
        name
        for kind in ev.EvidenceKind
        if kind.value.startswith(
            ("application.", "grant.", "incident.", "stage.", "account.", "appeal.")
        )
        for name in ev.stored_names(kind)
    )
)


@dataclass(frozen=True)
class Report:
    id: str
    period: str
    scope: str
    body: dict[str, Any]
    built_at: datetime
    built_by: str
    published_at: datetime | None
    published_by: str | None
    signed_note: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical(self.body)).hexdigest()

    @property
    def document(self) -> dict[str, Any]:
        """What /transparency serves as JSON: the report and its signature."""
        signature = None
        if self.signed_note is not None:
            signature = {"sha256": self.sha256, "signed_note": self.signed_note}
        return {"report": self.body, "signature": signature}


def _report(row: TransparencyReport) -> Report:
    return Report(
        id=row.id,
        period=row.period,
        scope=row.scope,
        body=json.loads(row.body),
        built_at=row.built_at,
        built_by=row.built_by,
        published_at=row.published_at,
        published_by=row.published_by,
        signed_note=row.signed_note,
    )


def period_of(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="bad_period") from exc


async def _scope(uow: UnitOfWork, model: str | None) -> tuple[str, int | None]:
    if model is None or model == GATEWAY:
        return GATEWAY, None
    try:
        ref = parse_model_ref(model)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="bad_model_ref") from exc
    return str(ref), (await get_model(uow, ref)).id


async def _caught_up(uow: UnitOfWork) -> Any:
    """The latest checkpoint, with every row sealed and the rollups read up to it. The
    sealing job's lock is held meanwhile (on SQLite the write lock is all there is)."""
    session = await uow.write()
    if not uow.rt.settings.is_sqlite:
        await job_locks.wait_for_job_lock(session, "evidence.seal")
    while (await evidence_log.seal(uow)).sealed:
        pass
    while True:
        latest = await log_repository.latest_checkpoint(session)
        if latest is None:
            raise Conflict("the evidence log has no checkpoint yet", code="no_checkpoint")
        if await usage.roll_up(uow):
            continue
        read = await usage.rolled_up_to(uow)
        if read == latest.tree_size:
            return latest
        raise Conflict(
            f"the usage rollups have read {read} leaves of the evidence log, but its latest "
            f"checkpoint has {latest.tree_size}: the log's leaves and checkpoints disagree "
            "(gateway audit verify says where)",
            code="evidence_log_changed",
        )


async def figures_at(
    uow: UnitOfWork, period: Period, model_id: int | None, size: int, min_count: int
) -> dict[str, Any]:
    """A report's figures from the log's first `size` leaves (the rollups at `size`)."""
    fold = Figures(period.start, period.end, model_id)
    async for entry in repository.entries(uow.session, _FOLDED, size, model_id):
        fold.add(entry)
    rows = await repository.downloads(uow.session, period.start.date(), period.end.date(), model_id)
    for row in rows:
        fold.add_downloads(row.stage, row.account_id, int(row.n))
    return published(fold, min_count)


async def build(uow: UnitOfWork, period_text: str, model: str | None, *, actor: Actor) -> Report:
    """Draft the report of a period (of one model, or the whole gateway), replacing an
    earlier draft of the same period and scope."""
    period = period_of(period_text)
    scope, model_id = await _scope(uow, model)
    session = await uow.write()
    latest = await _caught_up(uow)
    min_count = uow.rt.policy.transparency.min_count
    figures = await figures_at(uow, period, model_id, latest.tree_size, min_count)
    released = {action["release_id"] for action in figures["release_actions"]}
    now = uow.rt.clock()
    body = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "period": {
            "name": period.name,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "scope": {"model": scope or None, "model_id": model_id},
        "min_count": min_count,
        "checkpoint": {
            "tree_size": latest.tree_size,
            "root_hash": bytes(latest.root_hash).hex(),
            "signed_note": latest.note,
        },
        "built_at": now.isoformat(),
        "complete": now >= period.end + SETTLE,
        "releases": {
            str(k): v for k, v in sorted((await repository.release_refs(session, released)).items())
        },
        "figures": figures,
    }
    await repository.drop_drafts(session, period.name, scope)
    row = TransparencyReport(
        id=str(uuid.uuid4()),
        period=period.name,
        model_id=model_id,
        scope=scope,
        tree_size=latest.tree_size,
        body=canonical(body).decode(),
        built_at=now,
        built_by=str(actor),
    )
    repository.add(session, row)
    return _report(row)


async def publish(uow: UnitOfWork, report_id: str, *, actor: Actor) -> Report:
    """Publish a reviewed draft: sign it and make it public, for good."""
    session = await uow.write()
    if not uow.rt.settings.is_sqlite:
        # Two drafts of one period published at once: the second finds the first.
        await job_locks.wait_for_job_lock(session, "transparency.publish")
    row = await repository.get(session, report_id, lock=True)
    if row is None:
        raise NotFound(f"no transparency report {report_id}", code="report_not_found")
    if row.published_at is not None:
        raise Conflict(f"report {report_id} is already published", code="already_published")
    body = json.loads(row.body)
    if not body.get("complete"):
        raise Conflict(
            f"this draft was built before {row.period} was over ({body['period']['end']}, "
            f"and {SETTLE.seconds // 60} minutes for the last rows to be sealed): build it "
            "again then, review it, and publish that draft",
            code="period_not_over",
        )
    if await repository.published_one(session, row.period, row.scope) is not None:
        raise Conflict(
            f"a report of {row.period} for {row.scope or 'the whole gateway'} is already "
            "published; published reports are never replaced",
            code="already_published",
        )
    await _check_no_overlap(session, row.period, row.scope)
    now = uow.rt.clock()
    digest = hashlib.sha256(row.body.encode()).hexdigest()
    name, private = await evidence_log.signing_key(uow)
    checkpoint = body["checkpoint"]
    text = notes.body(name, row.tree_size, bytes.fromhex(checkpoint["root_hash"]), now)
    text += f"transparency-report {row.period} {row.scope or '*'} sha256:{digest}\n"
    row.signed_note = notes.sign(private, name, text)
    row.published_at, row.published_by = now, str(actor)
    row.published_key = f"{row.period} {row.scope}"
    evidence.record(
        session,
        ev.TransparencyReportPublished(row.id, row.period, row.scope, row.tree_size, digest),
        actor=actor,
        at=now,
        model_id=row.model_id,
    )
    return _report(row)


async def _check_no_overlap(session: Any, period: str, scope: str) -> None:
    mine = (parse_period(period), scope)
    for other in await repository.published_scopes(session):
        if overlaps(mine, (parse_period(other.period), other.scope)):
            what = other.scope or "every model"
            raise Conflict(
                f"the report of {other.period} for {what} is published and counts some of "
                f"the same rows as this one ({period}, {scope or 'every model'}): with both "
                "public, a reader could subtract one from the other and recover counts "
                "each suppressed. Publish reports that do not overlap (quarters or years, "
                "every model or each model)",
                code="reports_overlap",
            )


async def get(uow: UnitOfWork, report_id: str) -> Report:
    row = await repository.get(uow.session, report_id)
    if row is None:
        raise NotFound(f"no transparency report {report_id}", code="report_not_found")
    return _report(row)


async def published_report(uow: UnitOfWork, period: str, model: str | None) -> Report:
    """The published report of `period` for `model` (None: the whole gateway)."""
    scope = GATEWAY
    if model is not None:
        try:
            scope = str(parse_model_ref(model))
        except ValueError as exc:
            raise NotFound(f"no published report for {model!r}", code="report_not_found") from exc
    row = await repository.published_one(uow.session, period, scope)
    if row is None:
        what = scope or "the whole gateway"
        raise NotFound(f"no published report of {period} for {what}", code="report_not_found")
    return _report(row)


async def reports(
    uow: UnitOfWork, *, published_only: bool, limit: int = 50, offset: int = 0
) -> list[Report]:
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput("limit must be from 1 to 500 and offset at least 0", code="bad_page")
    rows = await repository.listed(
        uow.session, published=published_only, limit=limit, offset=offset
    )
    return [_report(row) for row in rows]
