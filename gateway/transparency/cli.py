"""`gateway transparency`: build a report's draft, review it, publish it; recompute a
published report from an export of the evidence log."""

from __future__ import annotations

import csv
import json
import sys
from functools import partial
from pathlib import Path

import click

from gateway.cli.support import UnitOfWork, fail, in_unit, out, run
from gateway.errors import InvalidInput
from gateway.input_files import read_input_file
from gateway.staging.cli import actor_for
from gateway.transparency import service
from gateway.transparency.service import Report
from stages.transparency.report import csv_rows

_MAX_REPORT_BYTES = 16 * 1024 * 1024


@click.group()
def transparency() -> None:
    """Transparency reports: applications, grants, downloads, incidents, enforcement."""


def _print_summary(report: Report) -> None:
    body = report.body
    state = (
        f"published {report.published_at:%Y-%m-%d %H:%M} UTC" if report.published_at else "draft"
    )
    out.print(
        f"{report.id}  {report.period}  {report.scope or 'whole gateway'}  {state}  "
        f"(log size {body['checkpoint']['tree_size']}, min_count {body['min_count']})"
    )


@transparency.command("build")
@click.option("--period", required=True, help="2026 (a year), 2026-Q4 (a quarter) or 2026-11.")
@click.option("--model", metavar="ORG/NAME", help="One model's report; default: every model.")
@click.option("--as", "operator", metavar="EMAIL", help="The operator building it.")
def transparency_build(period: str, model: str | None, operator: str | None) -> None:
    """Draft the report of a period from the evidence log as it stands (sealed first),
    replacing an earlier draft of the same period. Review it with `show`, then `publish`."""

    async def call(uow: UnitOfWork) -> Report:
        return await service.build(uow, period, model, actor=await actor_for(uow, operator))

    report = run(in_unit(call))
    _print_summary(report)
    if not report.body["complete"]:
        out.print("The period is not over: this draft counts up to now and cannot be published.")
    out.print(f"Review: gateway transparency show {report.id}")


@transparency.command("publish")
@click.argument("report_id")
@click.option("--as", "operator", metavar="EMAIL", help="The operator publishing it.")
def transparency_publish(report_id: str, operator: str | None) -> None:
    """Publish a reviewed draft: signed, public at /transparency, never changed again."""

    async def call(uow: UnitOfWork) -> Report:
        return await service.publish(uow, report_id, actor=await actor_for(uow, operator))

    report = run(in_unit(call))
    _print_summary(report)
    out.print(f"sha256 {report.sha256}")


@transparency.command("list")
@click.option("--drafts", is_flag=True, help="Drafts too, newest first.")
def transparency_list(drafts: bool) -> None:
    """Reports: the published ones (and with --drafts the drafts too)."""
    found = run(in_unit(lambda uow: service.reports(uow, published_only=not drafts, limit=500)))
    if not found:
        out.print("No reports yet: gateway transparency build --period 2026-Q4")
    for report in found:
        _print_summary(report)


@transparency.command("show")
@click.argument("report_id")
@click.option(
    "--format", "fmt", type=click.Choice(("json", "csv")), default="json", show_default=True
)
def transparency_show(report_id: str, fmt: str) -> None:
    """A report (draft or published) as JSON, with its signature, or its counts as CSV."""
    report = run(in_unit(lambda uow: service.get(uow, report_id)))
    if fmt == "json":
        sys.stdout.write(json.dumps(report.document, indent=2, ensure_ascii=False) + "\n")
        return
    writer = csv.writer(sys.stdout)
    writer.writerow(("figure", "breakdown", "count", "shown"))
    writer.writerows(csv_rows(report.body["figures"]))


def _read(name: str, what: str, limit: int) -> bytes:
    try:
        return read_input_file(Path(name), what=what, max_bytes=limit)
    except InvalidInput as exc:
        fail(exc.message, 2)


@transparency.command("verify")
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("export", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--public-key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The evidence log's verifier key (gateway audit public-key), to check the signature.",
)
def transparency_verify(report_file: str, export: str, key_file: str | None) -> None:
    """Recompute a published report (its JSON from /transparency) from a whole export of
    the evidence log (gateway audit export), and check its signature with --public-key.
    Names the first figure that differs; needs no database."""
    from gateway.transparency.recompute import RecomputeError, recompute

    report_text = _read(report_file, "report", _MAX_REPORT_BYTES)
    key_text = _read(key_file, "key", 64 * 1024).decode("utf-8", "replace") if key_file else None
    try:
        if export == "-":
            lines = iter(partial(sys.stdin.buffer.readline), b"")
            done = recompute(report_text, lines, key_text=key_text)
        else:
            try:
                with open(export, "rb") as opened:
                    done = recompute(report_text, opened, key_text=key_text)
            except OSError as exc:
                fail(f"{export}: cannot read the export: {exc.strerror}", 2)
    except RecomputeError as exc:
        fail(str(exc), 1)
    out.print(done.summary())
    if key_text is None:
        out.print("The signature was not checked: give --public-key to check it.")
