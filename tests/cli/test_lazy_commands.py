"""`gateway --help` lists every command without importing any of them."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gateway.cli import COMMANDS, main

HEAVY = ("litestar", "sqlalchemy", "boto3", "botocore", "apscheduler", "granian")


def _loaded_after(code: str) -> list[str]:
    """The top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    rows = result.output.split("Commands:", 1)[1].strip().splitlines()
    # Each row starts with a command's name; none is missing, none extra.
    listed = [row.split()[0] for row in rows]
    assert listed == sorted(COMMANDS)
    assert sorted(main.list_commands(click.Context(main))) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listing_says_what_the_command_says(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert COMMANDS[name][1] == command.get_short_help_str(limit=10_000)


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def test_importing_the_command_loads_no_server_parts() -> None:
    assert _heavy(_loaded_after("import gateway.cli")) == []


def test_help_loads_no_server_parts() -> None:
    code = (
        "import sys\nfrom gateway.cli import main\nsys.argv = ['gateway', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _heavy(_loaded_after(code)) == []


def test_the_probe_sees_a_heavy_import() -> None:
    # The probe itself: running a command's module does load the server parts.
    assert "sqlalchemy" in _heavy(_loaded_after("import gateway.cli.serve"))
