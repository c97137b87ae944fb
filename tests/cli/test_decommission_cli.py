"""`gateway decommission` and `gateway purge`: announcing, refusals with their exit codes,
and a purge that asks for confirmation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from gateway.cli import main
from gateway.config import Settings
from gateway.db.models import Decommission, Notification
from gateway.decommission.announce import parse_when
from gateway.decommission.service import execute_due
from gateway.runtime import build_runtime
from tests.sample import make_folder, make_license
from tests.units import writing


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def setup(tmp_path: Path) -> None:
    for version in ("1.0", "1.1"):
        folder = make_folder(tmp_path / f"src-{version}")
        published = gateway(
            "release",
            "publish",
            "acme/sample",
            version,
            str(folder),
            "--license",
            str(make_license(tmp_path)),
        )
        assert published.exit_code == 0, published.output
    assert gateway("accounts", "create", "bob@example.org").exit_code == 0
    granted = gateway(
        "grants",
        "create",
        "--account",
        "bob@example.org",
        "--model",
        "acme/sample",
        "--tier",
        "researcher",
    )
    assert granted.exit_code == 0, granted.output


def in_days(days: int) -> str:
    return f"{datetime.now(UTC) + timedelta(days=days):%Y-%m-%d}"


def test_parse_when() -> None:
    assert parse_when("2030-06-30") == datetime(2030, 6, 30, tzinfo=UTC)
    assert parse_when("2030-06-30T12:30") == datetime(2030, 6, 30, 12, 30, tzinfo=UTC)
    assert parse_when("2030-06-30T12:30+02:00") == datetime(2030, 6, 30, 10, 30, tzinfo=UTC)
    assert parse_when("2030-06-30T12:30Z") == datetime(2030, 6, 30, 12, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        parse_when("next week")


def test_decommission_announces_once(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    new_license = tmp_path / "LICENSE-2.txt"
    new_license.write_text("Sample Model License, second edition\n")
    date = in_days(40)
    announced = gateway(
        "decommission",
        "acme/sample:1.0",
        "--at",
        date,
        "--reason",
        "superseded",
        "--successor",
        "1.1",
        "--license",
        str(new_license),
    )
    assert announced.exit_code == 0, announced.output
    assert f"acme/sample:1.0: hosting ends {date} 00:00 UTC" in announced.output
    assert "grantees notified: 1" in announced.output
    assert "successor: acme/sample:1.1" in announced.output
    assert "new license from that date: sha256 " in announced.output
    assert "reminders: " in announced.output

    again = gateway("decommission", "acme/sample:1.0", "--at", date, "--reason", "x")
    assert again.exit_code == 4
    assert "already announced" in again.output

    async def notified() -> int:
        rt = build_runtime(settings_env)
        try:
            async with rt.sessionmaker() as session:
                notes = await session.scalars(
                    select(Notification).where(
                        Notification.kind == "release.decommission_announced"
                    )
                )
                return len(notes.all())
        finally:
            await rt.close()

    assert asyncio.run(notified()) == 1


def test_decommission_refusals(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    date = in_days(40)
    bad_date = gateway("decommission", "acme/sample:1.0", "--at", "soon", "--reason", "x")
    assert bad_date.exit_code == 2
    assert "invalid date 'soon'" in bad_date.output
    past = gateway("decommission", "acme/sample:1.0", "--at", "2020-01-01", "--reason", "x")
    assert past.exit_code == 2
    assert "not in the future" in past.output
    no_successor = gateway(
        "decommission", "acme/sample:1.0", "--at", date, "--reason", "x", "--successor", "3.0"
    )
    assert no_successor.exit_code == 3
    assert "no release acme/sample:3.0 to be the successor" in no_successor.output
    no_release = gateway("decommission", "acme/sample:9.0", "--at", date, "--reason", "x")
    assert no_release.exit_code == 3
    no_license = gateway(
        "decommission",
        "acme/sample:1.0",
        "--at",
        date,
        "--reason",
        "x",
        "--license",
        str(tmp_path / "missing.txt"),
    )
    assert no_license.exit_code == 2
    assert "no such file" in no_license.output
    no_reason = gateway("decommission", "acme/sample:1.0", "--at", date)
    assert no_reason.exit_code == 2
    bad_ref = gateway("decommission", "acme/sample", "--at", date, "--reason", "x")
    assert bad_ref.exit_code == 2


def test_purge_waits_and_asks(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    assert (
        gateway("decommission", "acme/sample:1.0", "--at", in_days(3), "--reason", "x").exit_code
        == 0
    )
    early = gateway("purge", "acme/sample:1.0", "--yes")
    assert early.exit_code == 4
    assert "still hosted until" in early.output
    never = gateway("purge", "acme/sample:1.1", "--yes")
    assert never.exit_code == 4
    assert "no decommission" in never.output

    async def decommissioned_long_ago() -> None:
        # The CLI runs on the real clock: move the decommission into the past instead.
        rt = build_runtime(settings_env)
        now = rt.clock()
        try:
            async with writing(rt) as session:
                await session.execute(
                    update(Decommission).values(
                        announced_at=now - timedelta(days=200),
                        effective_at=now - timedelta(days=100),
                    )
                )
            assert await execute_due(rt) == 1
        finally:
            await rt.close()

    asyncio.run(decommissioned_long_ago())
    unconfirmed = gateway("purge", "acme/sample:1.0")
    assert unconfirmed.exit_code == 2
    assert "will be deleted for good" in unconfirmed.output
    assert "run it again with --yes" in unconfirmed.output
    # Both releases were published from the same sample folder contents except the
    # random weights: the small files are shared and kept.
    purged = gateway("purge", "acme/sample:1.0", "--yes")
    assert purged.exit_code == 0, purged.output
    assert "acme/sample:1.0: purged; 2 file(s) deleted" in purged.output
    assert "4 kept" in purged.output
    again = gateway("purge", "acme/sample:1.0", "--yes")
    assert again.exit_code == 4
    assert "already purged" in again.output
