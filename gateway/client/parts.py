"""Splitting a large file into range parts, and what a run remembers of them. Pure values.

A file of PARTS_FROM bytes or more is fetched as a few ranges at once, each written at
its offset into one preallocated `.part`. The plan is a list of spans that cover the
file exactly, in order; each span knows how many of its bytes (from its start) are
written. A run that stops keeps the plan in the download state, so the next run asks
only for what is missing, span by span, whatever `--parts` it is given.

Rules:
- Spans are contiguous, in order, and cover [0, size) with no gap and no overlap.
- `done` only ever grows, and never past the span's length.
- A saved plan that breaks a rule, or is for another size or digest, is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.client.resume import CHUNK

# Below this a single stream is as fast on any link worth having, and costs less.
PARTS_FROM = 64 << 20
DEFAULT_PARTS = 4
MAX_PARTS = 16


@dataclass
class Span:
    start: int
    end: int  # exclusive
    done: int = 0  # bytes from `start` already written

    @property
    def offset(self) -> int:
        """The first byte still missing."""
        return self.start + self.done

    @property
    def complete(self) -> bool:
        return self.offset >= self.end

    def range_header(self) -> str:
        """`Range` for the missing rest of the span (inclusive end, as in the header)."""
        return f"bytes={self.offset}-{self.end - 1}"


def split(size: int, parts: int, written: int = 0) -> list[Span]:
    """Spans over a file whose first `written` bytes are already there.

    The missing rest is cut into `parts` spans of about equal length, on CHUNK
    boundaries so that every read but a span's last is a whole chunk.
    """
    if not 0 <= written <= size:
        raise ValueError(f"{written} bytes written of a {size}-byte file")
    spans = [Span(0, written, written)] if written else []
    rest = size - written
    step = max(CHUNK, -(-rest // max(parts, 1) // CHUNK) * CHUNK)
    start = written
    while start < size:
        end = min(size, start + step)
        spans.append(Span(start, end))
        start = end
    return spans


def missing(spans: Sequence[Span]) -> list[Span]:
    return [s for s in spans if not s.complete]


def written_bytes(spans: Sequence[Span]) -> int:
    return sum(s.done for s in spans)


def to_json(spans: Sequence[Span]) -> list[list[int]]:
    return [[s.start, s.end, s.done] for s in spans]


def from_json(value: Any, size: int) -> list[Span] | None:
    """The saved spans of a `size`-byte file, or None if they break a rule."""
    if not isinstance(value, list) or not value:
        return None
    spans: list[Span] = []
    expected = 0
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 3  # start, end, done
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in item)
        ):
            return None
        start, end, done = item
        if start != expected or end <= start or not 0 <= done <= end - start:
            return None
        spans.append(Span(start, end, done))
        expected = end
    return spans if expected == size else None
