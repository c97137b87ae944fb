"""The `gateway` command. Commands are thin: parse, call one service function, render."""

from __future__ import annotations

import click

from gateway import __version__
from gateway.cli.accounts import accounts
from gateway.cli.applications import applications
from gateway.cli.catalog import models, release
from gateway.cli.decommission import decommission, purge
from gateway.cli.download import download
from gateway.cli.enforce import appeals, enforce_command
from gateway.cli.grants import grants
from gateway.cli.jobs import jobs
from gateway.cli.keys import keys
from gateway.cli.maintenance import config, db, policy
from gateway.cli.serve import serve
from gateway.cli.stage import evidence, recall_command, reinstate_command, stage


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Release Gateway: staged release of open model weights.

    Settings come from GATEWAY_HOME/gateway.toml and GATEWAY_* environment variables;
    `gateway config show` prints them.
    """


for command in (
    serve,
    config,
    db,
    policy,
    models,
    release,
    stage,
    accounts,
    grants,
    keys,
    download,
    jobs,
    applications,
    evidence,
    recall_command,
    reinstate_command,
    decommission,
    purge,
    enforce_command,
    appeals,
):
    main.add_command(command)
