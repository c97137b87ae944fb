"""APScheduler in every gateway process: it only decides *when* to call run_job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway.jobs.registry import JOBS, Job, run_job
from gateway.runtime import Runtime


def start_scheduler(rt: Runtime) -> AsyncIOScheduler:
    from gateway.metrics.registry import JOB_FAILURES, JOB_RUNS

    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in JOBS:
        # Every job's series exists from the start, at 0: "no run in 15 minutes" can be
        # told from a job that has not run yet.
        JOB_RUNS.labels(job.name)
        JOB_FAILURES.labels(job.name)
        scheduler.add_job(
            _runner(rt, job),
            IntervalTrigger(seconds=job.every.total_seconds(), jitter=5),
            id=job.name,
            name=job.name,
            # A run still going when the next is due is skipped, not stacked.
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    # Staleness counts from here: after a restart no job is overdue before it could run.
    rt.scheduler_started_at = rt.clock()
    return scheduler


def _runner(rt: Runtime, job: Job) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await run_job(rt, job, only_if_due=True)

    return run
