"""Resume planning: what to keep of a .part and what to do with each answer."""

from __future__ import annotations

import pytest

from gateway.client.resume import (
    Action,
    ContentRange,
    parse_content_range,
    plan_reply,
    range_headers,
    resume_offset,
)


@pytest.mark.parametrize(
    ("part_size", "size", "offset"),
    [(None, 100, 0), (0, 100, 0), (40, 100, 40), (100, 100, 100), (101, 100, 0)],
)
def test_resume_offset(part_size: int | None, size: int, offset: int) -> None:
    assert resume_offset(part_size, size) == offset


def test_range_header_only_when_resuming() -> None:
    assert range_headers(0) == {}
    assert range_headers(1234) == {"Range": "bytes=1234-"}


def test_parse_content_range() -> None:
    assert parse_content_range("bytes 10-99/100") == ContentRange(10, 99, 100)
    assert parse_content_range("bytes 10-99/*") == ContentRange(10, 99, None)
    assert parse_content_range(None) is None
    assert parse_content_range("bytes */100") is None
    assert parse_content_range("items 1-2/3") is None


@pytest.mark.parametrize(
    ("status", "offset", "content_range", "action"),
    [
        (200, 0, None, Action.APPEND),
        (200, 40, None, Action.REPLACE),  # Range ignored: the body is the whole file
        (206, 40, "bytes 40-99/100", Action.APPEND),
        (206, 40, "bytes 40-99/*", Action.APPEND),
        (206, 40, "bytes 0-99/100", Action.DISCARD),  # not the range asked for
        (206, 40, "bytes 40-199/200", Action.DISCARD),  # another file's size
        (206, 40, None, Action.DISCARD),
        (416, 40, None, Action.DISCARD),
    ],
)
def test_plan_reply(status: int, offset: int, content_range: str | None, action: Action) -> None:
    assert plan_reply(status, offset, 100, content_range) is action


def test_plan_reply_has_no_plan_for_errors() -> None:
    with pytest.raises(ValueError, match="403"):
        plan_reply(403, 0, 100, None)
