"""The request's unit of work, as a Litestar dependency.

Opened lazily (no connection until the first statement), shared by every dependency and
the handler of one request, committed when the handler has returned and before the
response is sent (so what the answer reports is on disk), rolled back when the handler
raises, unless the error was kept (`raise uow.kept(Denied(...))`: a refusal whose
evidence stands).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.web import Rt, Uow


async def provide_unit(runtime: Rt) -> AsyncIterator[Uow]:
    async with runtime.unit() as uow:
        yield uow
