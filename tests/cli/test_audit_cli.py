"""`gateway audit`: seal, print the checkpoint and key, export, and verify an export the
way an auditor does (saved checkpoint and key, or the gateway's own), naming a changed
row; the reference verifier runs with the standard library alone."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.config import Settings
from gateway.evidence_log import reference_verify
from gateway.evidence_log.cli import audit
from gateway.runtime import build_runtime
from tests.accounts import create_account
from tests.backends import on_each_database

pytestmark = on_each_database()


def gateway_audit(*args: str) -> Result:
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


def accounts(settings: Settings, *emails: str) -> None:
    async def go() -> None:
        rt = build_runtime(settings)
        try:
            for email in emails:
                await create_account(rt, email, operator=False, actor="test")
        finally:
            await rt.close()

    asyncio.run(go())


def saved(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An export with the checkpoint and key to check it against, saved as files."""
    checkpoint, key, export = (tmp_path / n for n in ("cp.txt", "key.txt", "ev.jsonl"))
    checkpoint.write_text(gateway_audit("checkpoint").stdout)
    key.write_text(gateway_audit("public-key").stdout)
    export.write_bytes(gateway_audit("export").stdout_bytes)
    return checkpoint, key, export


def test_a_sealed_log_exports_and_verifies_against_saved_files(
    settings_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The log is named after the host of the public URL.
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://gateway.example")
    accounts(settings_env, "a@example.org", "b@example.org")
    sealed = gateway_audit("seal")
    assert sealed.exit_code == 0
    assert sealed.stdout == "2 rows sealed, log of 2, checkpoint 2 signed\n"
    assert gateway_audit("seal").stdout == "0 rows sealed, log of 2\n"
    checkpoint, key, export = saved(tmp_path)
    assert checkpoint.read_text().splitlines()[:2] == ["gateway.example/evidence", "2"]
    assert [json.loads(line)["entry"]["index"] for line in export.read_text().splitlines()] == [
        0,
        1,
    ]

    result = gateway_audit(
        "verify", str(export), "--checkpoint", str(checkpoint), "--public-key", str(key)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 2 leaves of gateway.example/evidence (leaves 0 to 1)")

    # With nothing given, the gateway exports its log and checks it against its own key.
    result = gateway_audit("verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Exported 2 rows up to checkpoint 2."

    # The reference verifier alone, with no site packages: the standard library only.
    script = Path(reference_verify.__file__)
    alone = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(script),
            str(export),
            "--checkpoint",
            str(checkpoint),
            "--public-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (alone.returncode, alone.stderr) == (0, "")
    assert alone.stdout.startswith("verified 2 leaves")


def test_a_changed_export_is_named_and_fails(settings_env: Settings, tmp_path: Path) -> None:
    accounts(settings_env, "a@example.org", "b@example.org", "c@example.org")
    gateway_audit("seal")
    checkpoint, key, export = saved(tmp_path)
    lines = export.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"b@example.org", b"x@example.org")
    lines[1] = lines[1].replace(b'"account.created"', b'"account.deleted"')
    export.write_bytes(b"".join(lines))
    result = gateway_audit(
        "verify", str(export), "--checkpoint", str(checkpoint), "--public-key", str(key)
    )
    assert result.exit_code == 1
    assert "leaf 1 (evidence " in result.stderr
    assert "does not match the hash it was sealed with" in result.stderr


def test_an_export_alone_is_refused_as_a_usage_error(
    settings_env: Settings, tmp_path: Path
) -> None:
    export = tmp_path / "ev.jsonl"
    export.write_bytes(b"")
    result = gateway_audit("verify", str(export))
    assert result.exit_code == 2
    assert "an export file is checked against --checkpoint and --public-key files" in result.stderr


def test_before_any_seal_the_commands_say_there_is_no_checkpoint(settings_env: Settings) -> None:
    for command in ("checkpoint", "export", "verify"):
        result = gateway_audit(command)
        assert result.exit_code == 3, (command, result.output)
        assert "the evidence log has no checkpoint yet" in result.stderr


def test_files_that_cannot_be_read_are_usage_errors(settings_env: Settings, tmp_path: Path) -> None:
    accounts(settings_env, "a@example.org")
    gateway_audit("seal")
    checkpoint, key, export = saved(tmp_path)
    missing = gateway_audit(
        "verify",
        str(tmp_path / "none.jsonl"),
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        str(key),
    )
    assert (missing.exit_code, missing.stderr.strip()) == (
        2,
        f"error: {tmp_path / 'none.jsonl'}: no such export file",
    )
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"x" * (64 * 1024 + 1))
    too_big = gateway_audit(
        "verify", str(export), "--checkpoint", str(huge), "--public-key", str(key)
    )
    assert (too_big.exit_code, too_big.stderr.strip()) == (
        2,
        f"error: {huge}: larger than a checkpoint can be (64 KiB)",
    )
