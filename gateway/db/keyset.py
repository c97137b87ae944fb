"""The query side of cursor pagination (gateway/pagination.py): a page of rows after a
keyset, in a stable order of a time and an id."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from gateway.pagination import Keyset

Ts = TypeVarTuple("Ts")


def keyset_page(
    query: Select[*Ts],
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[str],
    after: Keyset | None,
    limit: int,
    *,
    descending: bool = False,
) -> Select[*Ts]:
    """`query` ordered by (at, id), from just after `after`, `limit` + 1 rows (the one more
    says whether another page follows)."""
    if after is not None:
        # Written out rather than as a row value: the same SQL on SQLite and PostgreSQL.
        if descending:
            past = or_(at < after.at, and_(at == after.at, row_id < after.id))
        else:
            past = or_(at > after.at, and_(at == after.at, row_id > after.id))
        query = query.where(past)
    order = (at.desc(), row_id.desc()) if descending else (at.asc(), row_id.asc())
    return query.order_by(None).order_by(*order).limit(limit + 1)
