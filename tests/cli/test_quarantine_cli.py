"""`gateway quarantine put|lift`: an operator holds a release and lifts the hold; the
refusals say why, with nothing written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Settings
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.cli.test_incidents_cli import within
from tests.grantees import open_release


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_an_operator_quarantines_and_lifts_from_the_cli(
    settings_env: Settings, tmp_path: Path
) -> None:
    async def go(rt: Runtime) -> None:
        await open_release(rt, tmp_path)
        await create_account(rt, "ops@lab.example", operator=True, actor="t")

    within(settings_env, go)
    ref = "acme/sample:1.0"
    empty = gateway("quarantine", "put", ref, "--reason", " ", "--as", "ops@lab.example")
    assert empty.exit_code != 0
    assert "reason" in empty.output
    held = gateway("quarantine", "put", ref, "--reason", "under review", "--as", "ops@lab.example")
    assert held.exit_code == 0, held.output
    assert f"{ref} is quarantined: under review" in held.output
    again = gateway("quarantine", "put", ref, "--reason", "twice", "--as", "ops@lab.example")
    assert again.exit_code != 0
    assert "already quarantined" in again.output
    assert "QUARANTINED since" in gateway("stage", "status", ref).output
    lifted = gateway("quarantine", "lift", ref, "--reason", "fine", "--as", "ops@lab.example")
    assert lifted.exit_code == 0, lifted.output
    assert f"{ref} is no longer quarantined." in lifted.output
    not_held = gateway("quarantine", "lift", ref, "--reason", "x", "--as", "ops@lab.example")
    assert not_held.exit_code != 0
    assert "is not quarantined" in not_held.output
