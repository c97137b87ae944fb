"""How an export is written: CSV (RFC 4180, a header row first) or JSON Lines (one object
a line), encoded as UTF-8 and handed on in chunks as the rows come.

A CSV cell is text a spreadsheet may run: one that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return gets a `'` in front, as OWASP advises against formula injection
(https://owasp.org/www-community/attacks/CSV_Injection). Only text is touched: numbers
and dates are the gateway's own. JSON Lines are data, not formulas, and stay as stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import BinaryIO, Final

from gateway.errors import InvalidInput
from gateway.exports.service import Cell, Export


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


MEDIA_TYPES: Final = {Format.CSV: "text/csv; charset=utf-8", Format.JSONL: "application/x-ndjson"}
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# Rows are gathered into chunks of about this size before they are handed on.
CHUNK_BYTES: Final = 64 * 1024


def chosen_format(asked: str | None, *, prefers_csv: bool = False) -> Format:
    """The asked format; without one, CSV when the client prefers it, else JSON Lines.
    400 unknown_format for any other."""
    if not asked:
        return Format.CSV if prefers_csv else Format.JSONL
    try:
        return Format(asked)
    except ValueError:
        raise InvalidInput(
            f"unknown format {asked!r}; expected csv or jsonl", code="unknown_format"
        ) from None


def csv_cell(value: Cell) -> str:
    """A value as a CSV cell, text that could start a formula neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return f"'{value}" if value.startswith(_FORMULA_STARTS) else str(value)
    return str(value)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not an export value")


async def encoded(fmt: Format, export: Export) -> AsyncIterator[bytes]:
    """The export in `fmt`, a chunk at a time: the CSV header comes at once, even for an
    export with no rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if fmt is Format.CSV:
        writer.writerow(export.columns)
    async for record in export.records:
        if fmt is Format.CSV:
            writer.writerow([csv_cell(record[name]) for name in export.columns])
        else:
            buffer.write(json.dumps(record, default=_json_value, ensure_ascii=False) + "\n")
        if buffer.tell() >= CHUNK_BYTES:
            yield _drained(buffer)
    if buffer.tell():
        yield _drained(buffer)


def _drained(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def file_name(kind: str, fmt: Format, at: datetime) -> str:
    """`applications-20300301T090000Z.csv`: the kind, when it was taken, the format."""
    return f"{kind}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.{fmt.value}"


async def write(fmt: Format, export: Export, stream: BinaryIO) -> None:
    """Write the export to `stream` as it is read (`gateway export`)."""
    async for chunk in encoded(fmt, export):
        stream.write(chunk)
