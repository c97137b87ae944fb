"""Evidence by group commit: the rows of concurrent requests are written together, one
INSERT and one commit per batch, and every request answers only once its batch has
committed, so nothing it reported is lost if the process dies after answering.

Rules:
- One writer per process (per event loop): while one batch commits, the next gathers.
  There is no timer: a lone request is written at once, a burst shares commits.
- A batch is one unit of work of its own. A caller holds no connection while it waits
  (it ends its read phase first), so waiting never holds one connection while it needs
  another.
- A batch that fails fails every caller in it, with the batch's error, and writes none
  of its rows: each caller answers as its own write would have failed.
- Only appends that stand alone go this way (evidence of reads and refusals); a row that
  must commit together with a change is written in that change's unit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from gateway.db.models import Evidence
from gateway.db.uow import unit_of_work

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# Rows per INSERT: large enough that a burst shares few commits, small enough that one
# statement stays well inside the drivers' parameter limits.
MAX_ROWS = 500

Rows = Sequence[dict[str, Any]]


class GroupCommit:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._waiting: list[tuple[Rows, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, rows: Rows) -> None:
        """Write `rows` (values of evidence rows) in the next batch; returns once that
        batch has committed, or raises its error."""
        if not rows:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((rows, done))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_batches())
        await done

    async def drain(self) -> None:
        """Wait for the batches already asked for (at shutdown)."""
        writer = self._writer
        if (
            writer is not None
            and not writer.done()
            and writer.get_loop() is asyncio.get_running_loop()
        ):
            await writer

    async def _write_batches(self) -> None:
        while self._waiting:
            batch = self._take()
            rows = [row for rows, _ in batch for row in rows]
            try:
                async with unit_of_work(self._rt) as uow:
                    session = await uow.write()
                    await session.execute(insert(Evidence), rows)
            except BaseException as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _take(self) -> list[tuple[Rows, asyncio.Future[None]]]:
        batch: list[tuple[Rows, asyncio.Future[None]]] = []
        count = 0
        while self._waiting and (not batch or count + len(self._waiting[0][0]) <= MAX_ROWS):
            item = self._waiting.pop(0)
            batch.append(item)
            count += len(item[0])
        return batch
