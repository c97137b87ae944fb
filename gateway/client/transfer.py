"""Fetching one file: resume from its `.part`, hash while writing, verify, then rename.

Every byte is hashed exactly once: the part already on disk before the request, then
each chunk as it arrives. The final name only ever holds a file whose SHA-256 matched;
a mismatch deletes the part, since appending to it again would fail the same way.
A large file goes as several range parts at once (gateway.client.part_fetch); the
retries, URL refreshes and the final check are the same for its parts as here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx2

from gateway.client import retry
from gateway.client.api import refusal
from gateway.client.errors import DownloadFailed, hash_mismatch, network_failure, unexpected
from gateway.client.parts import PARTS_FROM, Span, split, written_bytes
from gateway.client.paths import part_path
from gateway.client.progress import FileBar
from gateway.client.refresh import UrlBook
from gateway.client.resume import CHUNK, Action, plan_reply, range_headers, resume_offset
from gateway.client.state import DownloadState, FileStamp
from stages.access import Reason

# Ask for the stored bytes as they are: ranges count those bytes, and decoding a
# compressed body would only cost CPU. (Should a proxy compress anyway, iter_bytes
# decodes it, so a whole-file answer still hashes right.)
DOWNLOAD_HEADERS = {"Accept-Encoding": "identity"}


class Interrupted(Exception):
    """The run is stopping (Ctrl-C, or another file failed); the part stays for a resume."""


class Transient(Exception):
    """A failure worth retrying from what is on disk."""


class TooLong(Exception):
    """The server sent more bytes than the file has."""


_RETRYABLE: tuple[type[Exception], ...] = (*retry.TRANSIENT_ERRORS, Transient)


@dataclass(frozen=True)
class FileJob:
    path: str  # as the release names it
    target: Path  # where it ends up, already checked to be inside the folder
    size: int
    sha256: str


@dataclass(frozen=True)
class FileResult:
    path: str
    size: int
    fetched: int  # bytes that came over the network in this run
    skipped: bool  # it was already complete and verified


def bytes_on_disk(job: FileJob, state: DownloadState) -> int:
    """What the run can likely reuse, for the progress total (a guess: nothing is read)."""
    try:
        if job.target.stat().st_size == job.size:
            return job.size
    except OSError:
        pass
    try:
        on_disk = part_path(job.target).stat().st_size
    except OSError:
        return 0
    spans = state.spans(job.path, job.sha256, job.size)
    if spans is not None and on_disk == job.size:
        return written_bytes(spans)  # preallocated: its size says nothing
    return resume_offset(on_disk, job.size)


def sha256_of(path: Path, stop: threading.Event, hasher: hashlib._Hash | None = None) -> str:
    """Hash a file in 1 MiB reads (into one reused buffer); `hasher` may carry on."""
    if hasher is None:
        hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as source:
        while read := source.readinto(buffer):
            hasher.update(view[:read])
            if stop.is_set():
                raise Interrupted
    return hasher.hexdigest()


class FileFetcher:
    """Fetches files of one download; one instance is shared by the worker threads."""

    def __init__(
        self,
        client: httpx2.Client,
        urls: UrlBook,
        state: DownloadState,
        stop: threading.Event,
        delays: tuple[float, ...] | None = None,
        *,
        parts: int = 1,
        parts_from: int = PARTS_FROM,
    ) -> None:
        self.client = client
        self.urls = urls
        self.state = state
        self.stop = stop
        self.delays = retry.DELAYS if delays is None else delays
        self.parts = parts  # range requests at once for a file of `parts_from` bytes or more
        self.parts_from = parts_from

    def fetch(self, job: FileJob, bar: FileBar) -> FileResult:
        try:
            if self._already_complete(job, bar):
                self.urls.done(job.path)  # a URL refresh need not ask for it again
                return FileResult(job.path, job.size, fetched=0, skipped=True)
            return self._download(job, bar)
        finally:
            bar.close()

    def _already_complete(self, job: FileJob, bar: FileBar) -> bool:
        """True when the final file is there and verified; removes it if it is wrong."""
        try:
            stamp = FileStamp.of(job.target.stat())
        except FileNotFoundError:
            return False
        if stamp.size == job.size:
            if self.state.is_verified(job.path, job.sha256, stamp):
                return True
            bar.note("checking")
            if sha256_of(job.target, self.stop) == job.sha256:
                self.state.remember_verified(job.path, job.sha256, stamp)
                return True
        # Whatever this is, it is not the release's file: it must not keep the name.
        job.target.unlink()
        bar.reset(0)
        return False

    def _download(self, job: FileJob, bar: FileBar) -> FileResult:
        path = part_path(job.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            existing: int | None = path.stat().st_size
        except FileNotFoundError:
            existing = None
        spans = self._spans(job, existing)
        if spans is not None:
            from gateway.client.part_fetch import PartedFile

            parted = PartedFile(self, job, bar, path, spans)
            try:
                digest = parted.run()
            except TooLong:
                path.unlink()
                self.state.forget_spans(job.path)
                raise _too_long(job) from None
            self._finish(job, path, digest)
            return FileResult(job.path, job.size, fetched=parted.fetched, skipped=False)
        hasher = hashlib.sha256()
        offset = resume_offset(existing, job.size)
        if existing is not None and offset != existing:
            path.unlink()  # longer than the file: it cannot be a start of it
        elif offset:
            bar.note("checking")
            sha256_of(path, self.stop, hasher)
        bar.reset(offset)
        bar.note("")
        with path.open("ab", buffering=CHUNK) as sink:
            part = _Part(sink, hasher, offset, bar)
            try:
                self._receive(job, part)
                # On disk before the rename and the "verified" stamp in DIR.download.json:
                # a crash must not leave a final name over data still in the page cache.
                sink.flush()
                os.fsync(sink.fileno())
            except TooLong:
                sink.close()
                path.unlink()
                raise _too_long(job) from None
        self._finish(job, path, part.hasher.hexdigest())
        return FileResult(job.path, job.size, fetched=part.fetched, skipped=False)

    def _spans(self, job: FileJob, existing: int | None) -> list[Span] | None:
        """The range parts to fetch the file in, or None for one stream.

        Parts saved by an earlier run are carried on, whatever `parts` says now; a `.part`
        from a single stream keeps its bytes as the first, finished span.
        """
        saved = self.state.spans(job.path, job.sha256, job.size)
        if saved is not None and existing == job.size:
            return saved
        if saved is not None:
            self.state.forget_spans(job.path)  # its `.part` is gone or was replaced
        if self.parts < 2 or job.size < self.parts_from:
            return None
        return split(job.size, self.parts, resume_offset(existing, job.size))

    def _finish(self, job: FileJob, path: Path, digest: str) -> None:
        """Give the part its final name if its digest is the release's; else delete it."""
        if digest != job.sha256:
            path.unlink()
            self.state.forget_spans(job.path)
            raise hash_mismatch(
                f"{job.path} does not match its SHA-256 (expected {job.sha256}, got {digest}); "
                "the partial file was deleted, run again to download it afresh"
            )
        os.replace(path, job.target)
        self.state.remember_verified(job.path, job.sha256, FileStamp.of(job.target.stat()))
        self.urls.done(job.path)

    def _receive(self, job: FileJob, part: _Part) -> None:
        """Append the rest of the file to the part, retrying transient failures."""
        attempt = Attempt(url=self.urls.url(job.path))

        def step() -> None:
            try:
                self._attempt(job, part, attempt)
            finally:
                part.sink.flush()  # a kill while waiting to retry keeps what arrived

        self.keep_trying(
            job,
            part.bar,
            step,
            fetched=lambda: part.fetched,
            finished=lambda: part.offset >= job.size,
            stopped=self.stop.is_set,
        )

    def keep_trying(
        self,
        job: FileJob,
        bar: FileBar,
        step: Callable[[], None],
        *,
        fetched: Callable[[], int],
        finished: Callable[[], bool],
        stopped: Callable[[], bool],
    ) -> None:
        """Run `step` until `finished`, retrying transient failures with backoff.

        The count of failures starts over whenever a step brought bytes: only a run of
        attempts that get nowhere gives up.
        """
        failures = 0
        while not finished():
            if stopped():
                raise Interrupted
            before = fetched()
            try:
                step()
            except _RETRYABLE as exc:
                if fetched() > before:
                    failures = 0  # progress was made: this is a new run of bad luck
                    self.urls.progressed(job.path)
                failures += 1
                if failures > len(self.delays):
                    raise network_failure(
                        f"{job.path}: gave up after {failures} attempts ({retry.describe(exc)}); "
                        "run again to resume"
                    ) from exc
                bar.note(f"retrying: {retry.describe(exc)}")
                if self.stop.wait(self.delays[failures - 1]) or stopped():
                    raise Interrupted from exc
                bar.note("")

    def _attempt(self, job: FileJob, part: _Part, attempt: Attempt) -> None:
        """One request for the rest of the file; returns early to try again at once."""
        headers = {**DOWNLOAD_HEADERS, **range_headers(part.offset)}
        with self.client.stream("GET", attempt.url, headers=headers) as response:
            if response.status_code not in (200, 206, 416):
                attempt.url = self.refused(job, response, attempt.url)
                return
            action = plan_reply(
                response.status_code, part.offset, job.size, response.headers.get("content-range")
            )
            if action is Action.DISCARD:
                if attempt.discarded:
                    raise unexpected(f"the server cannot send {job.path} from the start")
                attempt.discarded = True
                part.restart()
                return
            if action is Action.REPLACE:
                part.restart()
            for chunk in response.iter_bytes(CHUNK):
                if part.offset + len(chunk) > job.size:
                    raise TooLong
                part.append(chunk)
                if self.stop.is_set():
                    raise Interrupted
            if part.offset < job.size:
                raise Transient(f"the body of {job.path} ended early")

    def refused(self, job: FileJob, response: httpx2.Response, url: str) -> str:
        """The URL to try next after a non-2xx answer, or raise why not to."""
        response.read()
        status = response.status_code
        if response.history and status in (400, 403):
            # Object storage behind a redirect refused its presigned URL (it expired on
            # the way, or the clock is off); the gateway presigns a new one each time.
            raise Transient(f"object storage answered HTTP {status}")
        error = refusal(response)
        if error.code == Reason.URL_EXPIRED:
            return self.urls.refresh(job.path, url)
        if retry.is_transient_status(status):
            raise Transient(f"HTTP {status}")
        raise error


def _too_long(job: FileJob) -> DownloadFailed:
    return hash_mismatch(
        f"the server sent more than the {job.size} bytes of {job.path}; "
        "the partial file was deleted"
    )


@dataclass
class Attempt:
    url: str  # the URL to ask next (it changes when the gateway refreshes it)
    discarded: bool = False  # the part was already dropped once on the server's word


class _Part:
    """The `.part` being written: its open file, running hash, and how far it goes."""

    def __init__(self, sink: BinaryIO, hasher: hashlib._Hash, offset: int, bar: FileBar) -> None:
        self.sink = sink
        self.hasher = hasher
        self.offset = offset
        self.fetched = 0  # bytes received over the network in this run
        self.bar = bar

    def append(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)
        self.fetched += len(chunk)
        self.bar.advance(len(chunk))

    def restart(self) -> None:
        """Drop what the part holds: the next bytes are the start of the file."""
        self.sink.truncate(0)
        self.sink.seek(0)
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.bar.reset(0)
