"""Objects as files in a local directory.

Layout: `<root>/objects/ab/cd/<sha256>` for stored objects (two fan-out levels keep
directories small) and `<root>/tmp/` for writes in flight. Both sit under one root, so on
one filesystem, which is what makes `os.replace` from tmp/ into objects/ atomic: a reader
sees the whole object or none.

A write in flight holds an exclusive lock (flock) on its `tmp/<uuid>.incoming` file from
the moment the file exists until it is renamed or removed; the kernel drops the lock when
its process dies, however it dies. So an `.incoming` file nobody holds is the debris of a
killed write, and remove_stale_uploads() removes exactly those. A file is created and
locked while holding a shared lock on `<root>/writers.lock`, and the sweep holds that lock
exclusively, so it never sees a file in the instant between its creation and its lock.
"""

import contextlib
import fcntl
import io
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gateway.storage.interface import (
    HashingReader,
    ObjectNotFound,
    ProgressCallback,
    StorageError,
    StoredObject,
    source_error,
    validate_sha256,
)

logger = logging.getLogger(__name__)

INCOMING_SUFFIX = ".incoming"

# Small enough to stay in the CPU cache while it is hashed and copied: 8 MiB chunks made
# each write() go through main memory and took three times as long (see BENCHMARKS.md).
LOCAL_CHUNK_SIZE = 256 * 1024


class LocalStorage:
    """A Storage in a directory on this machine."""

    def __init__(self, root: Path, *, chunk_size: int = LOCAL_CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self._root = root.absolute()
        self._objects = self._root / "objects"
        self._tmp = self._root / "tmp"
        self._writers_lock = self._root / "writers.lock"
        self._chunk_size = chunk_size
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("cannot create the store's directories", exc) from exc

    @property
    def root(self) -> Path:
        """The directory that holds objects/ and tmp/."""
        return self._root

    def describe(self) -> str:
        """The store's file:// URL."""
        return self._root.as_uri()

    def put_file(self, path: Path, *, on_progress: ProgressCallback | None = None) -> StoredObject:
        """Copy a file into the store (see Storage.put_file)."""
        try:
            source = path.open("rb")
        except OSError as exc:
            raise source_error(path, exc) from exc
        with source:
            return self._put(HashingReader(source, name=str(path)), on_progress)

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes held in memory."""
        return self._put(HashingReader(io.BytesIO(data), name="the given bytes"), None)

    def exists(self, sha256: str) -> bool:
        """Whether the object's file exists."""
        return self._object_path(sha256).is_file()

    def size(self, sha256: str) -> int:
        """The size of the object's file."""
        path = self._object_path(sha256)
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise self._not_found(sha256) from exc
        except OSError as exc:
            raise self._error(f"cannot stat object {sha256}", exc) from exc

    def open_read(self, sha256: str) -> BinaryIO:
        """Open the object's file."""
        path = self._object_path(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError as exc:
            raise self._not_found(sha256) from exc
        except OSError as exc:
            raise self._error(f"cannot open object {sha256}", exc) from exc

    def local_path(self, sha256: str) -> Path:
        """The object's file, for zero-copy sending; ObjectNotFound if absent."""
        path = self._object_path(sha256)
        if not path.is_file():
            raise self._not_found(sha256)
        return path

    def internal_path(self, sha256: str) -> str:
        """ "ab/cd/<sha256>": the object's file below `<root>/objects/`."""
        return self._object_path(sha256).relative_to(self._objects).as_posix()

    def presigned_get_url(self, sha256: str, *, expires_seconds: int, filename: str) -> None:
        """None: the gateway serves local objects itself."""
        validate_sha256(sha256)

    def delete(self, sha256: str) -> None:
        """Remove the object's file, if there is one."""
        path = self._object_path(sha256)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._error(f"cannot delete object {sha256}", exc) from exc

    def check(self) -> None:
        """Write, sync and remove a probe file in tmp/, and make sure objects/ is there."""
        probe = self._tmp / f"check-{uuid.uuid4().hex}"
        try:
            if not self._objects.is_dir():
                raise FileNotFoundError(2, "No such directory", str(self._objects))
            with probe.open("xb") as out:
                out.write(b"ok")
                out.flush()
                os.fsync(out.fileno())
            probe.unlink()
        except OSError as exc:
            _remove_quietly(probe)
            raise self._error("not writable", exc) from exc

    def remove_stale_uploads(self) -> int:
        """Remove the `.incoming` files of writes that died; return how many were removed."""
        removed = 0
        with self._writers(fcntl.LOCK_EX):
            try:
                entries = [e for e in self._tmp.iterdir() if e.name.endswith(INCOMING_SUFFIX)]
            except OSError as exc:
                raise self._error("cannot list the temporary files", exc) from exc
            for entry in entries:
                if _unlocked(entry):
                    _remove_quietly(entry)
                    removed += 1
        if removed:
            logger.info("%s: removed %d file(s) of interrupted writes", self.describe(), removed)
        return removed

    def _put(self, reader: HashingReader, on_progress: ProgressCallback | None) -> StoredObject:
        # The final name depends on the hash, known only at the end: write to tmp/ first.
        # The mode leaves the rest to the umask, as for any file the process creates.
        temp = self._tmp / f"{uuid.uuid4().hex}{INCOMING_SUFFIX}"
        with self._writers(fcntl.LOCK_SH):
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise self._error("cannot create a temporary file", exc) from exc
            # Held until the file is closed, after its rename: see the module docstring.
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with open(fd, "wb") as out:
                while chunk := reader.read_chunk(self._chunk_size):
                    self._write(out, chunk)
                    if on_progress is not None:
                        on_progress(len(chunk))
                self._sync(out)
                stored = reader.result()
                self._commit(temp, stored)
        except BaseException:
            _remove_quietly(temp)
            raise
        return stored

    @contextlib.contextmanager
    def _writers(self, mode: int) -> Iterator[None]:
        """The lock on writers.lock: shared to start a write, exclusive to sweep."""
        try:
            fd = os.open(self._writers_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._error("cannot open the writers' lock", exc) from exc
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _write(self, out: BinaryIO, chunk: bytes) -> None:
        try:
            out.write(chunk)
        except OSError as exc:
            raise self._error("cannot write a temporary file", exc) from exc

    def _sync(self, out: BinaryIO) -> None:
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise self._error("cannot write a temporary file", exc) from exc

    def _commit(self, temp: Path, stored: StoredObject) -> None:
        final = self._object_path(stored.sha256)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if _has_size(final, stored.size):
                # Same name, same content: it is already stored.
                temp.unlink()
                return
            # Also replaces a file of the wrong size, left by a damaged disk or a hand.
            os.replace(temp, final)
            _fsync_directory(final.parent)
        except OSError as exc:
            raise self._error(f"cannot store object {stored.sha256}", exc) from exc

    def _object_path(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def _not_found(self, sha256: str) -> ObjectNotFound:
        return ObjectNotFound(f"{self.describe()}: object {sha256} not found")

    def _error(self, what: str, exc: OSError) -> StorageError:
        where = f" ({exc.filename})" if exc.filename else ""
        return StorageError(f"local store {self.describe()}: {what}: {exc.strerror or exc}{where}")


def _remove_quietly(path: Path) -> None:
    # Cleanup after a failure must not hide that failure behind its own.
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _unlocked(path: Path) -> bool:
    """Whether no live write holds the file (its writer died, or it is done with it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # gone already, or not a plain file: not ours to remove
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _fsync_directory(path: Path) -> None:
    # Makes the rename itself durable, not just the file's bytes.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
