"""The jobs, how often they run, and how one run is guarded and recorded.

Every job is idempotent and claims its rows, so running it twice at once is harmless; on
PostgreSQL each run also takes a transaction-level advisory lock named after the job, so
that with several gateway processes it runs once rather than racing. Each run's start,
end and error are kept in `job_runs`, which /readyz reads to spot a stalled scheduler.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text

from gateway.db.models import JobRun
from gateway.runtime import Runtime

logger = logging.getLogger("gateway.jobs")


async def _expire_grants(rt: Runtime) -> str:
    from gateway.grants.lifecycle import expire_grants

    report = await expire_grants(rt)
    return f"{report.expired} expired, {report.closeouts} close-outs requested"


async def _warn_grants(rt: Runtime) -> str:
    from gateway.grants.lifecycle import send_expiry_warnings

    return f"{(await send_expiry_warnings(rt)).warned} warned"


async def _closeouts(rt: Runtime) -> str:
    from gateway.grants.lifecycle import request_closeouts

    return f"{(await request_closeouts(rt)).closeouts} close-outs requested"


async def _stale_applications(rt: Runtime) -> str:
    from gateway.applications.deciding import expire_stale_applications
    from gateway.db.uow import run_unit

    return f"{await run_unit(rt, expire_stale_applications)} applications expired"


async def _email(rt: Runtime) -> str:
    from gateway.notify.delivery import deliver_due_email

    return str(await deliver_due_email(rt))


async def _webhooks(rt: Runtime) -> str:
    from gateway.notify.delivery import deliver_due_webhooks

    return str(await deliver_due_webhooks(rt))


async def _operator_digest(rt: Runtime) -> str:
    from gateway.applications.operator_notices import send_operator_digests

    return f"{await send_operator_digests(rt)} operator digest(s) mailed"


async def _decommission_reminders(rt: Runtime) -> str:
    from gateway.decommission.service import send_reminders

    return f"{await send_reminders(rt)} reminded"


async def _decommission_execute(rt: Runtime) -> str:
    from gateway.decommission.service import execute_due

    return f"{await execute_due(rt)} decommissioned"


async def _lift_suspensions(rt: Runtime) -> str:
    from gateway.enforcement.service import lift_expired_suspensions

    return f"{await lift_expired_suspensions(rt)} suspensions lifted"


async def _recheck_triggers(rt: Runtime) -> str:
    from gateway.incidents.triggers import recheck_triggers

    return f"{await recheck_triggers(rt)} trigger action(s) taken"


async def _sweep_rate_limits(rt: Runtime) -> str:
    from gateway.ratelimits import DatabaseRateLimitStore, RateLimiter

    limiter = RateLimiter(DatabaseRateLimitStore(rt.engine), rt.settings.rate_limits, rt.clock)
    return f"{await limiter.sweep()} finished rate-limit windows dropped"


async def _purge_sessions(rt: Runtime) -> str:
    from gateway.identity.sessions import purge_expired_sessions

    return f"{await purge_expired_sessions(rt)} expired sessions removed"


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Runtime], Awaitable[str]]


JOBS: tuple[Job, ...] = (
    Job("grants.expire", timedelta(minutes=5), _expire_grants),
    Job("grants.warn", timedelta(hours=1), _warn_grants),
    Job("grants.closeouts", timedelta(hours=1), _closeouts),
    Job("applications.expire", timedelta(hours=1), _stale_applications),
    Job("decommission.remind", timedelta(hours=1), _decommission_reminders),
    Job("decommission.execute", timedelta(minutes=5), _decommission_execute),
    Job("enforcement.lift", timedelta(minutes=5), _lift_suspensions),
    Job("incidents.triggers", timedelta(minutes=5), _recheck_triggers),
    Job("notify.email", timedelta(seconds=30), _email),
    Job("notify.webhooks", timedelta(seconds=30), _webhooks),
    # Only does work with operator_notices = "daily": one summary a day per operator.
    Job("notify.operator_digest", timedelta(hours=1), _operator_digest),
    Job("ratelimits.sweep", timedelta(minutes=10), _sweep_rate_limits),
    Job("sessions.purge", timedelta(hours=1), _purge_sessions),
)
BY_NAME = {job.name: job for job in JOBS}


def _lock_id(name: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"gateway-job:{name}".encode()).digest()[:8], "big", signed=True
    )


async def run_job(rt: Runtime, job: Job, *, only_if_due: bool = False) -> str | None:
    """Run one job now; None if another process holds its lock (or, with `only_if_due`,
    ran it within its interval: the check is repeated under the lock, so of several
    processes that found it due at once, exactly one runs it)."""
    lock = None
    if not rt.settings.is_sqlite:
        # Held on a connection of its own for the whole run; released when it closes.
        lock = await rt.engine.connect()
        got = await lock.scalar(
            text("SELECT pg_try_advisory_lock(:id)"), {"id": _lock_id(job.name)}
        )
        if not got:
            await lock.close()
            return None
    try:
        if only_if_due and not await _due(rt, job):
            return None
        await _record(rt, job.name, started=True)
        try:
            outcome = await job.run(rt)
        except Exception as exc:
            logger.exception("job %s failed", job.name)
            await _record(rt, job.name, started=False, error=f"{type(exc).__name__}: {exc}")
            return f"failed: {exc}"
        await _record(rt, job.name, started=False)
        return outcome
    finally:
        if lock is not None:
            await lock.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _lock_id(job.name)})
            await lock.close()


async def _due(rt: Runtime, job: Job) -> bool:
    async with rt.sessionmaker() as session:
        row = await session.get(JobRun, job.name)
    return (
        row is None or row.last_started_at is None or rt.clock() - row.last_started_at >= job.every
    )


async def _record(rt: Runtime, name: str, *, started: bool, error: str | None = None) -> None:
    now = rt.clock()
    async with rt.transaction() as session:
        row = await session.get(JobRun, name)
        if row is None:
            row = JobRun(name=name, runs=0)
            session.add(row)
        if started:
            row.last_started_at = now
            row.runs = (row.runs or 0) + 1
        else:
            row.last_finished_at = now
            row.last_error = error


async def run_due(rt: Runtime, *, force: bool = False) -> list[tuple[str, str | None]]:
    """Run every job whose interval has passed since it last started (all of them if forced)."""
    now = rt.clock()
    async with rt.sessionmaker() as session:
        last = {row.name: row for row in (await session.scalars(select(JobRun))).all()}
    results = []
    for job in JOBS:
        previous = last.get(job.name)
        if (
            not force
            and previous
            and previous.last_started_at
            and now - previous.last_started_at < job.every
        ):
            continue
        results.append((job.name, await run_job(rt, job, only_if_due=not force)))
    return results


async def stale_jobs(rt: Runtime, *, slack: float = 3.0) -> list[str]:
    """Jobs that have not started for `slack` times their interval: the scheduler is stuck.

    The wait counts from the later of the job's last start (by any process) and this
    process's scheduler start: right after a fleet restarts, the last recorded runs are
    old, but no process has had the chance to run the job yet.
    """
    now = rt.clock()
    async with rt.reading() as session:
        rows = {row.name: row for row in (await session.scalars(select(JobRun))).all()}
    since_start = rt.scheduler_started_at
    stale = []
    for job in JOBS:
        row = rows.get(job.name)
        moments = [m for m in (row.last_started_at if row else None, since_start) if m]
        if not moments:
            continue  # no scheduler here and no run recorded: nothing to judge
        if now - max(moments) > job.every * slack:
            stale.append(job.name)
    return stale
