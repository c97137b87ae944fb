"""HTTP Range requests: one range of bytes, as resumable downloads ask for."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# More digits than any file size has: such a number is read as "beyond every file", never
# converted (int() refuses strings of thousands of digits, and would be slow on them).
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS


class RangeNotSatisfiable(Exception):
    """A well-formed range that lies outside the file (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range asked for, None for the whole file.

    Multi-range and malformed headers are ignored (the whole file is sent), as RFC 9110
    allows; a range that starts past the end raises RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = _number(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1) if size else None
    start = _number(first)
    end = _number(last) if last else None
    if start >= size or (end is not None and end < start):
        raise RangeNotSatisfiable
    return ByteRange(start, size - 1 if end is None else min(end, size - 1))


def _number(digits: str) -> int:
    """The value of a run of digits; anything longer than _MAX_DIGITS is _BEYOND."""
    significant = digits.lstrip("0") or "0"
    return _BEYOND if len(significant) > _MAX_DIGITS else int(significant)
