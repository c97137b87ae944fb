"""Progress on stderr: a bar per file being fetched and one for the whole release.

Workers report from their threads; rich's Progress takes its own lock, so that is safe.
Bytes already on disk when the run starts are counted as done from the beginning, not
advanced, so a resumed download does not show a burst of imaginary speed.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class FileBar(Protocol):
    def advance(self, nbytes: int) -> None:
        """`nbytes` more of this file arrived."""

    def reset(self, on_disk: int) -> None:
        """Exactly `on_disk` bytes of this file are kept (after a check, or a restart)."""

    def note(self, text: str) -> None:
        """Say what is happening to the file (checking, retrying...)."""

    def close(self) -> None:
        """The file is done (or given up): remove its bar."""


class TransferProgress(Protocol):
    def __enter__(self) -> TransferProgress: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def start(self, files: int, total_bytes: int, on_disk: int) -> None:
        """The run begins: `on_disk` bytes of `total_bytes` are already there."""

    def file(self, path: str, size: int, on_disk: int) -> FileBar:
        """A worker takes up a file of which `on_disk` bytes are already there."""


class _NoBar:
    def advance(self, nbytes: int) -> None:
        pass

    def reset(self, on_disk: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class Silent:
    """--quiet: no progress at all."""

    def __enter__(self) -> Silent:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass

    def start(self, files: int, total_bytes: int, on_disk: int) -> None:
        pass

    def file(self, path: str, size: int, on_disk: int) -> FileBar:
        return _NoBar()


class _RichBar:
    """One file's bar; the range parts of a file advance it from several threads."""

    def __init__(self, owner: Bars, task: TaskID, path: str, on_disk: int) -> None:
        self._owner = owner
        self._task = task
        self._path = path
        self._done = on_disk
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done += nbytes
        self._owner.progress.advance(self._task, nbytes)
        self._owner.advance_total(nbytes)

    def reset(self, on_disk: int) -> None:
        with self._lock:
            change = on_disk - self._done
        if change:
            self.advance(change)

    def note(self, text: str) -> None:
        label = f"{self._path} ({text})" if text else self._path
        self._owner.progress.update(self._task, description=label)

    def close(self) -> None:
        self._owner.progress.remove_task(self._task)


class Bars:
    """rich bars on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self._total: TaskID | None = None

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def start(self, files: int, total_bytes: int, on_disk: int) -> None:
        self._total = self.progress.add_task(
            f"total: {files} files", total=total_bytes, completed=on_disk
        )

    def advance_total(self, nbytes: int) -> None:
        if self._total is not None:
            self.progress.advance(self._total, nbytes)

    def file(self, path: str, size: int, on_disk: int) -> FileBar:
        task = self.progress.add_task(path, total=size, completed=on_disk)
        return _RichBar(self, task, path, on_disk)
