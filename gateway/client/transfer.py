"""Fetching one file: resume from its `.part`, hash while writing, verify, then rename.

Every byte is hashed exactly once: the part already on disk before the request, then
each chunk as it arrives. The final name only ever holds a file whose SHA-256 matched;
a mismatch deletes the part, since appending to it again would fail the same way.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx2

from gateway.client import retry
from gateway.client.api import refusal
from gateway.client.errors import hash_mismatch, network_failure, unexpected
from gateway.client.paths import part_path
from gateway.client.progress import FileBar
from gateway.client.refresh import UrlBook
from gateway.client.resume import CHUNK, Action, plan_reply, range_headers, resume_offset
from gateway.client.state import DownloadState, FileStamp
from stages.access import Reason

# Ask for the stored bytes as they are: ranges count those bytes, and decoding a
# compressed body would only cost CPU. (Should a proxy compress anyway, iter_bytes
# decodes it, so a whole-file answer still hashes right.)
_DOWNLOAD_HEADERS = {"Accept-Encoding": "identity"}


class Interrupted(Exception):
    """The run is stopping (Ctrl-C, or another file failed); the part stays for a resume."""


class _Transient(Exception):
    """A failure worth retrying from what is on disk."""


_RETRYABLE: tuple[type[Exception], ...] = (*retry.TRANSIENT_ERRORS, _Transient)


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


def bytes_on_disk(job: FileJob) -> int:
    """What the run can likely reuse, for the progress total (a guess: nothing is read)."""
    try:
        if job.target.stat().st_size == job.size:
            return job.size
    except OSError:
        pass
    try:
        return resume_offset(part_path(job.target).stat().st_size, job.size)
    except OSError:
        return 0


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
    ) -> None:
        self.client = client
        self.urls = urls
        self.state = state
        self.stop = stop
        self.delays = retry.DELAYS if delays is None else delays

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
        hasher = hashlib.sha256()
        try:
            existing: int | None = path.stat().st_size
        except FileNotFoundError:
            existing = None
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
            except _TooLong:
                sink.close()
                path.unlink()
                raise hash_mismatch(
                    f"the server sent more than the {job.size} bytes of {job.path}; "
                    "the partial file was deleted"
                ) from None
        digest = part.hasher.hexdigest()
        if digest != job.sha256:
            path.unlink()
            raise hash_mismatch(
                f"{job.path} does not match its SHA-256 (expected {job.sha256}, got {digest}); "
                "the partial file was deleted, run again to download it afresh"
            )
        os.replace(path, job.target)
        self.state.remember_verified(job.path, job.sha256, FileStamp.of(job.target.stat()))
        self.urls.done(job.path)
        return FileResult(job.path, job.size, fetched=part.fetched, skipped=False)

    def _receive(self, job: FileJob, part: _Part) -> None:
        """Append the rest of the file to the part, retrying transient failures."""
        failures = 0
        attempt = _Attempt(url=self.urls.url(job.path))
        while part.offset < job.size:
            if self.stop.is_set():
                raise Interrupted
            before = part.fetched
            try:
                self._attempt(job, part, attempt)
            except _RETRYABLE as exc:
                if part.fetched > before:
                    failures = 0  # progress was made: this is a new run of bad luck
                    self.urls.progressed(job.path)
                failures += 1
                if failures > len(self.delays):
                    raise network_failure(
                        f"{job.path}: gave up after {failures} attempts ({retry.describe(exc)}); "
                        "run again to resume"
                    ) from exc
                part.bar.note(f"retrying: {retry.describe(exc)}")
                part.sink.flush()
                if self.stop.wait(self.delays[failures - 1]):
                    raise Interrupted from exc
                part.bar.note("")

    def _attempt(self, job: FileJob, part: _Part, attempt: _Attempt) -> None:
        """One request for the rest of the file; returns early to try again at once."""
        headers = {**_DOWNLOAD_HEADERS, **range_headers(part.offset)}
        with self.client.stream("GET", attempt.url, headers=headers) as response:
            if response.status_code not in (200, 206, 416):
                attempt.url = self._refused(job, response, attempt.url)
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
                    raise _TooLong
                part.append(chunk)
                if self.stop.is_set():
                    raise Interrupted
            if part.offset < job.size:
                raise _Transient(f"the body of {job.path} ended early")

    def _refused(self, job: FileJob, response: httpx2.Response, url: str) -> str:
        """The URL to try next after a non-2xx answer, or raise why not to."""
        response.read()
        status = response.status_code
        if response.history and status in (400, 403):
            # Object storage behind a redirect refused its presigned URL (it expired on
            # the way, or the clock is off); the gateway presigns a new one each time.
            raise _Transient(f"object storage answered HTTP {status}")
        error = refusal(response)
        if error.code == Reason.URL_EXPIRED:
            return self.urls.refresh(job.path, url)
        if retry.is_transient_status(status):
            raise _Transient(f"HTTP {status}")
        raise error


@dataclass
class _Attempt:
    url: str  # the URL to ask next (it changes when the gateway refreshes it)
    discarded: bool = False  # the part was already dropped once on the server's word


class _TooLong(Exception):
    """The server sent more bytes than the file has."""


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
