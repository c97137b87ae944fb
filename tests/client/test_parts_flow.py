"""Large files in range parts against the in-memory gateway: every request is visible, and
every misbehaviour can be staged at an exact byte.

The threshold is lowered to 1 MiB so the 3 MiB sample file goes in three parts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import httpx2
import pytest

from gateway.client import exit_codes, retry
from gateway.client.api import GatewayApi
from gateway.client.download import DownloadRequest, DownloadSummary, download_release
from gateway.client.errors import DownloadFailed
from gateway.client.parts import split
from gateway.client.progress import FileBar, Silent, TransferProgress
from gateway.client.selection import Selection
from stages.names import parse_model_ref
from tests.client.fake_gateway import BASE, KEY, SAMPLE_FILES, FakeGateway

FILES = SAMPLE_FILES
BIG = "model.safetensors"
SIZE = len(FILES[BIG])
ONLY_BIG = Selection.parse([], [BIG])


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
def fake(tmp_path: Path) -> FakeGateway:
    return FakeGateway(tmp_path / "server", FILES)


class Counted:
    """A progress display that adds up what it is told, per file, from any thread."""

    def __init__(self) -> None:
        self.on_disk_at_start = 0
        self.done: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, files: int, total_bytes: int, on_disk: int) -> None:
        self.on_disk_at_start = on_disk

    def file(self, path: str, size: int, on_disk: int) -> FileBar:
        self.done[path] = on_disk
        counted = self

        class Bar:
            def advance(self, nbytes: int) -> None:
                with counted._lock:
                    counted.done[path] += nbytes

            def reset(self, on_disk: int) -> None:
                with counted._lock:
                    counted.done[path] = on_disk

            def note(self, text: str) -> None:
                pass

            def close(self) -> None:
                pass

        return Bar()


def run(
    fake: FakeGateway, folder: Path, parts: int = 3, progress: TransferProgress | None = None
) -> DownloadSummary:
    with httpx2.Client(transport=fake.transport(), follow_redirects=True) as client:
        return download_release(
            GatewayApi(client, BASE, KEY),
            DownloadRequest(
                parse_model_ref("acme/sample"),
                "1.0",
                folder,
                ONLY_BIG,
                parallel=2,
                parts=parts,
                parts_from=1 << 20,
            ),
            progress or Silent(),
            warn=lambda _: None,
        )


def ranges(fake: FakeGateway) -> list[str]:
    return sorted((r.headers.get("range", "") for r in fake.downloads(BIG)), key=_first_byte)


def _first_byte(header: str) -> int:
    return int(header.removeprefix("bytes=").split("-")[0] or 0)


def expected_ranges(parts: int) -> list[str]:
    return [f"bytes={s.start}-{s.end - 1}" for s in split(SIZE, parts)]


def test_three_parts_give_the_exact_file(fake: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    progress = Counted()
    summary = run(fake, folder, progress=progress)
    assert progress.done == {BIG: SIZE}  # the parts' bytes, each counted once
    assert (folder / BIG).read_bytes() == FILES[BIG]
    assert summary.fetched_bytes == SIZE
    assert ranges(fake) == expected_ranges(3)
    assert not (folder / f"{BIG}.part").exists()
    state = json.loads((tmp_path / "d.download.json").read_text())
    assert state["parts"] == {}  # verified: nothing left to resume
    assert BIG in state["verified"]


def test_one_part_is_one_plain_stream(fake: FakeGateway, tmp_path: Path) -> None:
    run(fake, tmp_path / "d", parts=1)
    assert (tmp_path / "d" / BIG).read_bytes() == FILES[BIG]
    assert ranges(fake) == [""]


def test_a_part_cut_midway_is_asked_again_from_where_it_stopped(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.drop_after = 300_000  # the first answer (the first part) breaks off
    progress = Counted()
    run(fake, tmp_path / "d", progress=progress)
    assert progress.done == {BIG: SIZE}  # the broken-off tail was not counted twice
    assert (tmp_path / "d" / BIG).read_bytes() == FILES[BIG]
    first, *rest = expected_ranges(3)
    # Every byte that arrived was written: the part goes on from the first one that did not.
    assert ranges(fake) == [first, f"bytes=300000-{first.split('-')[1]}", *rest]


def test_a_server_ignoring_ranges_is_read_once_as_a_single_stream(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.ignore_range = True
    summary = run(fake, tmp_path / "d")
    assert (tmp_path / "d" / BIG).read_bytes() == FILES[BIG]
    assert ranges(fake) == [expected_ranges(3)[0]]  # asked for a range, got everything
    assert summary.fetched_bytes == SIZE


def test_expired_urls_are_refreshed_for_every_part(fake: FakeGateway, tmp_path: Path) -> None:
    fake.behaviour.expire_first = 1
    run(fake, tmp_path / "d")
    assert (tmp_path / "d" / BIG).read_bytes() == FILES[BIG]
    assert len(fake.manifest_bodies) == 2  # the first URL expired once, refreshed once
    assert ranges(fake) == sorted([expected_ranges(3)[0], *expected_ranges(3)], key=_first_byte)


def test_a_wrong_file_is_a_hash_mismatch_and_leaves_nothing_to_resume(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.corrupt = {BIG}
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d")
    assert caught.value.exit_code == exit_codes.HASH_MISMATCH
    assert f"{BIG} does not match its SHA-256" in caught.value.message
    assert not (tmp_path / "d" / BIG).exists()
    assert not (tmp_path / "d" / f"{BIG}.part").exists()
    assert json.loads((tmp_path / "d.download.json").read_text())["parts"] == {}


def test_saved_parts_resume_only_their_missing_bytes(fake: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    spans = split(SIZE, 3)
    done = [100_000, 0, spans[2].end - spans[2].start]  # part 2 is complete
    part = bytearray(SIZE)
    for span, count in zip(spans, done, strict=True):
        part[span.start : span.start + count] = FILES[BIG][span.start : span.start + count]
    (folder / f"{BIG}.part").write_bytes(part)
    sha = hashlib.sha256(FILES[BIG]).hexdigest()
    saved = [[s.start, s.end, n] for s, n in zip(spans, done, strict=True)]
    (tmp_path / "d.download.json").write_text(
        json.dumps(
            {
                "format": 1,
                "release": "acme/sample:1.0",
                "parts": {BIG: {"sha256": sha, "size": SIZE, "spans": saved}},
            }
        )
    )
    progress = Counted()
    summary = run(fake, folder, parts=4, progress=progress)  # the saved plan wins over --parts
    assert progress.on_disk_at_start == sum(done)  # not the preallocated size
    assert progress.done == {BIG: SIZE}
    assert (folder / BIG).read_bytes() == FILES[BIG]
    assert ranges(fake) == [
        f"bytes={spans[0].start + 100_000}-{spans[0].end - 1}",
        f"bytes={spans[1].start}-{spans[1].end - 1}",
    ]
    assert summary.fetched_bytes == SIZE - sum(done)


def test_a_file_that_cannot_be_read_back_stops_every_part_and_keeps_them(
    fake: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(fd: int, buffers: list[memoryview], offset: int) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("gateway.client.prefix_hash.os.preadv", unreadable)
    with pytest.raises(OSError, match="Input/output error"):
        run(fake, tmp_path / "d")
    part = tmp_path / "d" / f"{BIG}.part"
    assert part.stat().st_size == SIZE
    assert not (tmp_path / "d" / BIG).exists()
    # What was written is in the state: the next run carries on from there.
    saved = json.loads((tmp_path / "d.download.json").read_text())["parts"][BIG]["spans"]
    assert [(start, end) for start, end, _ in saved] == [(s.start, s.end) for s in split(SIZE, 3)]
