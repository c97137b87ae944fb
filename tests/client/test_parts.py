"""The plan of range parts, and the hash over a file written out of order."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
import time
from pathlib import Path

import pytest

from gateway.client.parts import Span, from_json, missing, split, to_json, written_bytes
from gateway.client.prefix_hash import HashingStopped, PrefixHasher
from gateway.client.resume import CHUNK


@pytest.mark.parametrize(
    ("size", "parts", "written"),
    [(100 << 20, 4, 0), (100 << 20, 3, 5_000_001), (CHUNK * 2 + 1, 8, 0), (10, 4, 0), (7, 2, 7)],
)
def test_split_covers_the_file_in_order_on_chunk_boundaries(
    size: int, parts: int, written: int
) -> None:
    spans = split(size, parts, written)
    assert spans[0].start == 0
    assert spans[-1].end == size
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    assert written_bytes(spans) == written
    todo = missing(spans)
    assert len(todo) <= parts
    assert all((s.end - s.start) % CHUNK == 0 for s in todo[:-1])


def test_split_in_four_equal_parts() -> None:
    spans = split(64 * CHUNK, 4)
    assert [(s.start, s.end) for s in spans] == [
        (i * 16 * CHUNK, (i + 1) * 16 * CHUNK) for i in range(4)
    ]
    assert [s.range_header() for s in spans][:1] == [f"bytes=0-{16 * CHUNK - 1}"]


def test_split_refuses_more_written_than_the_file() -> None:
    with pytest.raises(ValueError, match="11 bytes written"):
        split(10, 2, 11)


def test_a_span_range_asks_for_its_missing_rest() -> None:
    span = Span(100, 200, 30)
    assert span.offset == 130
    assert span.range_header() == "bytes=130-199"
    assert not span.complete
    assert Span(100, 200, 100).complete


def test_saved_spans_round_trip() -> None:
    spans = [Span(0, 10, 10), Span(10, 25, 3), Span(25, 30, 0)]
    assert from_json(to_json(spans), 30) == spans


@pytest.mark.parametrize(
    "saved",
    [
        None,
        [],
        "0,10,0",
        [[0, 10, 0], [11, 30, 0]],  # a gap
        [[0, 10, 0], [5, 30, 0]],  # an overlap
        [[0, 10, 11], [10, 30, 0]],  # more done than the span holds
        [[0, 10, -1], [10, 30, 0]],
        [[0, 10, 0], [10, 29, 0]],  # short of the size
        [[0, 10, 0], [10, 10, 0], [10, 30, 0]],  # an empty span
        [[0, 30, True]],
        [[0, 30]],
    ],
)
def test_saved_spans_that_break_a_rule_are_not_used(saved: object) -> None:
    assert from_json(saved, 30) is None


def test_the_hash_is_of_the_file_in_order_whatever_order_it_is_written_in(
    tmp_path: Path,
) -> None:
    data = os.urandom(5 << 20)
    pieces = [(start, min(start + 100_000, len(data))) for start in range(0, len(data), 100_000)]
    random.Random(7).shuffle(pieces)  # noqa: S311 - an order of writes, not a secret
    path = tmp_path / "f.part"
    path.write_bytes(b"\0" * len(data))
    fd = os.open(path, os.O_RDWR)
    try:
        hasher = PrefixHasher(fd, len(data))
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(hasher.run(lambda: False)))
        reader.start()
        for start, end in pieces:
            os.pwrite(fd, data[start:end], start)
            hasher.written(start, end)
        reader.join(timeout=60)
    finally:
        os.close(fd)
    assert result == [hashlib.sha256(data).hexdigest()]
    assert hasher.position == len(data)


def test_hashing_stops_when_told_and_never_hashes_past_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    path.write_bytes(b"x" * 1000)
    fd = os.open(path, os.O_RDONLY)
    try:
        hasher = PrefixHasher(fd, 1000)
        hasher.written(0, 400)
        hasher.written(500, 1000)  # 400-500 never arrives
        failures: list[BaseException] = []

        def run() -> None:
            try:
                hasher.run(lambda: False)
            except HashingStopped as exc:
                failures.append(exc)

        reader = threading.Thread(target=run)
        reader.start()
        while hasher.position < 400 and reader.is_alive():
            time.sleep(0.01)
        hasher.give_up()
        reader.join(timeout=60)
    finally:
        os.close(fd)
    assert len(failures) == 1
    assert hasher.position == 400
