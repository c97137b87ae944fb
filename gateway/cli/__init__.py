"""The `gateway` command. Commands are thin: parse, call one service function, render.

Each command's module is imported only when that command runs, so `gateway download`
does not pay for loading the server (SQLAlchemy, Litestar) before it starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from gateway import __version__
from gateway.cli.server_choice import server_option

# name -> ("module:attribute", the one line `gateway --help` shows for it). The line is
# kept here so that listing the commands imports none of them; a test holds it to the
# command's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "accounts": ("gateway.identity.cli:accounts", "Accounts and operators."),
    "appeals": (
        "gateway.enforcement.cli:appeals",
        "Appeals against enforcement actions, and the operators' decisions.",
    ),
    "applications": (
        "gateway.applications.cli:applications",
        "Access applications: the review queue and the operators' decisions.",
    ),
    "audit": (
        "gateway.evidence_log.cli:audit",
        "The evidence log: export it, verify it, see its signed checkpoint.",
    ),
    "config": ("gateway.maintenance.cli:config", "Inspect the effective configuration."),
    "db": ("gateway.maintenance.cli:db", "Database migrations."),
    "decommission": (
        "gateway.decommission.cli:decommission",
        "Announce the end of a release's hosting to every grantee of its model.",
    ),
    "evaluate": (
        "gateway.cli.evaluate:evaluate",
        "Send an evaluation result as an external evaluator; it counts for the gates.",
    ),
    "download": (
        "gateway.cli.download:download",
        "Download a release you have a grant for, resuming and verifying it.",
    ),
    "enforce": (
        "gateway.enforcement.cli:enforce_command",
        "Warn, suspend or terminate an account, or lift its suspension; `show` prints its "
        "standing and the policy's suggested next step without acting.",
    ),
    "evidence": (
        "gateway.staging.cli:evidence",
        "Evidence attached to releases for promotion gates.",
    ),
    "export": (
        "gateway.exports.cli:export",
        "Export applications, grants or enforcement actions as CSV or JSON Lines.",
    ),
    "grants": (
        "gateway.grants.cli:grants",
        "Access grants: who may download which model at which tier.",
    ),
    "incidents": (
        "gateway.incidents.cli:incidents",
        "Incidents: reports of misuse, safety or security problems, leaks.",
    ),
    "jobs": (
        "gateway.jobs.cli:jobs",
        "Scheduled jobs: grant expiry, warnings, close-outs, mail and webhooks.",
    ),
    "keys": ("gateway.keys.cli:keys", "API keys, and the key that signs download URLs."),
    "models": ("gateway.catalog.cli:models", "Models in the catalog."),
    "policy": ("gateway.maintenance.cli:policy", "Policy files."),
    "services": (
        "gateway.api_access.cli:services_group",
        "Service accounts: inference services that verify keys and report API use.",
    ),
    "purge": (
        "gateway.decommission.cli:purge",
        "Delete the stored files of a decommissioned release, after its retention period.",
    ),
    "recall": (
        "gateway.staging.cli:recall_command",
        "Stop every download in scope at once, including URLs already handed out.",
    ),
    "reinstate": (
        "gateway.staging.cli:reinstate_command",
        "Approve lifting a recall; lifts it once enough operators agree (policy).",
    ),
    "quarantine": (
        "gateway.staging.cli:quarantine_group",
        "Quarantine: hold a release (no new links, no API use) until an operator decides.",
    ),
    "release": ("gateway.catalog.cli:release", "Releases: list, show and publish."),
    "unyank": (
        "gateway.staging.cli:unyank_command",
        "Take a yank back: the release is again what it was before.",
    ),
    "yank": (
        "gateway.staging.cli:yank_command",
        "Yank a release: no longer latest, still downloadable by its exact version.",
    ),
    "transparency": (
        "gateway.transparency.cli:transparency",
        "Transparency reports: applications, grants, downloads, incidents, enforcement.",
    ),
    "usage": (
        "gateway.usage.cli:usage",
        "How a release is used: downloads, grantees, bytes and refusals, by day, tier...",
    ),
    "serve": ("gateway.cli.serve:serve", "Serve the portal, the JSON API and downloads."),
    "stage": (
        "gateway.staging.cli:stage",
        "Stage of a release: status, promote, approve, roll back.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is run or asked for
    its own help; its listing comes from `lazy_commands` alone."""

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return None
        module, attribute = target[0].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target[0]} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click lays the listing out, from the kept lines instead of the commands.
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, click.Command(name, help=self.lazy_commands[name][1]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="gateway")
@server_option
def main() -> None:
    """Release Gateway: staged release of open model weights.

    Settings come from GATEWAY_HOME/gateway.toml and GATEWAY_* environment variables;
    `gateway config show` prints them. With --server URL, operator commands (stage,
    recall, reinstate, evidence, applications, grants, incidents...) act through that
    gateway's operator API with the admin key in $GATEWAY_ADMIN_KEY.
    """
