"""`gateway export`: the operator API's exports from the command line, to standard output
or a file, with the same rows and filters; a bad filter exits 2 and writes no file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Settings
from gateway.exports import service
from gateway.runtime import build_runtime
from tests.backends import on_each_database
from tests.cli.test_enforce_cli import appeal_by_account
from tests.exports import csv_rows, jsonl_rows, plant_grants
from tests.sample import publish

pytestmark = on_each_database()
BOB = "bob@example.org"
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def grants_of_one_account(settings: Settings, tmp_path: Path, count: int) -> list[str]:
    async def go() -> list[str]:
        rt = build_runtime(settings)
        try:
            await publish(rt, tmp_path)
            return await plant_grants(rt, "many@corp.example", count, T0)
        finally:
            await rt.close()

    return asyncio.run(go())


def test_enforcement_exports_to_a_file_as_csv_and_to_stdout_as_json_lines(
    settings_env: Settings, tmp_path: Path
) -> None:
    assert gateway("accounts", "create", BOB).exit_code == 0
    warned = gateway("enforce", BOB, "warn", "--reason", "@everyone spam")
    assert warned.exit_code == 0, warned.output
    action_id = jsonl_rows(gateway("export", "enforcement").stdout_bytes)[0]["id"]
    appeal_by_account(settings_env, BOB, action_id, "It was a test message.")

    out = tmp_path / "enforcement.csv"
    written = gateway("export", "enforcement", "--format", "csv", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    [row] = csv_rows(out.read_bytes())
    assert out.read_bytes().startswith(",".join(service.ENFORCEMENT_COLUMNS).encode())
    assert (row["id"], row["account"], row["action"]) == (action_id, BOB, "warn")
    assert row["reason"] == "'@everyone spam"
    assert row["appeal_status"] == "pending"
    assert not (tmp_path / "enforcement.csv.part").exists()

    lines = jsonl_rows(gateway("export", "enforcement", "--action", "warn").stdout_bytes)
    assert [line["reason"] for line in lines] == ["@everyone spam"]
    assert gateway("export", "enforcement", "--action", "suspend").stdout_bytes == b""


def test_grants_export_every_row_once_across_batches(
    settings_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = grants_of_one_account(settings_env, tmp_path, 120)
    monkeypatch.setattr(service, "EXPORT_BATCH", 11)
    out = tmp_path / "grants.jsonl"
    assert gateway("export", "grants", "--model", "acme/sample", "--out", str(out)).exit_code == 0
    ids = [row["id"] for row in jsonl_rows(out.read_bytes())]
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == set(planted)


def test_a_bad_filter_exits_2_and_writes_no_file(settings_env: Settings, tmp_path: Path) -> None:
    out = tmp_path / "applications.csv"
    for args, words in [
        (["--status", "pending"], "unknown status 'pending'"),
        (["--since", "2030-03-02", "--until", "2030-03-01"], "is after until"),
        (["--tier", "nobody"], "unknown tier 'nobody'"),
    ]:
        refused = gateway("export", "applications", "--out", str(out), *args)
        assert refused.exit_code == 2, refused.output
        assert words in refused.output
        assert not out.exists()
    bad_format = gateway("export", "grants", "--format", "xlsx")
    assert bad_format.exit_code == 2
    assert "'xlsx' is not one of 'csv', 'jsonl'" in bad_format.output
