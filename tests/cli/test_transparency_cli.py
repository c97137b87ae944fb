"""`gateway transparency`: build, list, show and publish from the command line, with the
messages an operator sees when something is refused."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from gateway.config import Settings
from gateway.transparency.cli import transparency
from tests.backends import on_each_database
from tests.cli.test_audit_cli import accounts

pytestmark = on_each_database()


def gateway_transparency(*args: str) -> Result:
    return CliRunner().invoke(transparency, list(args), catch_exceptions=False)


def test_a_draft_is_built_listed_shown_and_refused_until_its_period_ends(
    settings_env: Settings,
) -> None:
    accounts(settings_env, "a@example.org")
    assert gateway_transparency("list").stdout == (
        "No reports yet: gateway transparency build --period 2026-Q4\n"
    )
    bad = gateway_transparency("build", "--period", "2026-Q5")
    assert bad.exit_code != 0
    assert "'2026-Q5' is not a period: a year (2026), a quarter (2026-Q4)" in bad.output

    built = gateway_transparency("build", "--period", "2999")
    assert built.exit_code == 0, built.output
    first = built.stdout.splitlines()
    report_id = first[0].split()[0]
    assert first[0].split()[1:4] == ["2999", "whole", "gateway"]
    assert "draft" in first[0]
    assert (
        first[1] == "The period is not over: this draft counts up to now and cannot be published."
    )
    assert first[2] == f"Review: gateway transparency show {report_id}"
    assert gateway_transparency("list").stdout.startswith("No reports yet")
    assert gateway_transparency("list", "--drafts").stdout.split()[0] == report_id

    shown = json.loads(gateway_transparency("show", report_id).stdout)
    assert shown["signature"] is None
    assert shown["report"]["period"]["name"] == "2999"
    assert shown["report"]["figures"]["applications_received"] == {"count": None, "shown": "< 10"}
    rows = gateway_transparency("show", report_id, "--format", "csv").stdout.splitlines()
    assert rows[0] == "figure,breakdown,count,shown"
    assert "applications_received,,,< 10" in rows

    refused = gateway_transparency("publish", report_id)
    assert refused.exit_code != 0
    assert "this draft was built before 2999 was over" in refused.output
    missing = gateway_transparency("show", "nope")
    assert missing.exit_code != 0
    assert "no transparency report nope" in missing.output
