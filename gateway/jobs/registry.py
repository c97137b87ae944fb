"""The jobs, how often they run, and how one run is guarded and recorded.

Every run is one unit of work of its own, opened here: the job's reads and writes, and
the `job_runs` row that records the run, commit together, or none of them does. Every
job is idempotent and claims its rows, so running it twice at once is harmless; on
PostgreSQL each run also takes a transaction-level advisory lock named after the job,
inside its unit, so that with several gateway processes it runs once rather than racing.
A run that fails is rolled back, and its start and error are recorded in a unit of their
own. `job_runs` is what /readyz reads to spot a stalled scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.db.models import JobRun
from gateway.db.uow import UnitOfWork, run_unit, unit_of_work
from gateway.jobs import repository
from gateway.runtime import Runtime

logger = logging.getLogger("gateway.jobs")


async def _expire_grants(uow: UnitOfWork) -> str:
    from gateway.grants.lifecycle import expire_grants

    report = await expire_grants(uow)
    return f"{report.expired} expired, {report.closeouts} close-outs requested"


async def _warn_grants(uow: UnitOfWork) -> str:
    from gateway.grants.lifecycle import send_expiry_warnings

    return f"{(await send_expiry_warnings(uow)).warned} warned"


async def _closeouts(uow: UnitOfWork) -> str:
    from gateway.grants.lifecycle import request_closeouts

    return f"{(await request_closeouts(uow)).closeouts} close-outs requested"


async def _stale_applications(uow: UnitOfWork) -> str:
    from gateway.applications.deciding import expire_stale_applications

    return f"{await expire_stale_applications(uow)} applications expired"


async def _email(uow: UnitOfWork) -> str:
    from gateway.notify.delivery import deliver_due_email

    return str(await deliver_due_email(uow.rt))


async def _webhooks(uow: UnitOfWork) -> str:
    from gateway.notify.delivery import deliver_due_webhooks

    return str(await deliver_due_webhooks(uow.rt))


async def _operator_digest(uow: UnitOfWork) -> str:
    from gateway.applications.operator_notices import send_operator_digests

    return f"{await send_operator_digests(uow)} operator digest(s) mailed"


async def _decommission_reminders(uow: UnitOfWork) -> str:
    from gateway.decommission.service import send_reminders

    return f"{await send_reminders(uow)} reminded"


async def _decommission_execute(uow: UnitOfWork) -> str:
    from gateway.decommission.service import execute_due

    return f"{await execute_due(uow.rt)} decommissioned"


async def _lift_suspensions(uow: UnitOfWork) -> str:
    from gateway.enforcement.service import lift_expired_suspensions

    return f"{await lift_expired_suspensions(uow)} suspensions lifted"


async def _recheck_triggers(uow: UnitOfWork) -> str:
    from gateway.incidents.triggers import recheck_triggers

    return f"{await recheck_triggers(uow.rt)} trigger action(s) taken"


async def _reporting_deadlines(uow: UnitOfWork) -> str:
    from gateway.incidents.deadlines import remind_deadlines

    return f"{await remind_deadlines(uow)} reporting deadline reminder(s) sent"


async def _sweep_rate_limits(uow: UnitOfWork) -> str:
    from gateway.ratelimits import DatabaseRateLimitStore, RateLimiter

    rt = uow.rt
    limiter = RateLimiter(DatabaseRateLimitStore(rt.engine), rt.settings.rate_limits, rt.clock)
    return f"{await limiter.sweep()} finished rate-limit windows dropped"


async def _purge_sessions(uow: UnitOfWork) -> str:
    from gateway.identity.sessions import purge_expired_sessions

    return f"{await purge_expired_sessions(uow)} expired sessions removed"


async def _seal_evidence(uow: UnitOfWork) -> str:
    from gateway.evidence_log.service import seal

    done = await seal(uow)
    signed = f", checkpoint {done.size} signed" if done.signed else ""
    return f"{done.sealed} rows sealed, log of {done.size}{signed}"


async def _erase_personal_data(uow: UnitOfWork) -> str:
    from gateway.evidence_log.service import erase_personal_data

    return f"personal fields of {await erase_personal_data(uow)} evidence rows erased"


async def _roll_up_usage(uow: UnitOfWork) -> str:
    from gateway.usage.service import roll_up

    return f"{await roll_up(uow)} leaves of the evidence log rolled up"


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    # The job's work in the run's unit of work; a sentence saying what it did.
    run: Callable[[UnitOfWork], Awaitable[str]]


JOBS: tuple[Job, ...] = (
    Job("grants.expire", timedelta(minutes=5), _expire_grants),
    Job("grants.warn", timedelta(hours=1), _warn_grants),
    Job("grants.closeouts", timedelta(hours=1), _closeouts),
    Job("applications.expire", timedelta(hours=1), _stale_applications),
    Job("decommission.remind", timedelta(hours=1), _decommission_reminders),
    Job("decommission.execute", timedelta(minutes=5), _decommission_execute),
    Job("enforcement.lift", timedelta(minutes=5), _lift_suspensions),
    Job("incidents.triggers", timedelta(minutes=5), _recheck_triggers),
    Job("incidents.deadlines", timedelta(minutes=15), _reporting_deadlines),
    Job("notify.email", timedelta(seconds=30), _email),
    Job("notify.webhooks", timedelta(seconds=30), _webhooks),
    # Only does work with operator_notices = "daily": one summary a day per operator.
    Job("notify.operator_digest", timedelta(hours=1), _operator_digest),
    Job("ratelimits.sweep", timedelta(minutes=10), _sweep_rate_limits),
    Job("sessions.purge", timedelta(hours=1), _purge_sessions),
    # New evidence is in a signed checkpoint within a minute (jitter included).
    Job("evidence.seal", timedelta(seconds=30), _seal_evidence),
    # After the policy's evidence.personal_data_days.
    Job("evidence.erase_personal", timedelta(hours=1), _erase_personal_data),
    Job("usage.rollup", timedelta(minutes=1), _roll_up_usage),
)
BY_NAME = {job.name: job for job in JOBS}


async def run_job(rt: Runtime, job: Job, *, only_if_due: bool = False) -> str | None:
    """Run one job now, in a unit of work of its own; None if another process holds its
    lock (or, with `only_if_due`, ran it within its interval: the check is repeated under
    the lock, so of several processes that found it due at once, exactly one runs it)."""
    # Here, not at the top: `gateway serve`'s own process may load this module before it
    # says where metrics live (gateway/metrics/registry.py).
    from gateway.metrics.registry import JOB_FAILURES, JOB_RUNS

    started: datetime | None = None
    try:
        async with unit_of_work(rt) as uow:
            if not rt.settings.is_sqlite and not await repository.try_job_lock(
                uow.session, job.name
            ):
                return None
            if only_if_due and not await _due(uow, job):
                return None
            started = rt.clock()
            outcome = await job.run(uow)
            await _record(uow, job.name, started=started)
        JOB_RUNS.labels(job.name).inc()
        return outcome
    except Exception as exc:
        if started is None:
            raise  # the runner's own reads failed: no run to record
        JOB_RUNS.labels(job.name).inc()
        JOB_FAILURES.labels(job.name).inc()
        logger.exception("job %s failed", job.name)
        error = f"{type(exc).__name__}: {exc}"
        at = started
        await run_unit(rt, lambda uow: _record(uow, job.name, started=at, error=error))
        return f"failed: {exc}"


async def _due(uow: UnitOfWork, job: Job) -> bool:
    row = await repository.job_run(uow.session, job.name)
    return (
        row is None
        or row.last_started_at is None
        or uow.rt.clock() - row.last_started_at >= job.every
    )


async def _record(
    uow: UnitOfWork, name: str, *, started: datetime, error: str | None = None
) -> None:
    session = await uow.write()
    row = await repository.job_run(session, name) or await repository.add_job_run(session, name)
    row.last_started_at = started
    row.runs = (row.runs or 0) + 1
    row.last_finished_at = uow.rt.clock()
    row.last_error = error


async def run_due(rt: Runtime, *, force: bool = False) -> list[tuple[str, str | None]]:
    """Run every job whose interval has passed since it last started (all of them if forced)."""
    now = rt.clock()
    rows = await run_unit(rt, lambda uow: repository.job_runs(uow.session))
    last = {row.name: row for row in rows}
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


async def last_runs(uow: UnitOfWork) -> dict[str, JobRun]:
    """The recorded runs, by job name (a job that never ran has none)."""
    return {row.name: row for row in await repository.job_runs(uow.session)}


async def stale_jobs(uow: UnitOfWork, *, slack: float = 3.0) -> list[str]:
    """Jobs that have not started for `slack` times their interval: the scheduler is stuck.

    The wait counts from the later of the job's last start (by any process) and this
    process's scheduler start: right after a fleet restarts, the last recorded runs are
    old, but no process has had the chance to run the job yet.
    """
    now = uow.rt.clock()
    rows = await last_runs(uow)
    since_start = uow.rt.scheduler_started_at
    stale = []
    for job in JOBS:
        row = rows.get(job.name)
        moments = [m for m in (row.last_started_at if row else None, since_start) if m]
        if not moments:
            continue  # no scheduler here and no run recorded: nothing to judge
        if now - max(moments) > job.every * slack:
            stale.append(job.name)
    return stale
