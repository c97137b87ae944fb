"""`gateway evaluate`: an external evaluator sends an evaluation result for a release open
to their grant, with its report, through a gateway's API."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import httpx2
from rich.console import Console
from rich.text import Text

from gateway import __version__
from gateway.cli.download import DEFAULT_SERVER
from gateway.client.api import GatewayApi
from gateway.client.errors import DownloadFailed
from gateway.staging.evidence_files import EVIDENCE_FILE_MAX_BYTES
from stages.names import InvalidName, parse_release_ref

_out = Console(highlight=False, soft_wrap=True, markup=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


@click.command()
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--name", required=True, help="The evaluation's name, as the gates say it: red-team.")
@click.option("--result", required=True, help="Its result, e.g. pass or fail.")
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The report to attach (a PDF, say).",
)
@click.option("--note", help="A short note for the release team.")
@click.option(
    "--server",
    envvar=["GATEWAY_SERVER", "GATEWAY_PUBLIC_URL"],
    default=DEFAULT_SERVER,
    show_default=True,
    help="The gateway's URL (else $GATEWAY_SERVER, else $GATEWAY_PUBLIC_URL).",
)
@click.option(
    "--key",
    envvar="GATEWAY_API_KEY",
    help="Your API key with the download scope (else $GATEWAY_API_KEY).",
)
def evaluate(
    ref: str,
    name: str,
    result: str,
    report: Path | None,
    note: str | None,
    server: str,
    key: str | None,
) -> None:
    """Send an evaluation result as an external evaluator; it counts for the gates.

    You are an external evaluator with a grant in a tier the policy marks `evaluators`.
    The result is attributed to you and nobody can edit it."""
    try:
        model, version = parse_release_ref(ref, version_required=True)
    except InvalidName as exc:
        raise click.BadParameter(str(exc), param_hint="ORG/NAME:VERSION") from exc
    assert version is not None
    if not key:
        raise click.UsageError("no API key: pass --key or set GATEWAY_API_KEY")
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter(f"expected an http(s) URL, got {server!r}", param_hint="--server")
    document = None
    if report is not None:
        if report.stat().st_size > EVIDENCE_FILE_MAX_BYTES:
            raise click.BadParameter(
                f"{report} is larger than {EVIDENCE_FILE_MAX_BYTES >> 20} MiB",
                param_hint="--report",
            )
        document = (report.name, report.read_bytes())
    headers = {"User-Agent": f"gateway-evaluate/{__version__}"}
    with httpx2.Client(timeout=httpx2.Timeout(60.0, connect=10.0), headers=headers) as client:
        try:
            sent = GatewayApi(client, server, key).submit_evaluation(
                model, version, name=name, result=result, note=note, report=document
            )
        except DownloadFailed as exc:
            _err.print(Text("error: ", style="bold red") + Text(str(exc)))
            sys.exit(exc.exit_code)
    attached = f" with {sent.get('file_name')}" if sent.get("file_name") else ""
    _out.print(f"Recorded evaluation/{name} = {result} for {ref}{attached}, attributed to you.")
