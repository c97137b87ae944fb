"""`gateway export`: applications, grants and enforcement actions as CSV or JSON Lines,
to standard output or a file, with the operator API's filters and rows.

A file is written beside its name and moved into place when the export is whole, so an
export that fails leaves no partial file behind; a bad filter is refused before any file
is opened.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import click

from gateway.cli.support import run, run_unit
from gateway.exports import filters, service
from gateway.exports.filters import AccessFilter, AccessQuery
from gateway.exports.formats import Format, write
from stages.applications import ApplicationStatus
from stages.grants import GrantStatus

if TYPE_CHECKING:
    from gateway.cli.support import UnitOfWork
    from gateway.exports.service import Export
    from gateway.runtime import Runtime

Opened = Callable[["UnitOfWork"], "Export"]
S = TypeVar("S", bound=StrEnum)


@click.group()
def export() -> None:
    """Export applications, grants or enforcement actions as CSV or JSON Lines."""


def _common(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option(
            "--format",
            "output",
            type=click.Choice([f.value for f in Format]),
            default=Format.JSONL.value,
            show_default=True,
        ),
        click.option(
            "--out",
            type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
            default="-",
            help="The file to write (default: standard output).",
        ),
        click.option("--since", help="From this date on (YYYY-MM-DD or ISO; UTC unless it says)."),
        click.option("--until", help="Before this date (YYYY-MM-DD or ISO; UTC unless it says)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@contextmanager
def _target(out: Path) -> Iterator[BinaryIO]:
    if str(out) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = out.with_name(f"{out.name}.part")
    try:
        with open(partial, "wb") as stream:
            yield stream
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _export(output: str, out: Path, opened: Callable[[Runtime], Opened]) -> None:
    async def go(rt: Runtime) -> None:
        make = opened(rt)  # checks the filters, before a file is opened
        with _target(out) as stream:
            await run_unit(rt, lambda uow: write(Format(output), make(uow), stream))

    run(go)


def _access_options(status_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option("--tier", metavar="TIER")(command)
        command = click.option("--model", metavar="ORG/NAME")(command)
        return click.option("--status", help=status_help)(command)

    return decorate


def _access_export(
    states: type[S],
    exported: Callable[[UnitOfWork, AccessFilter[S]], Export],
    asked: AccessQuery,
    output: str,
    out: Path,
) -> None:
    def opened(rt: Runtime) -> Opened:
        where = filters.access_filter(rt, states, asked)
        return lambda uow: exported(uow, where)

    _export(output, out, opened)


@export.command("applications")
@_access_options("An application status.")
@_common
def export_applications(output: str, out: Path, **asked: str | None) -> None:
    """Every application (submitted in the window), with its review times."""
    _access_export(ApplicationStatus, service.application_export, AccessQuery(**asked), output, out)


@export.command("grants")
@_access_options("A grant status: active, suspended, revoked or expired.")
@_common
def export_grants(output: str, out: Path, **asked: str | None) -> None:
    """Every grant (created in the window), with its account and standing."""
    _access_export(GrantStatus, service.grant_export, AccessQuery(**asked), output, out)


@export.command("enforcement")
@click.option("--action", help="warn, suspend or terminate.")
@_common
def export_enforcement(
    action: str | None, output: str, out: Path, since: str | None, until: str | None
) -> None:
    """Every enforcement action (taken in the window), with its appeal."""

    def opened(rt: Runtime) -> Opened:
        where = filters.enforcement_filter(action=action, since=since, until=until)
        return lambda uow: service.enforcement_export(uow, where)

    _export(output, out, opened)
