"""Tests call services the way the boundary does: inside one unit of work of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.db.uow import UnitOfWork, run_unit
from gateway.runtime import Runtime

T = TypeVar("T")


async def within(rt: Runtime, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in a unit of its own, committed when it returns (rolled back if it raises),
    as a request, command or job would."""
    return await run_unit(rt, work)
