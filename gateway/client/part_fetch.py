"""One large file fetched as range parts at once, into one preallocated `.part`.

The plan (gateway.client.parts) is saved in the download state before the file is
preallocated, then again as the parts progress, so a run that stops resumes only the
missing bytes of each part. Each part is a worker thread with the single stream's
retries and URL refreshes (FileFetcher.keep_trying, FileFetcher.refused); it writes its
bytes where they belong (`os.pwrite`) and tells the PrefixHasher, which hashes the
file in order on the calling thread as the prefix fills. The digest is checked as for a
single stream.

Only one part asks first. If the server answers its Range with the whole file (200),
it does not do ranges: that one answer then fills every missing part as it streams by,
and no other part is requested.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2

from gateway.client.errors import unexpected
from gateway.client.parts import Span, missing
from gateway.client.prefix_hash import HashingStopped, PrefixHasher
from gateway.client.progress import FileBar
from gateway.client.resume import parse_content_range
from gateway.client.transfer import (
    DOWNLOAD_HEADERS,
    Attempt,
    FileJob,
    Interrupted,
    TooLong,
    Transient,
)

if TYPE_CHECKING:
    from gateway.client.transfer import FileFetcher

# Save the parts' progress after this many more bytes are written: a kill costs at most
# this much again, and the state file is rewritten about 64 times per GiB.
SAVE_EVERY = 16 << 20


class PartedFile:
    """The parts of one file, the workers fetching them and the hash over them."""

    def __init__(
        self, fetcher: FileFetcher, job: FileJob, bar: FileBar, path: Path, spans: list[Span]
    ) -> None:
        self.fetcher = fetcher
        self.job = job
        self.bar = bar
        self.path = path
        self.spans = spans
        self.fetched = 0  # bytes received over the network in this run
        self._lock = threading.Lock()
        self._queue = deque(missing(spans))
        self._unsaved = 0
        self._failed = threading.Event()  # a worker gave up: the others stop too
        self._answered = threading.Event()  # the first answer said whether ranges work
        self._ranges = True

    def run(self) -> str:
        """Fetch the missing parts and return the SHA-256 of the whole file."""
        self.fetcher.state.remember_spans(self.job.path, self.job.sha256, self.job.size, self.spans)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _preallocate(fd, self.job.size)
            hasher = PrefixHasher(fd, self.job.size)
            for span in self.spans:
                hasher.written(span.start, span.offset)
            self.bar.reset(sum(s.done for s in self.spans))
            workers: list[Future[None]] = []
            if self._queue:
                workers.append(self._start(fd, hasher, 0))
                while not self._answered.wait(0.25) and not self._stopped():
                    pass
                if self._ranges and not self._stopped():
                    wanted = min(self.fetcher.parts, len(self._queue) + 1)
                    workers += [self._start(fd, hasher, n) for n in range(1, wanted)]
            try:
                digest = hasher.run(self._stopped)
            except HashingStopped:
                _wait_for(workers)
                raise _first_failure(workers) from None
            except BaseException:  # the file could not be read back: stop the parts
                self._failed.set()
                _wait_for(workers)
                raise
            for worker in workers:
                worker.result()
            self._save()
            os.fsync(fd)  # on disk before the rename, as for a single stream
            return digest
        finally:
            os.close(fd)

    def _stopped(self) -> bool:
        return self.fetcher.stop.is_set() or self._failed.is_set()

    def _start(self, fd: int, hasher: PrefixHasher, number: int) -> Future[None]:
        """A daemon worker (see gateway.client.download) taking spans off the queue."""
        future: Future[None] = Future()
        future.set_running_or_notify_cancel()

        def work() -> None:
            try:
                while (span := self._take()) is not None:
                    self._fetch(fd, hasher, [span])
                future.set_result(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                self._failed.set()
                future.set_exception(exc)
                hasher.give_up()
            finally:
                self._answered.set()  # never leave `run` waiting for a first answer

        name = f"{threading.current_thread().name}-part{number}"
        threading.Thread(target=work, name=name, daemon=True).start()
        return future

    def _take(self) -> Span | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _fetch(self, fd: int, hasher: PrefixHasher, mine: list[Span]) -> None:
        """Fetch `mine` (one span, or every missing one after a 200), with retries."""
        attempt = Attempt(url=self.fetcher.urls.url(self.job.path))
        self.fetcher.keep_trying(
            self.job,
            self.bar,
            lambda: self._attempt(fd, hasher, mine, attempt),
            fetched=lambda: sum(s.done for s in mine),  # this worker's own progress
            finished=lambda: all(s.complete for s in mine),
            stopped=self._stopped,
        )

    def _attempt(self, fd: int, hasher: PrefixHasher, mine: list[Span], attempt: Attempt) -> None:
        todo = missing(mine)
        first, last = todo[0], todo[-1]
        headers = {**DOWNLOAD_HEADERS, "Range": f"bytes={first.offset}-{last.end - 1}"}
        client = self.fetcher.client
        with client.stream("GET", attempt.url, headers=headers) as response:
            status = response.status_code
            if status not in (200, 206, 416):
                attempt.url = self.fetcher.refused(self.job, response, attempt.url)
                return
            if status == 416:
                raise unexpected(
                    f"the server cannot send bytes {first.offset}- of {self.job.path}: its "
                    f"file is shorter than the {self.job.size} bytes the gateway listed"
                )
            start = 0
            if status == 206:
                start = self._check_range(response, first.offset)
            self._decide(ranges=status == 206, mine=mine)
            self._receive(fd, hasher, response, start, missing(mine))

    def _check_range(self, response: httpx2.Response, offset: int) -> int:
        sent = parse_content_range(response.headers.get("content-range"))
        if sent is None or sent.start != offset or sent.total not in (self.job.size, None):
            raise unexpected(
                f"asked for {self.job.path} from byte {offset}, the server sent "
                f"{response.headers.get('content-range') or 'no Content-Range'}"
            )
        return offset

    def _decide(self, *, ranges: bool, mine: list[Span]) -> None:
        """The first answer of the file: a 200 takes every missing span on itself."""
        with self._lock:
            if self._answered.is_set():
                return
            self._ranges = ranges
            if not ranges:
                mine.extend(self._queue)
                self._queue.clear()
        self._answered.set()

    def _receive(
        self,
        fd: int,
        hasher: PrefixHasher,
        response: httpx2.Response,
        start: int,
        todo: Sequence[Span],
    ) -> None:
        """Write the body's bytes that fall in `todo`'s missing stretches; skip the rest."""
        position = start  # of the body's next byte in the file
        end = todo[-1].end
        # The pieces as the socket gives them: re-cutting them to CHUNK would copy every
        # byte once more in Python, and pwrite takes any size (less system time measured
        # with four parts than 256 KiB pieces).
        for chunk in response.iter_bytes():
            after = position + len(chunk)
            if after > self.job.size:
                raise TooLong
            view = memoryview(chunk)
            for span in todo:
                low, high = max(position, span.offset), min(after, span.end)
                if low < high and low == span.offset:
                    _write(fd, view[low - position : high - position], low)
                    span.done += high - low
                    hasher.written(low, high)
                    self._count(high - low)
            position = after
            if position >= end:
                return  # the rest of a whole-file answer is not needed
            if self._stopped():
                raise Interrupted
        if not all(s.complete for s in todo):
            raise Transient(f"the body of {self.job.path} ended early")

    def _count(self, nbytes: int) -> None:
        self.bar.advance(nbytes)
        with self._lock:
            self.fetched += nbytes
            self._unsaved += nbytes
            due = self._unsaved >= SAVE_EVERY
            if due:
                self._unsaved = 0
        if due:
            self._save()

    def _save(self) -> None:
        # `done` only grows, and only after its bytes are written: a saved figure may lag
        # behind the file, never run ahead of it.
        with self._lock:
            spans = [Span(s.start, s.end, s.done) for s in self.spans]
        self.fetcher.state.remember_spans(self.job.path, self.job.sha256, self.job.size, spans)


def _preallocate(fd: int, size: int) -> None:
    """Give the file its final size, its blocks reserved where the filesystem can."""
    if os.fstat(fd).st_size > size:
        os.ftruncate(fd, size)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        os.ftruncate(fd, max(size, os.fstat(fd).st_size))  # no fallocate here: a sparse file


def _write(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def _wait_for(workers: list[Future[None]]) -> None:
    """Every worker must be out before the descriptor is closed: a late pwrite could land
    in whatever file gets its number next. They stop at their next piece, or when a
    stalled read times out."""
    for worker in workers:
        worker.exception()


def _first_failure(workers: list[Future[None]]) -> BaseException:
    """The error to report: a real failure before a worker that was only told to stop."""
    errors = [e for w in workers if (e := w.exception()) is not None]
    real = [e for e in errors if not isinstance(e, Interrupted)]
    return (real or errors or [Interrupted()])[0]
