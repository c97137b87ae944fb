"""`gateway jobs`: see and run the scheduled jobs by hand."""

from __future__ import annotations

import click
from rich.table import Table

from gateway.cli.support import fail, in_unit, out, run
from gateway.jobs.registry import BY_NAME, JOBS, last_runs, run_due, run_job
from gateway.web.filters import when


@click.group()
def jobs() -> None:
    """Scheduled jobs: grant expiry, warnings, close-outs, mail and webhooks."""


@jobs.command("list")
def jobs_list() -> None:
    """Every job, how often it runs and when it last ran."""
    rows = run(in_unit(last_runs))
    table = Table()
    for column in ("job", "every", "last started", "last finished", "runs", "last error"):
        table.add_column(column)
    for job in JOBS:
        row = rows.get(job.name)
        table.add_row(
            job.name,
            str(job.every),
            when(row.last_started_at) if row and row.last_started_at else "never",
            when(row.last_finished_at) if row and row.last_finished_at else "—",
            str(row.runs if row else 0),
            (row.last_error or "") if row else "",
        )
    out.print(table)


@jobs.command("run-due")
@click.option("--all", "run_all", is_flag=True, help="Run every job, due or not.")
def jobs_run_due(run_all: bool) -> None:
    """Run the jobs that are due now (what the scheduler would do)."""
    results = run(lambda rt: run_due(rt, force=run_all))
    if not results:
        out.print("Nothing is due.")
    for name, outcome in results:
        out.print(f"{name}: {outcome if outcome is not None else 'skipped (running elsewhere)'}")


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run one job now."""
    job = BY_NAME.get(name)
    if job is None:
        fail(f"no job {name!r}; jobs are {', '.join(BY_NAME)}", 2)
    outcome = run(lambda rt: run_job(rt, job))
    out.print(f"{name}: {outcome if outcome is not None else 'skipped (running elsewhere)'}")
