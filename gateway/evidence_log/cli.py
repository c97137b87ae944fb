"""`gateway audit`: seal, export and verify the evidence log; print its checkpoint and key.

`verify` uses the reference verifier (reference_verify.py, the standard library alone),
so what the gateway checks is what an auditor checks without it.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import click

from gateway.cli.support import fail, in_unit, out, run
from gateway.evidence_log import service


@click.group()
def audit() -> None:
    """The evidence log: export it, verify it, see its signed checkpoint."""


@audit.command("seal")
def audit_seal() -> None:
    """Seal queued evidence into the log now and sign a checkpoint (the evidence.seal job)."""
    from gateway.jobs.registry import BY_NAME, run_job

    outcome = run(lambda rt: run_job(rt, BY_NAME["evidence.seal"]))
    out.print(outcome if outcome is not None else "skipped: another process is sealing")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the latest signed checkpoint (save it to verify an export later)."""
    checkpoint = run(in_unit(service.latest_checkpoint))
    sys.stdout.write(checkpoint.note)


@audit.command("public-key")
def audit_public_key() -> None:
    """Print the key that signs checkpoints, as a signed-note verifier key."""
    sys.stdout.write(run(in_unit(service.public_key)) + "\n")


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date such as 2026-10-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit.command("export")
@click.option("--since", help="Start at the first row of this date (UTC unless it says).")
def audit_export(since: str | None) -> None:
    """Write the log up to its latest checkpoint as JSON Lines, one leaf a line."""
    start = _date(since)
    stream = sys.stdout.buffer
    run(in_unit(lambda uow: service.write_export(uow, stream, since=start)))
    stream.flush()


# A checkpoint or a key is a few lines; anything larger is not one.
_SMALL_FILE_BYTES = 64 * 1024


def _small_file(name: str, what: str) -> bytes:
    try:
        with open(name, "rb") as opened:
            content = opened.read(_SMALL_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"{name}: cannot read the {what}: {exc.strerror}", 2)
    if len(content) > _SMALL_FILE_BYTES:
        fail(f"{name}: larger than a {what} can be ({_SMALL_FILE_BYTES // 1024} KiB)", 2)
    return content


@audit.command("verify")
@click.argument("export", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A checkpoint saved earlier (repeat for several). Default: the latest.",
)
@click.option(
    "--public-key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The log's verifier key, saved earlier. Default: the one the gateway holds.",
)
def audit_verify(
    export: str | None, checkpoint_files: tuple[str, ...], key_file: str | None
) -> None:
    """Recompute the tree of an export and check it against signed checkpoints, naming
    the first row that does not match. Without EXPORT, the log is exported from the
    database first. Give --checkpoint and --public-key saved earlier to trust nothing the
    gateway says now; without them, its latest checkpoint and its key are used."""
    from gateway.evidence_log import reference_verify as reference

    notes = [_small_file(name, "checkpoint") for name in checkpoint_files]
    key_text = _small_file(key_file, "key").decode("utf-8", "replace") if key_file else None
    if export not in (None, "-") and not Path(export).is_file():
        fail(f"{export}: no such export file", 2)
    if export is not None and (not notes or key_text is None):
        fail("an export file is checked against --checkpoint and --public-key files", 2)
    with tempfile.TemporaryDirectory(prefix="gateway-audit-") as scratch:
        if export is None:
            export = str(Path(scratch) / "evidence.jsonl")
            with open(export, "wb") as stream:
                exported = run(in_unit(lambda uow: service.write_export(uow, stream, since=None)))
            out.print(
                f"Exported {exported.lines} rows up to checkpoint {exported.checkpoint.size}."
            )
            notes = notes or [exported.checkpoint.note.encode()]
            key_text = key_text or exported.public_key
        assert key_text is not None
        try:
            key = reference.parse_verifier_key(key_text)
            checkpoints = [reference.parse_checkpoint(note) for note in notes]
            if export == "-":
                lines = iter(partial(sys.stdin.buffer.readline, reference.MAX_LINE_BYTES + 1), b"")
                report = reference.verify_export(lines, checkpoints, key)
            else:
                report = reference.verify_export_file(export, checkpoints, key)
        except reference.VerificationError as exc:
            fail(str(exc), 1)
    out.print(report.summary())
