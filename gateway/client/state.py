"""What a download remembers between runs, kept beside the folder in `DIR.download.json`.

- Download ids: a run after an interruption sends them back (`continue`), so resuming
  never spends another unit of the download quota.
- Files already verified, with the size, times and inode they had then: a second run
  skips them without hashing gigabytes again. The inode change time (ctime) cannot be
  set back by a user, so any write to a file after it was verified is noticed.
- The range parts of a large file still being fetched (gateway.client.parts), with the
  bytes of each already written: a preallocated `.part` has the file's size from the
  start, so only this says what is in it. It is saved before the file is preallocated
  and as the parts progress; it may lag behind the file (those bytes are fetched
  again), never run ahead of it.

The file lives outside the folder so that the folder holds exactly the release and the
standard `model_signing verify` sees nothing else. Losing it only costs time (files are
hashed again) or, at worst, one quota unit.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.client import parts
from gateway.client.parts import Span

FORMAT = 1


def sibling(folder: Path, suffix: str) -> Path:
    """`/x/llm-1.0` + `.sig` -> `/x/llm-1.0.sig`."""
    return folder.with_name(folder.name + suffix)


@dataclass(frozen=True)
class FileStamp:
    """The identity of a file on disk at a moment; any write changes it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileStamp:
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


class DownloadState:
    """Download ids and verified files of one release in one folder; thread-safe."""

    def __init__(self, path: Path, release: str) -> None:
        self.path = path
        self.release = release
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}
        self._verified: dict[str, tuple[str, FileStamp]] = {}
        self._parts: dict[str, tuple[str, int, list[list[int]]]] = {}  # sha256, size, spans

    @classmethod
    def load(cls, path: Path, release: str) -> DownloadState:
        """The saved state, or an empty one if missing, unreadable or for another release."""
        state = cls(path, release)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("release") != release:
                return state
            state._ids = {str(k): str(v) for k, v in data.get("download_ids", {}).items()}
            state._verified = {
                str(k): (str(v["sha256"]), FileStamp(**v["stamp"]))
                for k, v in data.get("verified", {}).items()
            }
            state._parts = {
                str(k): (str(v["sha256"]), int(v["size"]), list(v["spans"]))
                for k, v in data.get("parts", {}).items()
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            # A damaged state file is not worth failing a download for.
            return cls(path, release)
        return state

    def download_ids(self, paths: list[str] | None = None) -> dict[str, str]:
        with self._lock:
            if paths is None:
                return dict(self._ids)
            return {p: self._ids[p] for p in paths if p in self._ids}

    def remember_ids(self, ids: dict[str, str]) -> None:
        with self._lock:
            self._ids.update(ids)
            self._save()

    def is_verified(self, path: str, sha256: str, stamp: FileStamp) -> bool:
        with self._lock:
            return self._verified.get(path) == (sha256, stamp)

    def remember_verified(self, path: str, sha256: str, stamp: FileStamp) -> None:
        with self._lock:
            self._verified[path] = (sha256, stamp)
            self._parts.pop(path, None)
            self._save()

    def spans(self, path: str, sha256: str, size: int) -> list[Span] | None:
        """The saved parts of a file of this digest and size, or None."""
        with self._lock:
            saved = self._parts.get(path)
        if saved is None or saved[:2] != (sha256, size):
            return None
        return parts.from_json(saved[2], size)

    def remember_spans(self, path: str, sha256: str, size: int, spans: list[Span]) -> None:
        with self._lock:
            self._parts[path] = (sha256, size, parts.to_json(spans))
            self._save()

    def forget_spans(self, path: str) -> None:
        with self._lock:
            if self._parts.pop(path, None) is not None:
                self._save()

    def _save(self) -> None:
        data: dict[str, Any] = {
            "format": FORMAT,
            "release": self.release,
            "download_ids": self._ids,
            "verified": {
                path: {"sha256": sha, "stamp": stamp.__dict__}
                for path, (sha, stamp) in sorted(self._verified.items())
            },
            "parts": {
                path: {"sha256": sha, "size": size, "spans": spans}
                for path, (sha, size, spans) in sorted(self._parts.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = sibling(self.path, ".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)  # a kill mid-write never leaves half a file
