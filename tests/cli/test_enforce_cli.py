"""`gateway enforce` and `gateway appeals`: the suggestion printed before acting, the
actions, appeals decided from the command line, and the exit codes of refusals."""

from __future__ import annotations

import asyncio
import re

from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Settings
from gateway.enforcement import appeals, history
from gateway.runtime import build_runtime
from tests.units import within

BOB = "bob@example.org"
_ACTION = re.compile(r"\(action ([0-9a-f-]{36})\)")


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def appeal_by_account(settings: Settings, email: str, action_id: str, statement: str) -> str:
    """What the account does in the portal: appeal an action (through the same service)."""

    async def go() -> str:
        rt = build_runtime(settings)
        try:
            shown = await within(rt, lambda uow: history.standing(uow, email))
            filed = await within(
                rt, lambda uow: appeals.appeal(uow, shown.account.id, action_id, statement, None)
            )
            return filed.id
        finally:
            await rt.close()

    return asyncio.run(go())


def test_enforce_prints_the_suggestion_and_acts(settings_env: Settings) -> None:
    assert gateway("accounts", "create", BOB).exit_code == 0

    warned = gateway("enforce", BOB, "warn", "--reason", "shared a link")
    assert warned.exit_code == 0, warned.output
    assert "Policy suggests: warn (no standing action: the ladder starts with warn)." in (
        warned.output
    )
    assert "Note:" not in warned.output
    assert f"{BOB} is warned (action " in warned.output

    suspended = gateway("enforce", BOB, "suspend", "--reason", "scraping", "--days", "3")
    assert suspended.exit_code == 0, suspended.output
    assert "Policy suggests: suspend (after a warn comes suspend)." in suspended.output
    assert re.search(rf"{re.escape(BOB)} is suspended until \d{{4}}-\d\d-\d\d", suspended.output)

    shown = gateway("enforce", BOB, "show")
    assert shown.exit_code == 0, shown.output
    assert "suspended (scraping)" in shown.output
    assert "Policy suggests: terminate (after a suspend comes terminate)." in shown.output
    assert "suspension (in force)" in shown.output
    assert "shared a link" in shown.output

    twice = gateway("enforce", BOB, "suspend", "--reason", "again")
    assert twice.exit_code == 4
    assert "it is already suspended" in twice.output

    lifted = gateway("enforce", BOB, "lift", "--reason", "resolved")
    assert lifted.exit_code == 0, lifted.output
    assert f"The suspension of {BOB} is lifted; the account is active." in lifted.output
    not_suspended = gateway("enforce", BOB, "lift", "--reason", "again")
    assert not_suspended.exit_code == 4
    assert "only a suspension can be lifted" in not_suspended.output


def test_a_step_other_than_the_suggestion_is_noted(settings_env: Settings) -> None:
    assert gateway("accounts", "create", BOB).exit_code == 0
    ended = gateway("enforce", BOB, "terminate", "--reason", "leaked the weights")
    assert ended.exit_code == 0, ended.output
    assert "Note: you chose terminate, not the suggested warn." in ended.output
    assert f"{BOB} is terminated" in ended.output
    again = gateway("enforce", BOB, "terminate", "--reason", "again")
    assert again.exit_code == 4
    assert "termination is final" in again.output
    assert "Policy suggests: no further step" in again.output


def test_refusals_and_their_exit_codes(settings_env: Settings) -> None:
    assert gateway("accounts", "create", BOB).exit_code == 0
    no_reason = gateway("enforce", BOB, "warn")
    assert no_reason.exit_code == 2
    assert "--reason is required" in no_reason.output
    zero_days = gateway("enforce", BOB, "suspend", "--reason", "x", "--days", "0")
    assert zero_days.exit_code == 2
    days_on_warning = gateway("enforce", BOB, "warn", "--reason", "x", "--days", "3")
    assert days_on_warning.exit_code == 2
    assert "--days applies to a suspension only" in days_on_warning.output
    unknown_step = gateway("enforce", BOB, "ban", "--reason", "x")
    assert unknown_step.exit_code == 2
    nobody = gateway("enforce", "nobody@example.org", "warn", "--reason", "x")
    assert nobody.exit_code == 3
    assert "no account nobody@example.org" in nobody.output
    no_incident = gateway("enforce", BOB, "warn", "--reason", "x", "--incident", "INC-404")
    assert no_incident.exit_code == 3
    assert "no incident INC-404" in no_incident.output
    assert "No enforcement actions." in gateway("enforce", BOB, "show").output


def test_appeals_are_listed_and_decided(settings_env: Settings) -> None:
    assert gateway("accounts", "create", BOB).exit_code == 0
    assert gateway("appeals", "list").output.strip() == "No pending appeals."
    suspended = gateway("enforce", BOB, "suspend", "--reason", "scraping")
    match = _ACTION.search(suspended.output)
    assert match, suspended.output
    appeal_id = appeal_by_account(settings_env, BOB, match.group(1), "it was our mirror")

    listed = gateway("appeals", "list")
    assert listed.exit_code == 0, listed.output
    assert appeal_id in listed.output
    assert "it was our mirror" in listed.output
    assert "suspension" in listed.output

    no_reason = gateway("appeals", "overturn", appeal_id)
    assert no_reason.exit_code == 2
    overturned = gateway("appeals", "overturn", appeal_id, "--reason", "we run that mirror")
    assert overturned.exit_code == 0, overturned.output
    assert f"Appeal {appeal_id} decided: the action is overturned." in overturned.output
    assert "status:    active" in gateway("enforce", BOB, "show").output
    decided_again = gateway("appeals", "uphold", appeal_id, "--reason", "no")
    assert decided_again.exit_code == 4
    assert "the decision is final" in decided_again.output
    missing = gateway("appeals", "uphold", "no-such-appeal", "--reason", "x")
    assert missing.exit_code == 3

    everything = gateway("appeals", "list", "--status", "all")
    assert "overturned by cli:" in everything.output
    assert "we run that mirror" in everything.output
    assert gateway("appeals", "list").output.strip() == "No pending appeals."
