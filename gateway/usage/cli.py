"""`gateway usage`: how a release (or every release of a model) is used, from the daily
rollups: downloads, distinct grantees, bytes, requests and refusals, by one dimension."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from datetime import date

import click
from rich.table import Table

from gateway.cli.support import in_unit, out, run
from gateway.usage.service import DIMENSIONS, UsageReport, usage_report


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date such as 2026-10-01", param_hint=option
        ) from None


@click.command()
@click.argument("subject", metavar="ORG/NAME[:VERSION]")
@click.option(
    "--by",
    type=click.Choice(DIMENSIONS),
    default="day",
    show_default=True,
    help="What each row counts by.",
)
@click.option("--from", "start", metavar="DATE", help="First day (UTC), e.g. 2026-10-01.")
@click.option("--to", "end", metavar="DATE", help="Last day (UTC), included.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "csv", "json")),
    default="table",
    show_default=True,
)
def usage(subject: str, by: str, start: str | None, end: str | None, fmt: str) -> None:
    """How a release is used: downloads, grantees, bytes and refusals, by day, tier...

    Counts for ORG/NAME:VERSION, or every release of ORG/NAME: downloads started,
    distinct grantees, bytes of the files downloaded, requests for bytes and refusals,
    and the API requests inference services reported serving (and those their safety
    filter flagged), by stage, tier, organisation, day, file or refusal reason. They
    come from the daily rollups of the evidence log (job usage.rollup, every minute)."""
    first, last = _day(start, "--from"), _day(end, "--to")
    report = run(in_unit(lambda uow: usage_report(uow, subject, by=by, start=first, end=last)))
    if fmt == "json":
        body = {
            "subject": report.subject,
            "by": report.by,
            "from": report.start.isoformat() if report.start else None,
            "to": report.end.isoformat() if report.end else None,
            "rows": [asdict(row) for row in report.rows],
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([by, *_COLUMNS])
        for row in report.rows:
            writer.writerow(
                [
                    row.key,
                    row.downloads,
                    row.grantees,
                    row.bytes,
                    row.requests,
                    row.refusals,
                    row.api_requests,
                    row.api_flagged,
                ]
            )
    else:
        _table(report)


_COLUMNS = ("downloads", "grantees", "bytes", "requests", "refusals", "api_requests", "api_flagged")


def _table(report: UsageReport) -> None:
    if not report.rows:
        out.print(f"No use of {report.subject} recorded in that range.")
        return
    table = Table(title=f"{report.subject} by {report.by}")
    for column in (report.by, *_COLUMNS):
        table.add_column(column, justify="left" if column == report.by else "right")
    for row in [*report.rows, report.total]:
        table.add_row(
            row.key or "—",
            f"{row.downloads:,}",
            f"{row.grantees:,}",
            _size(row.bytes),
            f"{row.requests:,}",
            f"{row.refusals:,}",
            f"{row.api_requests:,}",
            f"{row.api_flagged:,}",
        )
    out.print(table)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{count} B"
