"""`gateway download` of a large file in range parts, against a real `gateway serve`.

The release holds one file above the parts threshold, so it goes as four ranges at once
through the test proxy, which records every request, can break one connection midway,
and can hide Range from the server. The gateway runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.client import exit_codes
from gateway.client.parts import PARTS_FROM, Span, split
from tests.client.test_download_e2e import (
    Gateway,
    download,
    model_signing_verify,
    running_gateway,
    start_download,
)
from tests.conftest import PostgresServer

pytestmark = pytest.mark.slow

BIG = "model.safetensors"
SIZE = PARTS_FROM + (16 << 20) + 12_345  # above the threshold, not a multiple of anything
FILES = {
    BIG: os.urandom(SIZE),
    "README.md": b"# Large sample model\n",
    "config.json": b'{"layers": 80}\n',
}
SHA = hashlib.sha256(FILES[BIG]).hexdigest()
PARTS = split(SIZE, 4)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    database: dict[str, str] = {}
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        database["GATEWAY_DATABASE_URL"] = server.create(f"gw_parts_{uuid.uuid4().hex[:12]}")
    root = tmp_path_factory.mktemp(f"parts-{request.param}")
    with running_gateway(root, extra_env=database, files=FILES) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def full_speed(gw: Gateway) -> None:
    gw.proxy.rate = None
    gw.proxy.reset()


def asked_ranges(gw: Gateway) -> list[tuple[int, int]]:
    """(first, last) of every Range a client sent, in the order they reached the proxy."""
    found = re.findall(r"(?i)\r\nrange: bytes=(\d+)-(\d+)\r\n", gw.proxy.requests_text())
    return [(int(first), int(last)) for first, last in found]


def as_ranges(spans: list[Span]) -> list[tuple[int, int]]:
    return [(s.offset, s.end - 1) for s in spans if not s.complete]


def saved_spans(folder: Path) -> list[list[int]]:
    state = json.loads(folder.with_name(folder.name + ".download.json").read_text())
    spans: list[list[int]] = state["parts"][BIG]["spans"] if BIG in state["parts"] else []
    return spans


def test_parts_give_the_exact_file_and_a_valid_release(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "llm-1.0"
    assert (folder / BIG).read_bytes() == FILES[BIG]
    assert not list(folder.rglob("*.part"))
    assert sorted(asked_ranges(gw)) == as_ranges(PARTS)  # four ranges, each asked once
    assert model_signing_verify(folder).returncode == 0
    assert saved_spans(folder) == []


def test_parts_one_is_a_single_stream(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--parts", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "llm-1.0" / BIG).read_bytes() == FILES[BIG]
    assert asked_ranges(gw) == []


def test_a_part_cut_midway_is_retried_from_where_it_broke(gw: Gateway, tmp_path: Path) -> None:
    gw.proxy.cut_after = 10 << 20  # one of the four connections breaks 10 MiB in
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", BIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert gw.proxy.cuts == 1
    assert (tmp_path / "llm-1.0" / BIG).read_bytes() == FILES[BIG]
    asked = asked_ranges(gw)
    assert len(asked) == len(PARTS) + 1
    retried = [r for r in asked if r not in as_ranges(PARTS)]
    assert len(retried) == 1
    (first, last), part = retried[0], next(p for p in PARTS if p.end - 1 == retried[0][1])
    # The retry asks only for the part's rest, from the last whole chunk that arrived.
    assert part.start < first < part.end
    assert last == part.end - 1
    assert first - part.start <= 10 << 20


def test_a_killed_download_resumes_only_the_missing_bytes(gw: Gateway, tmp_path: Path) -> None:
    gw.proxy.rate = 4 << 20  # per connection: four parts at 16 MiB/s in all
    folder = tmp_path / "llm-1.0"
    process = start_download(gw, tmp_path, "acme/llm:1.0", "--include", BIG)
    deadline = time.monotonic() + 60
    while not (folder.parent / "llm-1.0.download.json").exists() or (
        sum(n for _, _, n in saved_spans(folder)) < 16 << 20
    ):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    saved = [Span(start, end, n) for start, end, n in saved_spans(folder)]
    assert [(s.start, s.end) for s in saved] == [(s.start, s.end) for s in PARTS]
    kept = sum(s.done for s in saved)
    assert 0 < kept < SIZE
    assert (folder / f"{BIG}.part").stat().st_size == SIZE  # preallocated
    assert not (folder / BIG).exists()

    gw.proxy.rate = None
    gw.proxy.reset()
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", BIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / BIG).read_bytes() == FILES[BIG]
    # Each part was asked for from where the saved state said it stopped, and no more.
    assert sorted(asked_ranges(gw)) == as_ranges(saved)
    assert gw.proxy.bytes_to_clients < SIZE - kept + (1 << 20)
    assert saved_spans(folder) == []


def test_a_corrupted_object_is_caught_and_nothing_is_kept(gw: Gateway, tmp_path: Path) -> None:
    stored = next(p for p in (gw.home / "objects").rglob(SHA) if p.is_file())
    mode = stored.stat().st_mode
    at = PARTS[2].start + 1000  # inside the third part
    original = FILES[BIG][at]
    stored.chmod(0o600)
    try:
        with stored.open("r+b") as changed:
            changed.seek(at)
            changed.write(bytes([original ^ 0xFF]))
        done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", BIG)
    finally:
        with stored.open("r+b") as changed:
            changed.seek(at)
            changed.write(bytes([original]))
        stored.chmod(mode)
    assert done.returncode == exit_codes.HASH_MISMATCH, done.stdout + done.stderr
    assert f"{BIG} does not match its SHA-256" in done.stderr
    assert "Traceback" not in done.stderr
    folder = tmp_path / "llm-1.0"
    assert not (folder / BIG).exists()
    assert not (folder / f"{BIG}.part").exists()
    assert saved_spans(folder) == []
    assert sorted(asked_ranges(gw)) == as_ranges(PARTS)


def test_a_server_answering_200_to_ranges_is_read_as_one_stream(
    gw: Gateway, tmp_path: Path
) -> None:
    gw.proxy.strip_range = True
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", BIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "llm-1.0" / BIG).read_bytes() == FILES[BIG]
    # The first part asked; the whole file came back, and no other part was asked for.
    assert asked_ranges(gw) == as_ranges(PARTS[:1])
    downloads = re.findall(r"GET /d/\S+ HTTP", gw.proxy.requests_text())
    assert len(downloads) == 1
    assert SIZE <= gw.proxy.bytes_to_clients < SIZE + (1 << 20)
