"""`gateway applications`: the review queue and decisions from the command line."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from gateway.applications import service, submitting
from gateway.applications.cli import applications
from gateway.cli import main
from gateway.config import Settings
from gateway.db.models import Application, Notification
from gateway.runtime import build_runtime, utcnow
from stages.names import parse_model_ref
from tests.accounts import create_account
from tests.sample import make_folder, make_license
from tests.units import within

MODEL = parse_model_ref("acme/sample")
ANSWERS = {"organisation": "Lab", "intended_use": "evaluation"}


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ops(*args: str) -> Result:
    # The group itself, exactly as `gateway applications` runs it.
    return CliRunner().invoke(applications, list(args), catch_exceptions=False)


def setup(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    published = gateway(
        "release",
        "publish",
        "acme/sample",
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
    )
    assert published.exit_code == 0, published.output


def apply(settings: Settings, who: Sequence[tuple[str, datetime]]) -> list[str]:
    """Trusted-partner applications (reviewed by hand) by new accounts, submitted when given."""

    async def go() -> list[str]:
        rt = build_runtime(settings)
        try:
            form = await within(
                rt, lambda uow: service.application_form(uow, MODEL, "trusted_partner")
            )
            made = []
            for email, at in who:
                account = await create_account(rt, email, operator=False, actor="t")
                rt.clock = lambda at=at: at
                application = await within(
                    rt,
                    lambda uow, account_id=account.id: submitting.submit(
                        uow,
                        account_id=account_id,
                        model=MODEL,
                        tier="trusted_partner",
                        answers=ANSWERS,
                        license_sha256=form.license_sha256,
                        address="198.51.100.4",
                    ),
                )
                made.append(application.id)
            return made
        finally:
            await rt.close()

    return asyncio.run(go())


def statuses(settings: Settings, ids: Sequence[str]) -> list[str]:
    async def go() -> list[str]:
        rt = build_runtime(settings)
        try:
            async with rt.sessionmaker() as session:
                rows = {a.id: a.status for a in await session.scalars(select(Application))}
            return [rows[i] for i in ids]
        finally:
            await rt.close()

    return asyncio.run(go())


def test_listing_the_queue(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    now = utcnow()
    late, recent = apply(
        settings_env,
        [
            ("late@corp.example", now - timedelta(days=12)),
            ("new@corp.example", now - timedelta(days=1)),
        ],
    )
    listing = ops("list")
    assert listing.exit_code == 0, listing.output
    assert listing.output.index(late) < listing.output.index(recent)
    assert "late@corp.example" in listing.output
    assert "trusted_partner" in listing.output
    assert "12d" in listing.output
    assert listing.output.count("OVERDUE") == 1
    assert "2 applications, page 1 of 1." in listing.output
    overdue = ops("list", "--overdue")
    assert late in overdue.output
    assert recent not in overdue.output
    paged = ops("list", "--limit", "1", "--page", "2")
    assert recent in paged.output
    assert late not in paged.output
    assert "2 applications, page 2 of 2." in paged.output
    assert "No applications." in ops("list", "--status", "denied").output
    assert "No applications." in ops("list", "--tier", "public").output
    assert late in ops("list", "--model", "acme/sample", "--tier", "trusted_partner").output

    bad_tier = ops("list", "--tier", "vip")
    assert bad_tier.exit_code == 2
    assert "unknown tier 'vip'" in bad_tier.output
    bad_model = ops("list", "--model", "nope")
    assert bad_model.exit_code == 2
    assert "invalid model name" in bad_model.output
    assert ops("list", "--status", "lost").exit_code == 2


def test_show_and_decide(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    now = utcnow()
    first, second, third, fourth = apply(
        settings_env,
        [(f"p{n}@corp.example", now - timedelta(hours=4 - n)) for n in range(4)],
    )
    shown = ops("show", first)
    assert shown.exit_code == 0, shown.output
    assert "p0@corp.example (not verified)" in shown.output
    assert "Organisation: Lab" in shown.output
    assert "Your role: (not answered)" in shown.output
    assert "198.51.100.4" in shown.output
    assert re.search(r"license sha256:\s+[0-9a-f]{64}", shown.output)
    assert "submit by account:" in shown.output
    missing = ops("show", "no-such-application")
    assert missing.exit_code == 3
    assert "no application no-such-application" in missing.output

    approved = ops("approve", first, "--reason", "welcome")
    assert approved.exit_code == 0, approved.output
    assert f"Application {first} is now approved." in approved.output
    assert "decided:" in ops("show", first).output
    again = ops("approve", first)
    assert again.exit_code == 4
    assert "cannot approve an application that is approved" in again.output

    no_reason = ops("deny", second)
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.output
    blank = ops("deny", second, "--reason", "  ")
    assert blank.exit_code == 4
    assert "a reason is required to deny" in blank.output

    changes = ops("request-changes", second, "--reason", "name your organisation")
    assert changes.exit_code == 0, changes.output
    assert "is now changes_requested" in changes.output

    many = ops("deny", third, fourth, first, "--reason", "programme is full")
    assert many.exit_code == 1
    assert f"{third}: done" in many.output
    assert f"{fourth}: done" in many.output
    assert f"{first}: refused: cannot deny an application that is approved" in many.output
    assert "1 of 3 applications were not decided" in many.output
    assert statuses(settings_env, [first, second, third, fourth]) == [
        "approved",
        "changes_requested",
        "denied",
        "denied",
    ]
    queue = ops("list")
    assert "No applications." in queue.output
    denied = ops("list", "--status", "denied")
    assert third in denied.output
    assert fourth in denied.output

    async def reason_sent() -> str | None:
        rt = build_runtime(settings_env)
        try:
            async with rt.sessionmaker() as session:
                return await session.scalar(
                    select(Notification.body).order_by(Notification.id.desc()).limit(1)
                )
        finally:
            await rt.close()

    assert "Reason: programme is full" in (asyncio.run(reason_sent()) or "")
