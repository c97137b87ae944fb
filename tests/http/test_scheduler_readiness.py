"""/readyz and the scheduler: a job is overdue only once this process could have run it.

After a whole fleet restarts, the runs recorded in `job_runs` are as old as the downtime,
but no replica has had a chance to run anything yet: that is not a stuck scheduler.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import JobRun
from gateway.jobs.registry import JOBS, stale_jobs
from gateway.runtime import Runtime
from tests.units import within, writing

pytestmark = pytest.mark.anyio
LONG_AGO = timedelta(hours=4)  # beyond three intervals of every job


async def record_runs(runtime: Runtime, at: datetime) -> None:
    async with writing(runtime) as session:
        for job in JOBS:
            session.add(JobRun(name=job.name, runs=1, last_started_at=at, last_finished_at=at))


async def test_readyz_is_ready_right_after_a_fleet_restart(
    settings: Settings, runtime: Runtime
) -> None:
    await record_runs(runtime, datetime.now(UTC) - LONG_AGO)
    app = create_app(settings=replace(settings, scheduler=True))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/readyz")
    assert response.json().get("scheduler") == "ok", response.json()
    assert response.status_code == 200


async def test_a_scheduler_that_has_run_nothing_for_long_is_stale(runtime: Runtime) -> None:
    now = runtime.clock()
    await record_runs(runtime, now - LONG_AGO)
    # The twin: the same old runs, with a scheduler that started long ago too.
    runtime.scheduler_started_at = now - LONG_AGO
    assert await within(runtime, stale_jobs) == [job.name for job in JOBS]
    # Started a moment ago: nothing is overdue yet.
    runtime.scheduler_started_at = now - timedelta(seconds=5)
    assert await within(runtime, stale_jobs) == []


async def test_a_scheduler_that_never_ran_a_job_goes_stale_after_its_start(
    runtime: Runtime,
) -> None:
    now = runtime.clock()
    runtime.scheduler_started_at = now - timedelta(seconds=5)
    assert await within(runtime, stale_jobs) == []
    runtime.scheduler_started_at = now - LONG_AGO
    assert await within(runtime, stale_jobs) == [job.name for job in JOBS]
