"""Usage of releases: the rollup of the evidence log into daily counts, and reports.

The rollup (job `usage.rollup`) reads sealed leaves in order from where it stopped, so
each row is counted once, a row sealed late included; a row's stage is its release's at
that leaf: the last stage move before it in the log ("draft" before any), so that
transparency reports, which fold the log the same way, count what the rollups count.
It counts:

- `download`: a download started (the first request for a file under a new download id;
  `bytes` is the file's size), by day, stage, tier, organisation, file and account;
- `request`: every request for a file's bytes, whatever came of it;
- `refusal`: a request for bytes or a manifest that was refused, with the reason;
- `api_request` and `api_flagged`: API requests an inference service reported serving
  (`api_use.reported`), and those its safety filter flagged, by the grant's tier.

Reports sum those over a date range, by one dimension, with distinct grantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput, NotFound
from gateway.usage import repository
from stages import evidence as ev
from stages.names import parse_release_ref
from stages.release import DRAFT

PROGRESS: Final = "usage.rollup"
# Leaves read per round and at most per run (one write transaction).
BATCH: Final = 20_000
MAX_PER_RUN: Final = 200_000
DIMENSIONS: Final = ("stage", "tier", "organisation", "day", "artifact", "reason")
_KINDS: Final = (
    ev.EvidenceKind.DOWNLOAD_REQUESTED.value,
    ev.EvidenceKind.DOWNLOAD_MANIFEST_REFUSED.value,
    ev.EvidenceKind.API_USE_REPORTED.value,
)
_STAGE_KINDS: Final = tuple(
    sorted(
        name
        for kind in (
            ev.EvidenceKind.STAGE_PROMOTED,
            ev.EvidenceKind.STAGE_ROLLED_BACK,
            ev.EvidenceKind.STAGE_RECALLED,
            ev.EvidenceKind.STAGE_REINSTATED,
            ev.EvidenceKind.STAGE_DECOMMISSIONED,
        )
        for name in ev.stored_names(kind)
    )
)
_ALLOWED: Final = "allowed"


@dataclass(frozen=True)
class UsageRow:
    key: str
    downloads: int
    grantees: int
    bytes: int
    requests: int
    refusals: int
    api_requests: int = 0
    api_flagged: int = 0


@dataclass(frozen=True)
class UsageReport:
    subject: str
    by: str
    start: date | None
    end: date | None
    rows: list[UsageRow]

    @property
    def total(self) -> UsageRow:
        """The sums of the rows (distinct grantees do not sum: that cell is the largest)."""
        return UsageRow(
            key="total",
            downloads=sum(r.downloads for r in self.rows),
            grantees=max((r.grantees for r in self.rows), default=0),
            bytes=sum(r.bytes for r in self.rows),
            requests=sum(r.requests for r in self.rows),
            refusals=sum(r.refusals for r in self.rows),
            api_requests=sum(r.api_requests for r in self.rows),
            api_flagged=sum(r.api_flagged for r in self.rows),
        )


async def roll_up(uow: UnitOfWork, *, limit: int = MAX_PER_RUN) -> int:
    """Add the sealed leaves not yet read to the daily counts; how many leaves were read."""
    session = await uow.write()
    start = await repository.next_leaf(session, PROGRESS)
    end = min(await repository.sealed_size(session), start + limit)
    position = start
    stages: dict[int, str] = {}
    while position < end:
        stop = min(position + BATCH, end)
        rows = await repository.evidence_between(session, position, stop, _KINDS + _STAGE_KINDS)
        unseen = {row.release_id for row in rows} - stages.keys()
        stages.update(await repository.stages_before(session, unseen, position, _STAGE_KINDS))
        await repository.add_counts(session, await _counts(session, rows, stages))
        position = stop
    if end != start:
        await repository.set_next_leaf(session, PROGRESS, end)
    return end - start


async def rolled_up_to(uow: UnitOfWork) -> int:
    """The first leaf the rollup has not read yet."""
    return await repository.next_leaf(await uow.write(), PROGRESS)


async def _counts(session: Any, rows: Any, stages: dict[int, str]) -> list[dict[str, Any]]:
    """The counts of `rows` (in leaf order); `stages` holds each release's stage before
    them and is moved along by the stage moves among them."""
    organisations = await repository.organisations_of(
        session, (row.account_id for row in rows if row.account_id)
    )
    sizes = await repository.sizes_of(
        session,
        (row.data.get("artifact") for row in rows if isinstance(row.data.get("artifact"), int)),
    )
    summed: dict[tuple[Any, ...], list[int]] = {}

    def add(row: Any, measure: str, *, reason: str = "", count_bytes: int = 0, n: int = 1) -> None:
        data = row.data
        key = (
            row.release_id,
            row.at.date(),
            measure,
            stages.get(row.release_id, DRAFT),
            str(data.get("tier") or ""),
            organisations.get(row.account_id or "", ""),
            str(data.get("path") or ""),
            row.account_id or "",
            reason,
        )
        cell = summed.setdefault(key, [0, 0])
        cell[0] += n
        cell[1] += count_bytes

    for row in rows:
        data = row.data
        if row.kind in _STAGE_KINDS:
            stages[row.release_id] = str(data.get("to") or stages.get(row.release_id, DRAFT))
            continue
        if row.kind == ev.EvidenceKind.API_USE_REPORTED.value:
            add(row, "api_request", n=int(data.get("requests") or 0))
            add(row, "api_flagged", n=int(data.get("flagged") or 0))
            continue
        if row.kind == ev.EvidenceKind.DOWNLOAD_MANIFEST_REFUSED.value:
            add(row, "refusal", reason=str(data.get("reason") or ""))
            continue
        add(row, "request")
        outcome = str(data.get("outcome") or "")
        if outcome != _ALLOWED:
            add(row, "refusal", reason=outcome)
        elif data.get("new_download"):
            add(row, "download", count_bytes=sizes.get(data.get("artifact"), 0))
    return [
        dict(zip(repository.KEY, key, strict=True), count=cell[0], bytes=cell[1])
        for key, cell in summed.items()
    ]


@dataclass(frozen=True)
class UsagePage:
    """What the console shows of a release's use over [start, end]: a row per day (none
    missing), and the same range by stage and by refusal reason."""

    subject: str
    start: date
    end: date
    days: list[UsageRow]
    incidents: list[int]
    by_stage: list[UsageRow]
    by_reason: list[UsageRow]


# The console's default range, and the longest it draws a column a day for.
PAGE_DAYS: Final = 30
MAX_PAGE_DAYS: Final = 366


async def usage_page(
    uow: UnitOfWork, subject: str, *, start: date | None, end: date | None
) -> UsagePage:
    """The console's usage of `subject` (ORG/NAME:VERSION) over the days from `start` to
    `end` (default: the last 30 days)."""
    today = uow.rt.clock().date()
    end = end or today
    start = start or end - timedelta(days=PAGE_DAYS - 1)
    if (end - start).days >= MAX_PAGE_DAYS:
        raise InvalidInput(f"a range of at most {MAX_PAGE_DAYS} days, please")
    by_day = await usage_report(uow, subject, by="day", start=start, end=end)
    counted = {row.key: row for row in by_day.rows}
    days = []
    for offset in range((end - start).days + 1):
        day = (start + timedelta(days=offset)).isoformat()
        days.append(counted.get(day, UsageRow(day, 0, 0, 0, 0, 0)))
    model, version = parse_release_ref(subject, version_required=False)
    releases = await repository.release_ids(uow.session, model.org, model.name, version)
    reported = await repository.incidents_by_day(uow.session, releases, start, end)
    incidents = [reported.get(start + timedelta(days=i), 0) for i in range(len(days))]
    by_stage = await usage_report(uow, subject, by="stage", start=start, end=end)
    by_reason = await usage_report(uow, subject, by="reason", start=start, end=end)
    return UsagePage(
        subject=subject,
        start=start,
        end=end,
        days=days,
        incidents=incidents,
        by_stage=by_stage.rows,
        by_reason=by_reason.rows,
    )


async def usage_report(
    uow: UnitOfWork, subject: str, *, by: str, start: date | None, end: date | None
) -> UsageReport:
    """Usage of `subject` (ORG/NAME: every release of the model; ORG/NAME:VERSION: one)
    by `by`, over the days from `start` to `end` (inclusive)."""
    if by not in DIMENSIONS:
        raise InvalidInput(f"--by must be one of {', '.join(DIMENSIONS)}, not {by!r}")
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})")
    try:
        model, version = parse_release_ref(subject, version_required=False)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="bad_release_ref") from exc
    releases = await repository.release_ids(uow.session, model.org, model.name, version)
    if not releases:
        what = f"{model}:{version}" if version else str(model)
        raise NotFound(f"no release {what}", code="release_not_found")
    found = await repository.report(uow.session, releases, by=by, start=start, end=end)
    rows = [
        UsageRow(
            key=str(row.key),
            downloads=int(row.downloads or 0),
            grantees=int(row.grantees or 0),
            bytes=int(row.bytes or 0),
            requests=int(row.requests or 0),
            refusals=int(row.refusals or 0),
            api_requests=int(row.api_requests or 0),
            api_flagged=int(row.api_flagged or 0),
        )
        for row in found
    ]
    return UsageReport(subject=subject, by=by, start=start, end=end, rows=rows)
