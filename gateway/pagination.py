"""Cursor pagination for the operator API's lists: keyset on a stable order, never OFFSET.

Rules:
- A list is ordered by a time and then the row's id (the tie-break), both columns that
  never change once written, so the order of rows already listed is stable.
- A cursor names the last row of the page it ends: base64url of `[list, time, id]`,
  opaque to clients. The next page starts strictly after that row in the list's order,
  so walking every page shows each row once, even while new rows arrive.
- A cursor that does not decode, or belongs to another list, is refused with 400
  `invalid_cursor`; an empty one means the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from gateway.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_LONGEST = 512  # a cursor is a few dozen characters; anything longer is not one


@dataclass(frozen=True)
class Keyset:
    """Where a page ends: the sort time and id of its last row."""

    at: datetime
    id: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(listing: str, keyset: Keyset) -> str:
    text = json.dumps([listing, keyset.at.isoformat(), keyset.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None) -> Keyset | None:
    """The keyset a cursor of `listing` names; None for no cursor (the first page)."""
    if not cursor:
        return None
    problem = InvalidInput(
        "the cursor is not one this list gave out; pass `next_cursor` from the previous page "
        "unchanged, or none for the first page",
        code="invalid_cursor",
    )
    if len(cursor) > _LONGEST:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, at, row_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise problem from None
    if name != listing or not isinstance(row_id, str) or moment.tzinfo is None:
        raise problem
    return Keyset(moment, row_id)


def page_of(listing: str, rows: Sequence[T], limit: int, keyset: Callable[[T], Keyset]) -> Page[T]:
    """The page of `rows`, read with one row more than `limit` to know whether another
    page follows."""
    items = list(rows[:limit])
    more = len(rows) > limit and items
    return Page(items, encode_cursor(listing, keyset(items[-1])) if more else None)
