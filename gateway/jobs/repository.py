"""Every query of the job runner: its advisory lock and the `job_runs` rows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import JobRun


def lock_id(name: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"gateway-job:{name}".encode()).digest()[:8], "big", signed=True
    )


async def try_job_lock(session: AsyncSession, name: str) -> bool:
    """Take the job's transaction-level advisory lock (PostgreSQL), False if another process
    holds it; it is released when the unit of work ends, committed or not."""
    got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id(name)})
    return bool(got)


async def wait_for_job_lock(session: AsyncSession, name: str) -> None:
    """Take the job's advisory lock (PostgreSQL), waiting for a run that holds it to end:
    work that does a job's work itself (a report sealing the log first) runs alone."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id(name)})


async def job_run(session: AsyncSession, name: str) -> JobRun | None:
    return await session.get(JobRun, name)


async def job_runs(session: AsyncSession) -> Sequence[JobRun]:
    return (await session.scalars(select(JobRun))).all()


async def add_job_run(session: AsyncSession, name: str) -> JobRun:
    row = JobRun(name=name, runs=0)
    session.add(row)
    return row
