"""Resuming a file: what to ask for, and what to do with the answer. Pure functions.

The bytes already in `<path>.part` are kept when they can be the start of the file (no
longer than its size); the request then asks for the rest with `Range: bytes=N-`. The
answer decides what happens to the part:

- 206 whose Content-Range starts at N: append the body.
- 200: the server (or a proxy) ignored the Range and sends the whole file: start over
  with this body instead of asking again.
- 206 for another range, or 416 (the part is not shorter than the server's file): the
  part cannot be the start of this file; discard it and ask for everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# 256 KiB reads: small enough to stay in the CPU cache between the socket, the hash and
# the file (1 MiB chunks ran at half the speed on loopback), large enough for few calls.
CHUNK = 256 * 1024

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class Action(Enum):
    APPEND = "append"  # the body continues the part
    REPLACE = "replace"  # the body is the whole file: truncate the part, then write
    DISCARD = "discard"  # drop the part and request the whole file again


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive, as in the header
    total: int | None  # None for "*"


def resume_offset(part_size: int | None, size: int) -> int:
    """How many bytes of an existing `.part` to keep (0 when there is none or it is too long)."""
    if part_size is None or part_size > size:
        return 0
    return part_size


def range_headers(offset: int) -> dict[str, str]:
    """The request headers that ask for the file from `offset` on."""
    return {"Range": f"bytes={offset}-"} if offset else {}


def parse_content_range(value: str | None) -> ContentRange | None:
    """`bytes 100-199/1000` as a ContentRange; None when missing or malformed."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None
    start, end, total = match.groups()
    return ContentRange(int(start), int(end), None if total == "*" else int(total))


def plan_reply(status: int, offset: int, size: int, content_range: str | None) -> Action:
    """What to do with the part, given a successful (2xx) or 416 answer to our request."""
    if status == 200:
        return Action.APPEND if offset == 0 else Action.REPLACE
    if status == 206:
        parsed = parse_content_range(content_range)
        if parsed and parsed.start == offset and parsed.total in (size, None):
            return Action.APPEND
        return Action.DISCARD
    if status == 416:
        return Action.DISCARD
    raise ValueError(f"no plan for HTTP {status}")
