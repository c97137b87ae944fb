"""The job runner: every run is one unit of work of its own, holding the job's lock inside it.

A run's writes and the `job_runs` row that records it commit together; a run that fails
leaves none of its writes behind, and its start and error are still recorded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.db.models import JobRun, Model
from gateway.db.uow import UnitOfWork, unit_of_work
from gateway.jobs import repository
from gateway.jobs.registry import Job, run_job
from gateway.runtime import Runtime
from tests.backends import on_backends

pytestmark = pytest.mark.anyio


async def add_model(uow: UnitOfWork, name: str) -> None:
    session = await uow.write()
    session.add(Model(org="jobs", name=name, created_at=uow.rt.clock()))
    await session.flush()


async def models(rt: Runtime) -> list[str]:
    async with unit_of_work(rt) as uow:
        return list((await uow.session.scalars(select(Model.name))).all())


async def job_row(rt: Runtime, name: str) -> JobRun | None:
    async with unit_of_work(rt) as uow:
        return await repository.job_run(uow.session, name)


async def test_a_run_and_its_record_commit_together_in_one_unit(runtime: Runtime) -> None:
    seen: list[UnitOfWork] = []

    async def work(uow: UnitOfWork) -> str:
        seen.append(uow)
        await add_model(uow, "made")
        return "made one"

    assert await run_job(runtime, Job("test.ok", timedelta(minutes=5), work)) == "made one"
    assert len(seen) == 1
    assert isinstance(seen[0], UnitOfWork)
    assert await models(runtime) == ["made"]
    row = await job_row(runtime, "test.ok")
    assert row is not None
    assert row.runs == 1
    assert row.last_error is None
    assert row.last_started_at is not None
    assert row.last_finished_at is not None


async def test_a_failed_run_leaves_no_writes_and_records_its_error(runtime: Runtime) -> None:
    async def work(uow: UnitOfWork) -> str:
        await add_model(uow, "half-done")
        raise RuntimeError("the store went away")

    outcome = await run_job(runtime, Job("test.fails", timedelta(minutes=5), work))
    assert outcome == "failed: the store went away"
    assert await models(runtime) == []
    row = await job_row(runtime, "test.fails")
    assert row is not None
    assert row.runs == 1
    assert row.last_error == "RuntimeError: the store went away"


async def test_a_run_within_its_interval_is_skipped_when_only_due(runtime: Runtime) -> None:
    runs: list[int] = []

    async def work(uow: UnitOfWork) -> str:
        runs.append(1)
        return "ran"

    job = Job("test.due", timedelta(hours=1), work)
    assert await run_job(runtime, job, only_if_due=True) == "ran"
    assert await run_job(runtime, job, only_if_due=True) is None
    assert await run_job(runtime, job) == "ran"
    assert len(runs) == 2
    row = await job_row(runtime, "test.due")
    assert row is not None
    assert row.runs == 2


# The advisory lock is PostgreSQL's; SQLite has one writer anyway.
@on_backends("postgres")
async def test_a_job_whose_lock_another_unit_holds_does_not_run(runtime: Runtime) -> None:
    runs: list[int] = []

    async def work(uow: UnitOfWork) -> str:
        runs.append(1)
        return "ran"

    job = Job("test.locked", timedelta(minutes=5), work)
    async with unit_of_work(runtime) as holder:
        assert await repository.try_job_lock(holder.session, job.name)
        assert await run_job(runtime, job) is None
    assert runs == []
    # The lock went with the unit that held it.
    assert await run_job(runtime, job) == "ran"
