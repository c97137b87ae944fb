"""Evidence by group commit: concurrent appends share commits, every caller returns only
once its rows are on disk, and a batch that fails fails each of its callers and writes
none of its rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from gateway import evidence
from gateway.db.models import Evidence
from gateway.db.uow import UnitOfWork
from gateway.runtime import Runtime
from stages import evidence as ev
from tests.units import reading, within

pytestmark = pytest.mark.anyio


def refused(n: int) -> ev.DownloadManifestRefused:
    return ev.DownloadManifestRefused(
        reason="no_grant", key=f"key-{n}", client_address=None, user_agent=None
    )


async def count(rt: Runtime) -> int:
    async with reading(rt) as session:
        return await session.scalar(select(func.count()).select_from(Evidence)) or 0


def stamped(rt: Runtime, n: int) -> dict[str, object]:
    return evidence.values(refused(n), actor=ev.SCHEDULER, at=rt.clock())


async def test_concurrent_appends_share_commits_and_every_row_lands(runtime: Runtime) -> None:
    before = await count(runtime)
    commits: list[int] = []
    event.listen(runtime.engine.sync_engine, "commit", lambda _: commits.append(1))
    await asyncio.gather(*(runtime.group_commit.append([stamped(runtime, n)]) for n in range(40)))
    assert await count(runtime) == before + 40
    # Forty callers queued before the writer first ran (asyncio runs them in order): one
    # batch, one INSERT, one commit.
    assert len(commits) == 1


async def test_a_failing_batch_fails_each_caller_and_writes_none_of_its_rows(
    runtime: Runtime,
) -> None:
    before = await count(runtime)
    broken = {**stamped(runtime, 2), "kind": None}  # NOT NULL
    answers = await asyncio.gather(
        runtime.group_commit.append([stamped(runtime, 1)]),
        runtime.group_commit.append([broken]),
        return_exceptions=True,
    )
    assert all(isinstance(a, IntegrityError) for a in answers), answers
    assert await count(runtime) == before
    # The writer goes on: the next append is written.
    await runtime.group_commit.append([stamped(runtime, 3)])
    assert await count(runtime) == before + 1


async def test_append_in_a_unit_that_is_writing_keeps_the_rows_with_its_change(
    runtime: Runtime,
) -> None:
    """A unit already in its write phase keeps the evidence in it: undone with the unit."""
    before = await count(runtime)

    async def work(uow: UnitOfWork) -> None:
        await uow.write()
        await evidence.append(uow, [refused(1)], actor=ev.SCHEDULER, at=runtime.clock())
        raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        await within(runtime, work)
    assert await count(runtime) == before
