"""The object storage interface: content-addressed blobs named by their SHA-256.

Rules every implementation keeps:
- An object's key is the SHA-256 of its bytes, so identical files are stored once and a
  key never names two different contents.
- An object appears under its key only once it is complete: a failed or interrupted
  write leaves nothing under the key.
- A key is checked (64 lowercase hex digits) before it becomes part of a path or an S3
  key, so no caller can reach outside the store through it.
- The library's own errors (OSError, botocore) stop at the implementation: callers see
  StorageError, ObjectNotFound when the object is absent, or SourceUnreadable when what
  was to be stored cannot be read (a bad input, where every other StorageError is the
  store failing).
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# Large enough that per-chunk overhead (a syscall, an HTTP request) is noise, small enough
# to hold in memory once per concurrent upload.
CHUNK_SIZE = 8 * 1024 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")


class StorageError(Exception):
    """The storage failed; the message names the storage and what went wrong."""


class ObjectNotFound(StorageError):
    """No object is stored under the requested SHA-256."""


class SourceUnreadable(StorageError):
    """The file or stream to be stored cannot be read: the caller's input, not the store."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the storage holds for one object: its SHA-256 (hex) and its size in bytes."""

    sha256: str
    size: int


ProgressCallback = Callable[[int], None]


class Storage(Protocol):
    """Content-addressed object storage (see the module docstring for the rules)."""

    def describe(self) -> str:
        """Where the objects live, for operators and logs; never contains secrets."""
        ...

    def put_file(self, path: Path, *, on_progress: ProgressCallback | None = None) -> StoredObject:
        """Store a file, reading it once; on_progress gets the byte count of each chunk stored.

        Raises SourceUnreadable (a StorageError) naming the path if the file cannot be read.
        """
        ...

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store a small object held in memory."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether an object is stored under sha256."""
        ...

    def size(self, sha256: str) -> int:
        """The object's size in bytes; ObjectNotFound if absent."""
        ...

    def open_read(self, sha256: str) -> BinaryIO:
        """Open the object for reading (the caller closes it); ObjectNotFound if absent."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The object's file on this machine, to send it zero-copy; None if not a local store.

        A local store raises ObjectNotFound if the object is absent.
        """
        ...

    def internal_path(self, sha256: str) -> str | None:
        """The object's path below the store's `objects/` folder ("ab/cd/<sha256>"), for a
        front server that sends local files itself (X-Accel-Redirect); None if not a local
        store."""
        ...

    def presigned_get_url(self, sha256: str, *, expires_seconds: int, filename: str) -> str | None:
        """A URL that downloads the object directly as `filename`; None if the store has none.

        The URL does not sign a Range header, so clients can resume with any range. It is
        signed without asking the store whether the object exists.
        """
        ...

    def delete(self, sha256: str) -> None:
        """Remove the object; removing an absent object is not an error."""
        ...

    def check(self) -> None:
        """Raise StorageError if the storage is unreachable or unusable (for /readyz)."""
        ...

    def remove_stale_uploads(self) -> int:
        """Remove what interrupted writes left behind, never a write still in flight.

        Returns how many leftovers were removed. Publishing and the gateway's start call it.
        """
        ...


def validate_sha256(value: str) -> str:
    """Return value if it is a SHA-256 in lowercase hex, else raise ValueError."""
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise ValueError(f"not a SHA-256 (64 lowercase hex digits): {value!r}")
    return value


class HashingReader:
    """Reads a source in chunks, once, hashing and counting every byte as it goes.

    Read errors become SourceUnreadable naming the source, so callers can tell a bad input
    file from a failing store.
    """

    def __init__(self, stream: BinaryIO, *, name: str) -> None:
        self._stream = stream
        self._name = name
        self._hash = hashlib.sha256()
        self._size = 0

    def read_chunk(self, size: int) -> bytes:
        """Up to size bytes; fewer only at the end of the source, b"" after it."""
        try:
            data = self._stream.read(size)
        except OSError as exc:
            raise SourceUnreadable(f"cannot read {self._name}: {exc.strerror or exc}") from exc
        self._hash.update(data)
        self._size += len(data)
        return data

    def result(self) -> StoredObject:
        """The hash and size of everything read so far."""
        return StoredObject(sha256=self._hash.hexdigest(), size=self._size)


def source_error(path: Path, exc: OSError) -> SourceUnreadable:
    """The error for a source file that cannot be opened."""
    return SourceUnreadable(f"cannot read {path}: {exc.strerror or exc}")
