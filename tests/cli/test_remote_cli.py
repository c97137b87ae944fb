"""`gateway --server URL`: operator commands run through a real gateway's operator API
with the admin key from $GATEWAY_ADMIN_KEY; the server records the key's account as the
actor, and the commands refuse what has no meaning (or no remote form) there."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from gateway.applications import service, submitting
from gateway.cli import main
from gateway.config import Settings
from gateway.db.models import Application, Evidence, Release
from gateway.incidents import reporting
from gateway.runtime import build_runtime
from tests.accounts import create_account
from tests.backends import on_backends
from tests.cli.test_enforce_cli import appeal_by_account
from tests.grantees import MODEL
from tests.http.operators import key_holder
from tests.sample import publish
from tests.served import clean_env, serving
from tests.units import within

ANSWERS = {"organisation": "Lab", "intended_use": "evaluation"}


class Prepared:
    def __init__(self, admin_key: str, admin_id: str, applications: list[str]) -> None:
        self.admin_key = admin_key
        self.admin_id = admin_id
        self.applications = applications


def prepare(settings: Settings, tmp_path: Path) -> Prepared:
    """acme/sample:1.0 opened to trusted partners, two applications for it, and an admin key."""

    async def go() -> Prepared:
        rt = build_runtime(settings)
        try:
            await publish(rt, tmp_path)
            form = await within(
                rt, lambda uow: service.application_form(uow, MODEL, "trusted_partner")
            )
            made = []
            for email in ("first@corp.example", "second@corp.example"):
                account = await create_account(rt, email, operator=False, actor="t")
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
            holder = await key_holder(rt)
            return Prepared(holder.key, holder.account_id, made)
        finally:
            await rt.close()

    return asyncio.run(go())


def read(settings: Settings) -> tuple[dict[str, str], list[Evidence], str]:
    """Application statuses, every evidence row, and the release's stage."""

    async def go() -> tuple[dict[str, str], list[Evidence], str]:
        rt = build_runtime(settings)
        try:
            async with rt.sessionmaker() as session:
                apps = {a.id: a.status for a in await session.scalars(select(Application))}
                rows = list(await session.scalars(select(Evidence).order_by(Evidence.id)))
                release = await session.scalar(select(Release))
                assert release is not None
                return apps, rows, release.stage
        finally:
            await rt.close()

    return asyncio.run(go())


