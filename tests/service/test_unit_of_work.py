"""The unit of work: a read phase, one write phase, one connection, committed once at the
boundary; rolled back on error, so nothing is half-written; SQLite's single writer and
WAL snapshots handled inside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.config import Settings
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import Account, Evidence
from gateway.db.uow import UnitOfWork, UnitOfWorkError, in_unit, run_unit, unit_of_work
from gateway.errors import DatabaseUnavailable, Denied
from gateway.runtime import Runtime, build_runtime
from stages.access import Reason
from tests.accounts import create_account
from tests.backends import on_backends
from tests.units import reading, writing

pytestmark = pytest.mark.anyio
KIND = "test.unit_of_work"


async def count(rt: Runtime, kind: str = KIND) -> int:
    async with reading(rt) as session:
        found = await session.scalar(
            select(func.count()).select_from(Evidence).where(Evidence.kind == kind)
        )
    return int(found or 0)


def note(uow: UnitOfWork, label: str) -> None:
    uow.session.add(Evidence(kind=KIND, actor="test", at=uow.rt.clock(), data={"label": label}))


@asynccontextmanager
async def on_a_pool_of_one(settings: Settings) -> AsyncIterator[Runtime]:
    built = build_runtime(settings)
    await built.engine.dispose()
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=3)
    rt = replace(built, engine=engine, sessionmaker=make_sessionmaker(engine))
    try:
        yield rt
    finally:
        await rt.close()


async def test_a_unit_reads_then_writes_and_commits_once(runtime: Runtime) -> None:
    account = await create_account(runtime, "reader@example.org", operator=False, actor="t")
    async with runtime.unit() as uow:
        found = await uow.session.get(Account, account.id)
        assert found is not None
        assert not uow.writing
        await uow.write()
        assert uow.writing
        note(uow, found.email)
        # Not yet visible to anyone else: the boundary commits, not the work.
        assert await count(runtime) == 0
    assert await count(runtime) == 1


async def test_an_error_rolls_back_everything_the_unit_wrote(runtime: Runtime) -> None:
    async def work(uow: UnitOfWork) -> None:
        await uow.write()
        note(uow, "first")
        await uow.session.flush()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_unit(runtime, work)
    assert await count(runtime) == 0


async def test_nothing_is_half_written_when_a_later_write_fails(runtime: Runtime) -> None:
    account = await create_account(runtime, "twice@example.org", operator=False, actor="t")

    async def work(uow: UnitOfWork) -> None:
        session = await uow.write()
        note(uow, "before the clash")
        await session.flush()
        clash = Account(
            id=account.id, email="clash@example.org", created_at=runtime.clock(), status="active"
        )
        session.add(clash)
        await session.flush()

    with pytest.raises(IntegrityError):
        await run_unit(runtime, work)
    assert await count(runtime) == 0
    async with reading(runtime) as session:
        assert await session.scalar(select(Account.email).where(Account.id == account.id)) == (
            "twice@example.org"
        )


async def test_a_kept_refusal_commits_its_evidence_and_any_other_error_does_not(
    runtime: Runtime,
) -> None:
    async def keeping(uow: UnitOfWork) -> None:
        await uow.write()
        note(uow, "kept")
        raise uow.kept(Denied(Reason.NO_GRANT, "no grant"))

    async def not_keeping(uow: UnitOfWork) -> None:
        await uow.write()
        note(uow, "not kept")
        uow.kept(Denied(Reason.NO_GRANT, "another refusal"))
        raise Denied(Reason.NO_GRANT, "no grant")

    with pytest.raises(Denied) as kept:
        await run_unit(runtime, keeping)
    assert kept.value.reason is Reason.NO_GRANT
    assert await count(runtime) == 1
    # The twin: a refusal that was not the kept one takes its evidence with it.
    with pytest.raises(Denied):
        await run_unit(runtime, not_keeping)
    assert await count(runtime) == 1


async def test_rows_changed_in_the_read_phase_are_refused(runtime: Runtime) -> None:
    async def work(uow: UnitOfWork) -> None:
        note(uow, "too early")

    with pytest.raises(UnitOfWorkError, match="write phase"):
        await run_unit(runtime, work)
    assert await count(runtime) == 0


async def test_after_commit_hooks_run_only_after_a_commit_and_never_fail_it(
    runtime: Runtime,
) -> None:
    ran: list[str] = []

    async def hook() -> None:
        # The unit's work is committed when the hook runs.
        ran.append(f"after {await count(runtime)}")

    async def broken() -> None:
        raise RuntimeError("best effort only")

    async with runtime.unit() as uow:
        uow.after_commit(broken)
        uow.after_commit(hook)
        await uow.write()
        note(uow, "committed")
    assert ran == ["after 1"]

    async def failing(uow: UnitOfWork) -> None:
        uow.after_commit(hook)
        raise ValueError("rolled back")

    with pytest.raises(ValueError, match="rolled back"):
        await run_unit(runtime, failing)
    assert ran == ["after 1"]


async def test_the_command_helpers_run_one_unit(runtime: Runtime) -> None:
    async def work(uow: UnitOfWork) -> str:
        await uow.write()
        note(uow, "command")
        return "done"

    assert await run_unit(runtime, work) == "done"
    assert await in_unit(work)(runtime) == "done"
    assert await count(runtime) == 2


async def test_one_connection_for_the_whole_unit(settings: Settings) -> None:
    """On a pool of one, a unit that asked for a second connection would wait for itself;
    the read and the write phase run on the very same driver connection."""
    async with on_a_pool_of_one(settings) as rt:
        checkouts: list[Any] = []
        event.listen(rt.engine.sync_engine, "checkout", lambda dbapi, *_: checkouts.append(dbapi))
        async with rt.unit() as uow:
            await uow.session.scalar(select(func.count()).select_from(Account))
            reading = (await uow.session.connection()).sync_connection
            assert reading is not None
            read_driver = reading.connection.dbapi_connection
            session = await uow.write()
            writing = (await session.connection()).sync_connection
            assert writing is not None
            assert writing.connection.dbapi_connection is read_driver
            assert rt.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
            note(uow, "one connection")
        assert len(checkouts) == 1
        assert rt.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert await count(rt) == 1


@on_backends("sqlite")
async def test_sqlite_a_reader_that_writes_later_waits_its_turn(
    settings: Settings, runtime: Runtime
) -> None:
    """The refused twin first: a plain WAL read transaction that writes after another
    writer committed fails at once ('database is locked'); the unit's write phase ends the
    snapshot and takes the lock instead, and succeeds."""
    async with runtime.sessionmaker() as plain:
        await plain.scalar(select(func.count()).select_from(Evidence))
        async with writing(runtime) as other:
            other.add(Evidence(kind=KIND, actor="test", at=runtime.clock(), data={}))
        plain.add(Evidence(kind=KIND, actor="test", at=runtime.clock(), data={}))
        # The driver's error, as the gateway's failure watch reports it.
        with pytest.raises((OperationalError, DatabaseUnavailable), match="database is locked"):
            await plain.commit()
    assert await count(runtime) == 1

    async with runtime.unit() as uow:
        await uow.session.scalar(select(func.count()).select_from(Evidence))
        async with writing(runtime) as other:
            other.add(Evidence(kind=KIND, actor="test", at=runtime.clock(), data={}))
        await uow.write()
        note(uow, "after the other writer")
    assert await count(runtime) == 3


async def test_concurrent_units_that_read_then_write_all_commit(runtime: Runtime) -> None:
    """Many units read, let the others run, then write: they take turns at the write
    lock (SQLite) or row by row (PostgreSQL), and every one commits."""

    async def one(n: int) -> None:
        async with unit_of_work(runtime) as uow:
            await uow.session.scalar(select(func.count()).select_from(Evidence))
            await asyncio.sleep(0.01 * (n % 3))
            await uow.write()
            note(uow, f"writer {n}")
            await uow.session.flush()
            await asyncio.sleep(0.005)

    await asyncio.gather(*(one(n) for n in range(12)))
    assert await count(runtime) == 12
