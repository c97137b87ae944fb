"""Reading many rows a batch at a time: an export's query, streamed from the database
`batch` rows per fetch and handed on as they come, so no export is ever held in memory
whole. One query on one cursor (`yield_per`), so a row is never read twice or missed at
a batch's edge, and the export is one snapshot of the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gateway.db.models import Model
from stages.names import ModelRef


@dataclass(frozen=True)
class Window:
    """`since` <= t < `until`, either end open when None: half open, so windows that
    meet share no row and lose none."""

    since: datetime | None = None
    until: datetime | None = None


def in_window(column: InstrumentedAttribute[datetime], window: Window) -> list[ColumnElement[bool]]:
    """The clauses that keep `column` in `window`."""
    clauses: list[ColumnElement[bool]] = []
    if window.since is not None:
        clauses.append(column >= window.since)
    if window.until is not None:
        clauses.append(column < window.until)
    return clauses


def where_given(
    query: Select[*tuple[Any, ...]], *terms: tuple[InstrumentedAttribute[Any], object]
) -> Select[*tuple[Any, ...]]:
    """`query` narrowed to `column == value` for each (column, value) whose value is not
    None: the filters an operator left out keep every row."""
    return query.where(*(column == value for column, value in terms if value is not None))


async def in_batches(
    session: AsyncSession, query: Select[*tuple[Any, ...]], *, batch: int
) -> AsyncIterator[Row[Any]]:
    """The rows of `query` in its order, fetched `batch` at a time."""
    result = await session.stream(query.execution_options(yield_per=batch))
    try:
        async for row in result:
            yield row
    finally:
        # A reader that stops early (a client gone) leaves no cursor open.
        await result.close()


def of_model(model: ModelRef | None) -> tuple[tuple[InstrumentedAttribute[Any], object], ...]:
    """The terms of `where_given` for one model (none for any model), on a query that
    joins `Model`."""
    if model is None:
        return ()
    return ((Model.org, model.org), (Model.name, model.name))
