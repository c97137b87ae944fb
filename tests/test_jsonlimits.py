"""The one bound on JSON from outside: size and depth, checked in one linear pass."""

from __future__ import annotations

import time

import pytest

from gateway.jsonlimits import (
    MAX_DEPTH,
    JsonLimit,
    JsonRefused,
    JsonTooLarge,
    nests_deeper,
    parse_json,
)

LIMIT = JsonLimit("the document", 1024 * 1024)


@pytest.mark.parametrize(
    ("data", "deeper"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, False),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True),
        (b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), True),
        (b"[" * (MAX_DEPTH + 1), True),  # unterminated: as deep as it claims
        (b"[]" * 10_000, False),  # many, side by side
        (b'["' + b"[" * 1000 + b'"]', False),  # brackets in a string are text
        (b'["\\"' + b"[" * 1000 + b'"]', False),  # ... past an escaped quote too
        (b'["\\\\"' + b"[" * 1000, True),  # an escaped backslash ends the string
    ],
)
def test_nesting_is_counted_outside_strings(data: bytes, deeper: bool) -> None:
    assert nests_deeper(data, MAX_DEPTH) is deeper


@pytest.mark.parametrize(
    "data",
    [
        b'"' + b'\\"' * 500_000,  # one string that never ends
        b'"a' * 500_000,  # half a million short strings
        b'["' * 300_000,
        b"\\" * 1_000_000,
        b"[" * 1_000_000,
    ],
    ids=["escaped-quotes", "short-strings", "bracket-quote", "backslashes", "brackets"],
)
def test_the_check_is_linear_on_hostile_input(data: bytes) -> None:
    started = time.monotonic()
    nests_deeper(data, MAX_DEPTH)
    # A quadratic scan takes minutes on these; a linear one a fraction of a second.
    assert time.monotonic() - started < 3


def test_parse_json_refuses_what_is_too_large_too_deep_or_not_json() -> None:
    assert parse_json(b'{"a": [1, {"b": null}]}', LIMIT) == {"a": [1, {"b": None}]}
    with pytest.raises(JsonTooLarge, match="the document is larger than 1 MiB"):
        parse_json(b'"' + b"x" * LIMIT.max_bytes + b'"', LIMIT)
    with pytest.raises(JsonTooLarge, match="nests deeper than 32 levels"):
        parse_json(b"[" * 100_000 + b"]" * 100_000, LIMIT)
    with pytest.raises(JsonRefused, match="is not valid JSON") as refused:
        parse_json(b"{nope", LIMIT)
    assert not isinstance(refused.value, JsonTooLarge)