@pytest.fixture
def server(settings_env: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    env = clean_env(
        GATEWAY_HOME=str(settings_env.home),
        GATEWAY_DATABASE_URL=settings_env.database_url,
        GATEWAY_STORAGE_URL=settings_env.storage_url,
        GATEWAY_SCHEDULER="off",
    )
    with serving(env, tmp_path / "serve.log") as base:
        yield base, settings_env


def gateway(*args: str, env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@on_backends("sqlite")
def test_the_review_queue_and_stages_through_the_server(
    server: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = server
    prepared = prepare(settings, tmp_path)
    first, second = prepared.applications
    # The local database is not where the commands act: point it at nothing usable.
    env: dict[str, str | None] = {
        "GATEWAY_OPS_SERVER": base,
        "GATEWAY_ADMIN_KEY": prepared.admin_key,
        "GATEWAY_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    }

    listing = gateway("applications", "list", env=env)
    assert listing.exit_code == 0, listing.output
    assert first in listing.output
    assert second in listing.output
    assert "first@corp.example" in listing.output

    one = gateway("applications", "list", "--limit", "1", env=env)
    two = gateway("applications", "list", "--limit", "1", "--page", "2", env=env)
    assert "Page 1; more follow." in one.output
    assert "Page 2." in two.output
    assert {first in one.output, first in two.output} == {True, False}
    assert {second in one.output, second in two.output} == {True, False}

    shown = gateway("applications", "show", first, env=env)
    assert shown.exit_code == 0, shown.output
    assert "evaluation" in shown.output

    approved = gateway("applications", "approve", first, "--reason", "known lab", env=env)
    assert approved.exit_code == 0, approved.output
    missing = gateway("applications", "deny", "app_missing", "--reason", "x", env=env)
    assert missing.exit_code == 3, missing.output
    assert "app_missing" in missing.output

    status = gateway("stage", "status", "acme/sample:1.0", env=env)
    assert status.exit_code == 0, status.output
    assert "trusted_partner" in status.output

    promoted = gateway(
        "stage", "promote", "acme/sample:1.0", "--to", "trusted_partner", "--override",
        "--reason", "evaluated offline", env=env,
    )  # fmt: skip
    assert promoted.exit_code == 0, promoted.output

    apps, evidence, stage = read(settings)
    assert apps[first] == "approved"
    assert apps[second] == "submitted"
    assert stage == "trusted_partner"
    actor = f"account:{prepared.admin_id}"
    kinds = {row.kind for row in evidence if row.actor == actor}
    assert "stage.promoted" in kinds
    assert any(kind.startswith("application.") for kind in kinds), kinds


@on_backends("sqlite")
def test_what_the_server_refuses_and_what_cannot_run_remotely(
    server: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = server
    prepared = prepare(settings, tmp_path)
    first = prepared.applications[0]
    with_key: dict[str, str | None] = {
        "GATEWAY_OPS_SERVER": base,
        "GATEWAY_ADMIN_KEY": prepared.admin_key,
    }

    no_key = gateway("applications", "list", env={**with_key, "GATEWAY_ADMIN_KEY": None})
    assert no_key.exit_code == 2
    assert "GATEWAY_ADMIN_KEY" in no_key.output

    wrong_key = gateway("applications", "list", env={**with_key, "GATEWAY_ADMIN_KEY": "gw_nope"})
    assert wrong_key.exit_code == 6, wrong_key.output

    acting_as = gateway(
        "stage", "promote", "acme/sample:1.0", "--to", "trusted_partner", "--override",
        "--reason", "r", "--as", "ops@lab.example", env=with_key,
    )  # fmt: skip
    assert acting_as.exit_code == 2
    assert "--as has no effect with --server" in acting_as.output

    licence = tmp_path / "LICENSE"
    licence.write_text("terms")
    local_only = gateway(
        "release", "publish", "acme/other", "1.0", str(tmp_path), "--license", str(licence),
        env=with_key,
    )  # fmt: skip
    assert local_only.exit_code == 2
    assert "--server" in local_only.output

    bad_url = gateway("--server", "ftp://x", "applications", "list", env=with_key)
    assert bad_url.exit_code == 2
    assert "http(s) URL" in bad_url.output

    unreachable = gateway(
        "applications", "list", env={**with_key, "GATEWAY_OPS_SERVER": "http://127.0.0.1:1"}
    )
    assert unreachable.exit_code == 5
    assert "cannot reach" in unreachable.output

    apps, evidence, _ = read(settings)
    assert apps[first] == "submitted"
    assert not any(row.actor == f"account:{prepared.admin_id}" for row in evidence)


@on_backends("sqlite")
def test_grants_and_keys_through_the_server(server: tuple[str, Settings], tmp_path: Path) -> None:
    base, settings = server
    prepared = prepare(settings, tmp_path)
    env: dict[str, str | None] = {
        "GATEWAY_OPS_SERVER": base,
        "GATEWAY_ADMIN_KEY": prepared.admin_key,
    }
    made = gateway(
        "grants", "create", "--account", "first@corp.example", "--model", "acme/sample",
        "--tier", "trusted_partner", env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    grant_id = made.output.strip()

    listing = gateway("grants", "list", "--account", "first@corp.example", env=env)
    assert listing.exit_code == 0, listing.output
    assert grant_id in listing.output
    assert "active" in listing.output
    assert "No grants." in gateway("grants", "list", "--account", "x@corp.example", env=env).output

    suspended = gateway("grants", "suspend", grant_id, "--reason", "a check", env=env)
    assert suspended.exit_code == 0, suspended.output
    assert f"Grant {grant_id} is now suspended." in suspended.output
    again = gateway("grants", "suspend", grant_id, "--reason", "twice", env=env)
    assert again.exit_code == 4, again.output
    missing = gateway("grants", "revoke", "no-such-grant", "--reason", "x", env=env)
    assert missing.exit_code == 3, missing.output
    unknown = gateway(
        "grants", "create", "--account", "nobody@corp.example", "--model", "acme/sample",
        "--tier", "trusted_partner", env=env,
    )  # fmt: skip
    assert unknown.exit_code == 3, unknown.output

    _, evidence, _ = read(settings)
    mine = [row.kind for row in evidence if row.actor == f"account:{prepared.admin_id}"]
    assert any(kind.startswith("grant.") for kind in mine), mine

    keys = gateway("keys", "list", "--account", "ops@lab.example", env=env)
    assert keys.exit_code == 0, keys.output
    assert "admin" in keys.output
    assert "active" in keys.output
    key_id = next(line.split()[1] for line in keys.output.splitlines() if "admin" in line)
    no_one = gateway("keys", "list", "--account", "nobody@corp.example", env=env)
    assert no_one.exit_code == 3, no_one.output
    # Revoking the very key the commands use: the next command is refused.
    revoked = gateway("keys", "revoke", "--account", "ops@lab.example", key_id, env=env)
    assert revoked.exit_code == 0, revoked.output
    assert f"({key_id})" in revoked.output
    assert gateway("keys", "list", "--account", "ops@lab.example", env=env).exit_code == 6


@on_backends("sqlite")
def test_enforcement_and_appeals_through_the_server(
    server: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = server
    prepared = prepare(settings, tmp_path)
    env: dict[str, str | None] = {
        "GATEWAY_OPS_SERVER": base,
        "GATEWAY_ADMIN_KEY": prepared.admin_key,
    }
    who = "first@corp.example"
    shown = gateway("enforce", who, "show", env=env)
    assert shown.exit_code == 0, shown.output
    assert "No enforcement actions." in shown.output
    assert "Policy suggests: warn" in shown.output

    suspended = gateway("enforce", who, "suspend", "--reason", "scraping", env=env)
    assert suspended.exit_code == 0, suspended.output
    assert "Note: you chose suspend, not the suggested warn." in suspended.output
    match = re.search(r"\(action ([^)]+)\)", suspended.output)
    assert match, suspended.output
    assert f"{who} is suspended until" in suspended.output
    assert (
        gateway("enforce", "nobody@corp.example", "warn", "--reason", "x", env=env).exit_code == 3
    )
    assert gateway("enforce", who, "warn", env=env).exit_code == 2  # no reason

    appeal_id = appeal_by_account(settings, who, match.group(1), "it was our mirror")
    listed = gateway("appeals", "list", env=env)
    assert listed.exit_code == 0, listed.output
    assert appeal_id in listed.output
    assert "it was our mirror" in listed.output
    overturned = gateway("appeals", "overturn", appeal_id, "--reason", "our mirror", env=env)
    assert overturned.exit_code == 0, overturned.output
    assert f"Appeal {appeal_id} decided: the action is overturned." in overturned.output
    again = gateway("appeals", "uphold", appeal_id, "--reason", "no", env=env)
    assert again.exit_code == 4, again.output
    assert "No pending appeals." in gateway("appeals", "list", env=env).output
    everything = gateway("appeals", "list", "--status", "all", env=env)
    assert "overturned by account:" in everything.output

    after = gateway("enforce", who, "show", env=env)
    assert "status:    active" in after.output
    _, evidence, _ = read(settings)
    mine = {row.kind for row in evidence if row.actor == f"account:{prepared.admin_id}"}
    assert {"account.suspended", "appeal.overturned", "account.suspension_lifted"} <= mine


def report_incident(settings: Settings) -> str:
    """A report about no model in particular, as the public report page files it."""

    async def go() -> str:
        rt = build_runtime(settings)
        try:
            incident = await within(
                rt,
                lambda uow: reporting.report(
                    uow,
                    model=None,
                    version=None,
                    category="leak",
                    description="weights on a file host",
                    links=["https://files.example/a.tar"],
                    contact=None,
                    reporter_account_id=None,
                    address="192.0.2.1",
                ),
            )
            return incident.tracking_code
        finally:
            await rt.close()

    return asyncio.run(go())


@on_backends("sqlite")
def test_incidents_through_the_server(server: tuple[str, Settings], tmp_path: Path) -> None:
    base, settings = server
    prepared = prepare(settings, tmp_path)
    code = report_incident(settings)
    env: dict[str, str | None] = {
        "GATEWAY_OPS_SERVER": base,
        "GATEWAY_ADMIN_KEY": prepared.admin_key,
    }
    listing = gateway("incidents", "list", env=env)
    assert listing.exit_code == 0, listing.output
    assert code in listing.output
    assert "Page 1." in listing.output
    assert "No incidents" in gateway("incidents", "list", "--severity", "high", env=env).output

    triaged = gateway("incidents", "triage", code, "--severity", "low", env=env)
    assert triaged.exit_code == 0, triaged.output
    assert f"{code} is triaged at low severity." in triaged.output
    noted = gateway("incidents", "note", code, "asked the host to take it down", env=env)
    assert f"Note added to {code}." in noted.output
    linked = gateway("incidents", "link", code, "first@corp.example", env=env)
    assert linked.exit_code == 0, linked.output
    confirmed = gateway("incidents", "confirm", code, env=env)
    assert confirmed.exit_code == 0, confirmed.output
    assert f"{code} is confirmed at low severity." in confirmed.output
    early = gateway("incidents", "triage", code, "--severity", "low", env=env)
    assert early.exit_code == 4, early.output
    acting_as = gateway("incidents", "note", code, "x", "--as", "ops@lab.example", env=env)
    assert acting_as.exit_code == 2, acting_as.output
    resolved = gateway("incidents", "resolve", code, "--note", "taken down", env=env)
    assert f"{code} is resolved." in resolved.output

    shown = gateway("incidents", "show", code, env=env)
    assert shown.exit_code == 0, shown.output
    assert "status:    resolved" in shown.output
    assert "weights on a file host" in shown.output
    assert "linked account: first@corp.example" in shown.output
    assert "asked the host to take it down" in shown.output
    assert gateway("incidents", "show", "INC-NONE-NONE", env=env).exit_code == 3
    _, evidence, _ = read(settings)
    mine = {row.kind for row in evidence if row.actor == f"account:{prepared.admin_id}"}
    assert any(kind.startswith("incident.") for kind in mine), mine
