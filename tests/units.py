"""Tests call services the way the boundary does: inside one unit of work of their own.

`writing` and `reading` give a test's own setup and checks a session in a unit of work,
to plant rows and to look at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.uow import UnitOfWork, run_unit, unit_of_work
from gateway.runtime import Runtime

T = TypeVar("T")


async def within(rt: Runtime, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in a unit of its own, committed when it returns (rolled back if it raises),
    as a request, command or job would."""
    return await run_unit(rt, work)


@asynccontextmanager
async def writing(rt: Runtime) -> AsyncIterator[AsyncSession]:
    """A unit of work in its write phase from the start, as a session: committed when the
    block ends, rolled back if it raises."""
    async with unit_of_work(rt) as uow:
        yield await uow.write()


@asynccontextmanager
async def reading(rt: Runtime) -> AsyncIterator[AsyncSession]:
    """A session to read with; nothing it does is kept, and its connection goes back to
    the pool when the block ends."""
    uow = UnitOfWork(rt)
    try:
        yield uow.session
    finally:
        await uow.rollback()


class ManualClock:
    """A monotonic clock moved by hand (`clock.now += seconds`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
