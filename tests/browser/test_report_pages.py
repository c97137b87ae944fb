"""A release's usage chart and a published transparency report, in a real browser.

A release is published and opened to researchers with the CLI; a month of its use
(November 2026: applications, grants, downloads on most days, incidents) is written to
the evidence log as the gateway writes it, sealed, rolled up, and the month's report is
built and published. Then `gateway serve` runs, and Chromium reads /transparency, the
report and the operator's usage page with its charts. The pages are saved as PNGs (and,
when GATEWAY_SCREENSHOTS names a folder, there: the README's pictures come from it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api
from sqlalchemy import select

from gateway import evidence
from gateway.config import load_settings
from gateway.db.models import Artifact, Release
from gateway.db.uow import unit_of_work
from gateway.evidence_log import service as log
from gateway.runtime import Runtime, build_runtime
from gateway.transparency import service as transparency
from gateway.usage.service import roll_up
from stages import evidence as ev
from tests.browser.test_walk import Camera, gateway, visit
from tests.http.test_ops_pages import PASSWORD, make_account
from tests.sample import make_folder, make_license
from tests.served import clean_env, serving
from tests.units import writing

pytestmark = pytest.mark.slow

MODEL = "acme/llm"
OPERATOR = "ops@lab.example"
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
GRANTEES = 24


async def a_month_of_use(rt: Runtime) -> None:
    """November 2026 as the log would hold it, then sealed, rolled up and reported."""
    rt.key_encryptor.create_if_missing()
    await make_account(rt, OPERATOR, operator=True)
    accounts = [await make_account(rt, f"r{n}@uni{n % 6}.example") for n in range(GRANTEES)]
    async with writing(rt) as session:
        release = await session.scalar(select(Release).where(Release.version == "1.0"))
        assert release is not None
        artifacts = (
            await session.scalars(select(Artifact).where(Artifact.release_id == release.id))
        ).all()

        def add(payload: Any, at: datetime, account: str | None = None) -> None:
            evidence.record(
                session,
                payload,
                actor=ev.Actor.account(account or "operator"),
                at=at,
                model_id=release.model_id,
                release_id=release.id if isinstance(payload, ev.DownloadRequested) else None,
                account_id=account,
            )

        for n, account in enumerate(accounts):
            applied = NOVEMBER + timedelta(days=n % 20, hours=n)
            add(ev.ApplicationSubmitted(f"app{n}", "researcher", None), applied, account)
            moved = ("researcher", "in_review")
            if n % 8 == 7:
                reason = "The use is not research."
                add(ev.ApplicationDenied(f"app{n}", *moved, "denied", reason, None), applied)
                continue
            decided = applied + timedelta(hours=20 + n)
            add(ev.ApplicationApproved(f"app{n}", *moved, "approved", None, f"g{n}"), decided)
            add(ev.GrantIssued(f"g{n}", "researcher", decided + timedelta(180), f"app{n}"), decided)
            for day in range(n % 20, 30, 3):
                for artifact in artifacts:
                    add(
                        ev.DownloadRequested(
                            f"g{n}",
                            artifact.id,
                            artifact.path,
                            "researcher",
                            f"d{n}-{day}",
                            "key",
                            "GET",
                            None,
                            "allowed",
                            True,
                            None,
                            None,
                        ),
                        NOVEMBER + timedelta(days=day, hours=n % 12),
                        account,
                    )
        for n, category in enumerate(("misuse", "safety", "leak")):
            at = NOVEMBER + timedelta(days=5 + 7 * n)
            add(ev.IncidentReported(f"inc{n}", category, 1), at)
    async with unit_of_work(rt) as uow:
        await log.seal(uow)
    async with unit_of_work(rt) as uow:
        await roll_up(uow)
    async with unit_of_work(rt) as uow:
        draft = await transparency.build(uow, "2026-11", None, actor=ev.Actor.account("op"))
    async with unit_of_work(rt) as uow:
        await transparency.publish(uow, draft.id, actor=ev.Actor.account("op"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("reports")
    home = root / ".gateway"
    home.mkdir()
    env = clean_env(GATEWAY_HOME=str(home))
    folder = make_folder(root / "llm-1.0")
    gateway(
        env, "release", "publish", MODEL, "1.0", str(folder), "--license", str(make_license(root))
    )
    for tier in ("trusted_partner", "researcher"):
        reason = "browser test: no time in stage to wait for"
        gateway(
            env, "stage", "promote", f"{MODEL}:1.0", "--to", tier, "--override", "--reason", reason
        )

    async def seed() -> None:
        rt = build_runtime(load_settings(env))
        try:
            await a_month_of_use(rt)
        finally:
            await rt.close()

    # Playwright's sync API runs a loop in this thread: the seeding runs in another.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, seed()).result()
    with serving(env, root / "serve.log") as base:
        yield base


@pytest.fixture
def camera(tmp_path: Path) -> Camera:
    folders = [tmp_path / "screenshots"]
    if os.environ.get("GATEWAY_SCREENSHOTS"):
        folders.append(Path(os.environ["GATEWAY_SCREENSHOTS"]))
    return Camera(folders)


def test_the_usage_chart_and_the_transparency_report_read_in_a_browser(
    browser: Any, served: str, camera: Camera
) -> None:
    expect = playwright_api.expect
    context = browser.new_context(base_url=served, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    visit(page, "/transparency")
    expect(page.get_by_role("link", name="2026-11")).to_be_visible()
    page.get_by_role("link", name="2026-11").click()
    expect(
        page.get_by_role("heading", name="Transparency report 2026-11: every model")
    ).to_be_visible()
    # 24 applications, 3 denied (< 10, so approvals are suppressed with them).
    expect(page.get_by_text("Applications received: 24")).to_be_visible()
    expect(page.get_by_text("Decisions: 24")).to_be_visible()
    expect(page.get_by_text("Downloads started: 960")).to_be_visible()
    expect(page.get_by_text("Grants active at the period's end: 21")).to_be_visible()
    expect(page.get_by_text("Incidents reported: < 10")).to_be_visible()
    camera.shot(page, "transparency-report")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1100

    # The operator's usage page of the release over November.
    visit(page, "/sign-in?next=/ops")
    page.get_by_label("Email").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ops")
    visit(page, f"/ops/releases/{MODEL}/1.0/usage?from=2026-11-01&to=2026-11-30")
    expect(page.get_by_role("heading", name=f"Usage of {MODEL}:1.0")).to_be_visible()
    charts = page.locator("svg")
    assert charts.count() >= 4
    camera.shot(page, "usage-chart")
    context.close()
