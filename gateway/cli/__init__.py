"""The `gateway` command. Commands are thin: parse, call one service function, render.

Each command's module is imported only when that command runs, so `gateway download`
does not pay for loading the server (SQLAlchemy, Litestar) before it starts.
"""

from __future__ import annotations

import importlib

import click

from gateway import __version__

# name -> "module:attribute"
COMMANDS = {
    "accounts": "gateway.cli.accounts:accounts",
    "applications": "gateway.cli.applications:applications",
    "appeals": "gateway.cli.enforce:appeals",
    "config": "gateway.cli.maintenance:config",
    "db": "gateway.cli.maintenance:db",
    "decommission": "gateway.cli.decommission:decommission",
    "download": "gateway.cli.download:download",
    "enforce": "gateway.cli.enforce:enforce_command",
    "evidence": "gateway.cli.stage:evidence",
    "grants": "gateway.cli.grants:grants",
    "incidents": "gateway.cli.incidents:incidents",
    "jobs": "gateway.cli.jobs:jobs",
    "keys": "gateway.cli.keys:keys",
    "models": "gateway.cli.catalog:models",
    "policy": "gateway.cli.maintenance:policy",
    "purge": "gateway.cli.decommission:purge",
    "recall": "gateway.cli.stage:recall_command",
    "reinstate": "gateway.cli.stage:reinstate_command",
    "release": "gateway.cli.catalog:release",
    "serve": "gateway.cli.serve:serve",
    "stage": "gateway.cli.stage:stage",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Release Gateway: staged release of open model weights.

    Settings come from GATEWAY_HOME/gateway.toml and GATEWAY_* environment variables;
    `gateway config show` prints them.
    """
