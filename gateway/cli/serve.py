"""`gateway serve`: run the gateway."""

from __future__ import annotations

import asyncio
import logging.config
import os
from dataclasses import replace
from typing import Any

import click

from gateway.cli.support import ensure_schema, out, reported_errors, settings
from gateway.config import DEFAULT_PUBLIC_URL
from gateway.db import migrate
from gateway.db.uow import run_unit
from gateway.identity.service import SetupLink, operator_setup_link
from gateway.metrics.processes import share_between_workers
from gateway.runtime import Runtime, build_runtime

LOG_LEVELS = ("debug", "info", "warning", "error")
# Libraries whose INFO lines are routine chatter (APScheduler: a line per job added, run
# and finished); shown only when debugging.
_CHATTY = ("apscheduler",)


def log_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server and its workers: lines from `level`
    up, the chatty libraries' only from WARNING unless debugging."""
    chosen = level.upper()
    chatty = chosen if chosen in ("DEBUG", "ERROR") else "WARNING"
    console = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(levelname)s %(name)s: %(message)s"},
            # Granian's own lines name no logger.
            "granian": {"format": "%(levelname)s granian: %(message)s"},
        },
        "handlers": {
            "console": console,
            "granian": {**console, "formatter": "granian"},
        },
        "root": {"handlers": ["console"], "level": chosen},
        "loggers": {
            **{name: {"level": chatty} for name in _CHATTY},
            "_granian": {"handlers": ["granian"], "level": chosen, "propagate": False},
            "granian.access": {"handlers": ["granian"], "level": chosen, "propagate": False},
        },
    }


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", is_flag=True, help="Publish a small demo model if it is missing.")
@click.option("--migrate", "apply_migrations", is_flag=True, help="Apply pending migrations first.")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="The least severe log lines shown; the scheduler's routine lines only with debug.",
)
def serve(
    host: str, port: int, workers: int, demo: bool, apply_migrations: bool, log_level: str
) -> None:
    """Serve the portal, the JSON API and downloads.

    With no configuration, everything lives under ./.gateway: a SQLite database, the
    stored objects and the signing keys. Embedded SQLite is migrated automatically;
    PostgreSQL only with --migrate. The start-up summary, with the one-time link that
    creates the first operator, is printed whatever the log level.
    """
    current = settings()
    base = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}"  # noqa: S104
    if current.public_url == DEFAULT_PUBLIC_URL:
        # Not configured: links point at where this server actually listens.
        os.environ["GATEWAY_PUBLIC_URL"] = base
        current = replace(current, public_url=base)
    with reported_errors():
        current.home.mkdir(parents=True, exist_ok=True)
        # Before anything records a metric: the workers fork from this process.
        share_between_workers(current.home, workers)
        if apply_migrations:
            migrate.upgrade(current.database_url)
        ensure_schema(current)
        runtime = build_runtime(current)
        seeded, setup = asyncio.run(_prepare(runtime, demo))
    # Workers are separate processes that read the same settings from the environment.
    os.environ["GATEWAY_HOME"] = str(current.home)
    logs = log_config(log_level)
    logging.config.dictConfig(logs)
    out.print(f"Release Gateway — home {current.home}", style="bold")
    for ref in seeded:
        out.print(f"  demo release published: {ref}")
    out.print(f"  portal    {base}/")
    out.print(f"  API docs  {base}/schema")
    out.print(f"  database  {current.masked()['database_url']}")
    out.print(f"  storage   {runtime.storage.describe()}")
    if setup is not None:
        out.print("  No operator yet. Open this one-time link to create the first one:")
        out.print(f"    {setup.url}")
        out.print("  (or, on this machine: gateway accounts create YOU@EXAMPLE.ORG --operator)")
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        "gateway.app:serving_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        log_access=False,
        # Workers configure their logging from this too, whether forked or spawned.
        log_level=LogLevels(log_level.lower()),
        log_dictconfig=logs,
    ).serve()


async def _prepare(runtime: Runtime, demo: bool) -> tuple[list[str], SetupLink | None]:
    from gateway.demo import seed_demo

    try:
        # A wrong or missing key-encryption key stops the start here, naming it.
        await runtime.prepare()
        seeded = await seed_demo(runtime) if demo else []
        return seeded, await run_unit(runtime, operator_setup_link)
    finally:
        await runtime.close()
