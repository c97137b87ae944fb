"""`gateway config|db|policy`: inspecting settings, migrating, checking policy files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from gateway.cli.support import err, out, reported_errors, settings
from gateway.input_files import read_input_text
from gateway.maintenance.service import apply_migrations, pending_migrations
from policies.loader import PolicyError, load_policy


@click.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
def config_show() -> None:
    """Print the effective settings, with passwords masked."""
    shown = settings().masked()
    width = max(map(len, shown))
    for name, value in shown.items():
        # Plain `name = value` lines: nothing wraps, so values copy and grep cleanly.
        out.print(f"{name:<{width}} = {value}")


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    current = settings()
    with reported_errors():
        pending = apply_migrations(current)
    if not pending:
        out.print("The database is up to date.")
        return
    out.print(f"Applied {len(pending)} migration(s): {', '.join(pending)}")


@db.command("status")
def db_status() -> None:
    """Say whether migrations are pending (exit 1 if they are)."""
    current = settings()
    with reported_errors():
        pending = pending_migrations(current)
    if pending:
        out.print(f"{len(pending)} pending migration(s): {', '.join(pending)}")
        raise SystemExit(1)
    out.print("The database is up to date.")


@click.group()
def policy() -> None:
    """Policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def policy_check(file: Path) -> None:
    """Validate a policy FILE and summarise its tiers."""
    with reported_errors():
        text = read_input_text(file, what="policy")
    try:
        loaded = load_policy(text, str(file))
    except PolicyError as exc:
        err.print(str(exc))
        raise SystemExit(1) from None
    table = Table(title=f"{file}: valid")
    columns = ("tier", "rank", "components", "grant days", "URL TTL", "quota", "API")
    for column in (*columns, "evaluators"):
        table.add_column(column)
    for tier in loaded.ladder:
        api = tier.api
        table.add_row(
            tier.name,
            str(tier.rank),
            "(API only)" if tier.api_only else ", ".join(sorted(tier.components)),
            str(tier.grant_days),
            "—" if tier.api_only else f"{tier.url_ttl_seconds}s",
            "—" if tier.api_only else f"{tier.download_quota} per {tier.quota_period_days}d",
            f"{api.requests_per_minute}/min, {api.credits_per_month} credits/mo" if api else "—",
            "yes" if tier.evaluators else "—",
        )
    out.print(table)
    reporting = loaded.reporting
    if reporting.deadline_days:
        days = ", ".join(f"{s.value} {d} days" for s, d in reporting.deadline_days.items())
        out.print(f"Incidents are reported to {reporting.authority}: {days}.")
    else:
        out.print("No incident has a reporting deadline ([reporting] is absent).")
    quarantine = loaded.quarantine
    if quarantine.trusted_reporters:
        out.print(
            f"{quarantine.reports} of {len(quarantine.trusted_reporters)} trusted reporter "
            "entries quarantine a release."
        )
    else:
        out.print("No trusted reporters: only an operator quarantines ([quarantine] is absent).")
