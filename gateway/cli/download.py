"""`gateway download`: fetch a release through a gateway's API, resumably and verified."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click
import httpx2
from rich.console import Console
from rich.text import Text

from gateway import __version__
from gateway.client import exit_codes
from gateway.client.api import GatewayApi
from gateway.client.download import DownloadRequest, DownloadSummary, download_release
from gateway.client.errors import DownloadFailed
from gateway.client.parts import DEFAULT_PARTS, MAX_PARTS, PARTS_FROM
from gateway.client.progress import Bars, Silent, TransferProgress
from gateway.client.selection import Selection
from stages.names import InvalidName, parse_release_ref

DEFAULT_SERVER = "http://127.0.0.1:8000"

_out = Console(highlight=False, soft_wrap=True, markup=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{nbytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _fail(error: DownloadFailed) -> NoReturn:
    _err.print(Text("error: ", style="bold red") + Text(str(error)))
    if error.hint:
        _err.print(Text("hint: ", style="bold") + Text(error.hint))
    if error.exit_code == exit_codes.INTERRUPTED:
        # Ctrl-C ends at once: workers still blocked in a read are daemon threads, and
        # the interpreter's own shutdown (flushing their files, closing their
        # connections) could wait on what they hold. What they wrote is on disk already;
        # the next run resumes from it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(error.exit_code)
    # A plain exit: workers still blocked in a read are daemon threads, which the
    # interpreter does not wait for (gateway.client.download).
    sys.exit(error.exit_code)


def _summary(summary: DownloadSummary) -> str:
    verified = (
        "verified (signature OK)"
        if summary.complete
        else f"verified (signature OK; {summary.files} of {summary.signed_files} signed files)"
    )
    return (
        f"Downloaded {summary.release} to {summary.folder}: {summary.files} files, "
        f"{_size(summary.total_bytes)}, {verified}"
    )


@click.command(epilog=exit_codes.help_epilog())
@click.argument("ref", metavar="ORG/NAME[:VERSION]")
@click.option(
    "--to",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to download into (default: ./NAME-VERSION).",
)
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
    help="API key with the download scope (else $GATEWAY_API_KEY, which keeps it out of ps).",
)
@click.option(
    "--components",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Only these components, e.g. weights,model_card. Repeatable.",
)
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Only files matching GLOB (a GLOB without / matches file names). Repeatable.",
)
@click.option(
    "--parallel",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Files fetched at once.",
)
@click.option(
    "--parts",
    default=DEFAULT_PARTS,
    show_default=True,
    type=click.IntRange(1, MAX_PARTS),
    help=f"Range requests at once for each file of {PARTS_FROM >> 20} MiB or more "
    "(1: one stream per file).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def download(
    ref: str,
    folder: Path | None,
    server: str,
    key: str | None,
    components: tuple[str, ...],
    include: tuple[str, ...],
    parallel: int,
    parts: int,
    quiet: bool,
) -> None:
    """Download a release you have a grant for, resuming and verifying it.

    Files are fetched in parallel into FOLDER/<path>.part, a large file as several
    ranges at once, and renamed once their SHA-256 matches; the release signature is
    checked against the gateway's public key. Run the same command again after an
    interruption to resume where it stopped. The signature and key are saved beside the
    folder as FOLDER.sig and FOLDER.pub.pem.
    """
    try:
        model, version = parse_release_ref(ref, version_required=False)
    except InvalidName as exc:
        raise click.BadParameter(str(exc), param_hint="ORG/NAME[:VERSION]") from exc
    if not key:
        raise click.UsageError("no API key: pass --key or set GATEWAY_API_KEY")
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter(f"expected an http(s) URL, got {server!r}", param_hint="--server")
    request = DownloadRequest(
        model=model,
        version=version,
        folder=folder,
        selection=Selection.parse(components, include),
        parallel=parallel,
        parts=parts,
    )
    progress: TransferProgress = Silent() if quiet else Bars(_err)
    with _http_client(parallel * parts + 1) as client:
        api = GatewayApi(client, server, key)
        try:
            with progress:
                summary = download_release(api, request, progress, warn=_warn)
        except DownloadFailed as exc:
            _fail(exc)
        except KeyboardInterrupt:
            # Before or after the transfers (during them, download_release says so itself).
            _fail(DownloadFailed(exit_codes.INTERRUPTED_CODE, "interrupted; run again to resume"))
        except OSError as exc:
            _fail(DownloadFailed(exit_codes.UNEXPECTED_CODE, f"{exc.strerror}: {exc.filename}"))
    _out.print(_summary(summary))
    if summary.complete:
        _out.print(
            "Check it yourself with: model_signing verify key "
            f"{summary.folder} --signature {summary.signature_path} "
            f"--public_key {summary.public_key_path}"
        )


def _warn(message: str) -> None:
    _err.print(Text("warning: ", style="bold yellow") + Text(message))


def _http_client(connections: int) -> httpx2.Client:
    return httpx2.Client(
        # One connection per file or part being fetched, plus one for API calls (URL
        # refreshes).
        limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
        # Connect fast or retry; a read may wait on a busy server or slow storage.
        timeout=httpx2.Timeout(30.0, connect=10.0),
        follow_redirects=True,  # /d/ may redirect to presigned object storage
        headers={"User-Agent": f"gateway-download/{__version__}"},
    )


if __name__ == "__main__":
    download()
