"""What a download remembers between runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.client.state import DownloadState, FileStamp, sibling


def test_ids_and_verified_files_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "llm-1.0.download.json"
    state = DownloadState.load(path, "acme/llm:1.0")
    state.remember_ids({"a.bin": "id-a", "b.bin": "id-b"})
    (tmp_path / "a.bin").write_bytes(b"x")
    stamp = FileStamp.of((tmp_path / "a.bin").stat())
    state.remember_verified("a.bin", "ab" * 32, stamp)

    again = DownloadState.load(path, "acme/llm:1.0")
    assert again.download_ids() == {"a.bin": "id-a", "b.bin": "id-b"}
    assert again.download_ids(["b.bin", "c.bin"]) == {"b.bin": "id-b"}
    assert again.is_verified("a.bin", "ab" * 32, stamp)
    assert not again.is_verified("a.bin", "cd" * 32, stamp)


def test_a_write_after_verification_is_noticed(tmp_path: Path) -> None:
    state = DownloadState(tmp_path / "s.json", "acme/llm:1.0")
    file = tmp_path / "a.bin"
    file.write_bytes(b"x")
    stamp = FileStamp.of(file.stat())
    state.remember_verified("a.bin", "ab" * 32, stamp)
    time.sleep(0.02)  # file times tick with the kernel clock, a few milliseconds at a time
    file.write_bytes(b"y")  # same size
    os.utime(file, ns=(stamp.mtime_ns, stamp.mtime_ns))  # even with the old mtime put back
    assert not state.is_verified("a.bin", "ab" * 32, FileStamp.of(file.stat()))


def test_another_release_or_a_damaged_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    DownloadState.load(path, "acme/llm:1.0").remember_ids({"a": "1"})
    assert DownloadState.load(path, "acme/llm:2.0").download_ids() == {}
    path.write_text("{not json")
    assert DownloadState.load(path, "acme/llm:1.0").download_ids() == {}
    path.write_text('{"format": 1, "release": "acme/llm:1.0", "verified": {"a": 3}}')
    assert DownloadState.load(path, "acme/llm:1.0").download_ids() == {}


def test_sibling() -> None:
    assert sibling(Path("/x/llm-1.0"), ".sig") == Path("/x/llm-1.0.sig")
