"""`gateway incidents`: listing, showing and triaging incidents from the command line, and
what the policy's triggers did on confirmation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from click.testing import CliRunner, Result
from sqlalchemy import select

from gateway.config import Settings
from gateway.db.models import Incident, IncidentEvent, Release
from gateway.db.uow import run_unit
from gateway.incidents import reporting
from gateway.incidents.cli import incidents
from gateway.runtime import Runtime, build_runtime
from tests.accounts import create_account
from tests.grantees import MODEL, open_release

T = TypeVar("T")
DESCRIPTION = "The full weights of acme/sample 1.0 are posted on a public file host."


def ops(*args: str) -> Result:
    # The group itself, exactly as `gateway incidents` runs it.
    return CliRunner().invoke(incidents, list(args), catch_exceptions=False)


def within(settings: Settings, call: Callable[[Runtime], Awaitable[T]]) -> T:
    async def go() -> T:
        rt = build_runtime(settings)
        try:
            return await call(rt)
        finally:
            await rt.close()

    return asyncio.run(go())


def setup(settings: Settings, tmp_path: Path) -> tuple[str, str]:
    """A public release, an operator, a suspect, and an incident about the release and one
    about no model; returns their tracking codes."""

    async def go(rt: Runtime) -> tuple[str, str]:
        await open_release(rt, tmp_path, to="public")
        await create_account(rt, "ops@lab.example", operator=True, actor="t")
        await create_account(rt, "suspect@corp.example", operator=False, actor="t")
        codes = []
        for model, version in ((MODEL, "1.0"), (None, None)):
            incident = await run_unit(
                rt,
                lambda uow, model=model, version=version: reporting.report(
                    uow,
                    model=model,
                    version=version,
                    category="leak",
                    description=DESCRIPTION,
                    links=["https://files.example/a.tar"],
                    contact=None,
                    reporter_account_id=None,
                    address="192.0.2.1",
                ),
            )
            codes.append(incident.tracking_code)
        return codes[0], codes[1]

    return within(settings, go)


def release_status(settings: Settings) -> str | None:
    async def go(rt: Runtime) -> str | None:
        async with rt.sessionmaker() as session:
            return await session.scalar(select(Release.status))

    return within(settings, go)


def test_an_incident_is_triaged_linked_confirmed_and_resolved_from_the_cli(
    settings_env: Settings, tmp_path: Path
) -> None:
    code, other = setup(settings_env, tmp_path)

    listing = ops("list")
    assert listing.exit_code == 0, listing.output
    assert code in listing.output
    assert other in listing.output
    assert "acme/sample:1.0" in listing.output
    assert "2 incident(s) in all" in listing.output

    triaged = ops(
        "triage",
        code.lower(),
        "--severity",
        "high",
        "--assignee",
        "ops@lab.example",
        "--note",
        "looks real",
        "--as",
        "ops@lab.example",
    )
    assert triaged.exit_code == 0, triaged.output
    assert f"{code} is triaged at high severity." in triaged.output
    assert code in ops("list", "--severity", "high").output
    assert other not in ops("list", "--severity", "high").output

    linked = ops("link", code, "suspect@corp.example")
    assert linked.exit_code == 0, linked.output
    assert f"suspect@corp.example is linked to {code}." in linked.output

    confirmed = ops("confirm", code, "--severity", "critical")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"{code} is confirmed at critical severity." in confirmed.output
    assert (
        "trigger fired: triggers[0]: an incident confirmed at critical severity or worse "
        "recalls the release: recalled acme/sample:1.0"
    ) in confirmed.output
    assert release_status(settings_env) == "recalled"

    quiet = ops("confirm", other, "--severity", "low")
    assert quiet.exit_code == 0, quiet.output
    assert "no trigger fired" in quiet.output

    needs_note = ops("resolve", code)
    assert needs_note.exit_code == 2
    resolved = ops("resolve", code, "--note", "The host took the files down.")
    assert resolved.exit_code == 0, resolved.output
    assert f"{code} is resolved." in resolved.output

    shown = ops("show", code)
    assert shown.exit_code == 0, shown.output
    for line in (
        "status:    resolved",
        "severity:  critical",
        "assignee:  ops@lab.example",
        "about:     acme/sample:1.0",
        DESCRIPTION,
        "link: https://files.example/a.tar",
        "linked account: suspect@corp.example (active)",
        "triage by account:",
        "reported → triaged: looks real",
        "trigger by system:trigger",
        "resolve by cli:",
    ):
        assert line in shown.output, line
    assert "next:" not in shown.output
    assert code not in ops("list").output  # resolved: no longer open
    assert code in ops("list", "--status", "resolved").output


def test_the_cli_refuses_with_the_reason_and_its_exit_code(
    settings_env: Settings, tmp_path: Path
) -> None:
    code, other = setup(settings_env, tmp_path)

    no_severity = ops("confirm", code)
    assert no_severity.exit_code == 2
    assert "needs a severity" in no_severity.output
    too_soon = ops("resolve", code, "--note", "done")
    assert too_soon.exit_code == 4
    assert "only a confirmed incident is resolved" in too_soon.output
    unknown = ops("dismiss", "INC-0000-0000", "--reason", "spam")
    assert unknown.exit_code == 3
    assert "no incident INC-0000-0000" in unknown.output
    blank = ops("dismiss", code, "--reason", "  ")
    assert blank.exit_code == 2
    assert "a reason is required" in blank.output
    dire = ops("triage", code, "--severity", "dire")
    assert dire.exit_code == 2
    not_operator = ops("triage", code, "--severity", "low", "--as", "suspect@corp.example")
    assert not_operator.exit_code == 2
    assert "is not an operator" in not_operator.output
    missing = ops("show", "nothing-like-this")
    assert missing.exit_code == 3

    dismissed = ops("dismiss", other, "--reason", "The files are not ours.")
    assert dismissed.exit_code == 0, dismissed.output
    again = ops("dismiss", other, "--reason", "still not ours")
    assert again.exit_code == 4
    assert "it is closed" in again.output
    noted = ops("note", other, "checked again a week later")
    assert noted.exit_code == 0, noted.output

    async def untouched(rt: Runtime) -> tuple[str | None, int]:
        async with rt.sessionmaker() as session:
            incident = await session.scalar(select(Incident).where(Incident.tracking_code == code))
            assert incident is not None
            events = (
                await session.scalars(
                    select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
                )
            ).all()
        return incident.status, len(events)

    assert within(settings_env, untouched) == ("reported", 1)


def test_a_report_to_the_authority_is_recorded_from_the_cli(
    settings_env: Settings, tmp_path: Path
) -> None:
    code, other = setup(settings_env, tmp_path)
    assert ops("triage", code, "--severity", "critical", "--as", "ops@lab.example").exit_code == 0
    listing = ops("list").output
    assert "report by" in listing
    shown = ops("show", code).output
    assert "report to: the market surveillance authority, by " in shown
    done = ops("report-authority", code, "--reference", "MSA-7", "--as", "ops@lab.example")
    assert done.exit_code == 0, done.output
    assert f"Recorded the report of {code} to the market surveillance authority: reported " in (
        done.output
    )
    assert "(late)" not in done.output
    shown = ops("show", code).output
    assert "authority_report" in shown
    assert "reported to the market surveillance authority, reference MSA-7" in shown
    # An incident without a severity has no deadline, and a report is still recorded.
    plain = ops("report-authority", other, "--authority", "CERT-EU", "--as", "ops@lab.example")
    assert plain.exit_code == 0, plain.output
    assert f"Recorded the report of {other}." in plain.output
    unknown = ops("report-authority", "INC-0000-0000", "--as", "ops@lab.example")
    assert unknown.exit_code != 0
    assert "no incident INC-0000-0000" in unknown.output
