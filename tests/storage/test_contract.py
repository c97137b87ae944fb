"""The Storage contract, run against the local store and the S3 store alike."""

import errno
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from gateway.storage import ObjectNotFound, StorageError, StoredObject
from gateway.storage.local import LocalStorage
from gateway.storage.s3 import S3Storage
from tests.storage.conftest import PART_SIZE, Backend

AnyStorage = LocalStorage | S3Storage

ABSENT = hashlib.sha256(b"never stored").hexdigest()

SIZES = {
    "empty": 0,
    "small": 1000,
    "one-part": PART_SIZE,
    "one-part-and-a-byte": PART_SIZE + 1,
    "two-parts": 2 * PART_SIZE,
    "several-parts": 3 * PART_SIZE + PART_SIZE // 2,
}

BAD_SHA256 = [
    "",
    "../../etc/passwd",
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "a" * 64 + "\n",
    "../" + "a" * 61,
]


def content(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that differ from part to part (so a misplaced part shows)."""
    blocks = bytearray()
    counter = 0
    while len(blocks) < size:
        blocks += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(blocks[:size])


def expected(data: bytes) -> StoredObject:
    return StoredObject(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def read_all(storage: AnyStorage, sha256: str) -> bytes:
    with storage.open_read(sha256) as stream:
        return stream.read()


class _SourceSpy:
    """Wraps a source file: counts what is read and can fail partway through."""

    def __init__(self, inner: BinaryIO, fail_after: int | None) -> None:
        self._inner = inner
        self._fail_after = fail_after
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self.bytes_read >= self._fail_after:
            raise OSError(errno.EIO, "Input/output error")
        data = self._inner.read(size)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> "_SourceSpy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._inner.close()


@pytest.fixture
def spy_on_source(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[_SourceSpy]]:
    """Spy on every opening of one source path; returns the list of spies, one per open."""

    def install(source: Path, *, fail_after: int | None = None) -> list[_SourceSpy]:
        spies: list[_SourceSpy] = []
        real_open = Path.open

        def spying_open(self: Path, *args: Any, **kwargs: Any) -> Any:
            opened = real_open(self, *args, **kwargs)
            if self != source:
                return opened
            spy = _SourceSpy(opened, fail_after)
            spies.append(spy)
            return spy

        monkeypatch.setattr(Path, "open", spying_open)
        return spies

    return install


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_put_file_returns_the_sha256_and_size(
    storage: AnyStorage, tmp_path: Path, size: int
) -> None:
    data = content(size)
    source = tmp_path / "artifact.bin"
    source.write_bytes(data)

    stored = storage.put_file(source)

    assert stored == expected(data)
    assert storage.exists(stored.sha256)
    assert storage.size(stored.sha256) == size
    assert read_all(storage, stored.sha256) == data


@pytest.mark.parametrize("size", [0, 1000, 3 * PART_SIZE + 7])
def test_put_file_reads_the_source_exactly_once(
    storage: AnyStorage,
    tmp_path: Path,
    spy_on_source: Callable[..., list[_SourceSpy]],
    size: int,
) -> None:
    data = content(size)
    source = tmp_path / "artifact.bin"
    source.write_bytes(data)
    spies = spy_on_source(source)

    storage.put_file(source)

    assert len(spies) == 1
    assert spies[0].bytes_read == size


@pytest.mark.parametrize("size", [0, 10, 2 * PART_SIZE + 3])
def test_put_bytes_stores_like_put_file(storage: AnyStorage, tmp_path: Path, size: int) -> None:
    data = content(size, seed=1)

    stored = storage.put_bytes(data)

    assert stored == expected(data)
    assert read_all(storage, stored.sha256) == data
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    assert storage.put_file(source) == stored


@pytest.mark.parametrize("size", [100, 3 * PART_SIZE], ids=["small", "multipart"])
def test_identical_content_is_stored_once(backend: Backend, tmp_path: Path, size: int) -> None:
    data = content(size, seed=2)
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(data)
    second.write_bytes(data)

    stored_first = backend.storage.put_file(first)
    stored_second = backend.storage.put_file(second)

    assert stored_first == stored_second == expected(data)
    assert backend.stored_names() == [stored_first.sha256]
    assert backend.leftovers() == []


def test_different_contents_are_separate_objects(backend: Backend) -> None:
    one = backend.storage.put_bytes(b"one")
    two = backend.storage.put_bytes(b"two")

    assert backend.stored_names() == sorted([one.sha256, two.sha256])
    assert read_all(backend.storage, one.sha256) == b"one"
    assert read_all(backend.storage, two.sha256) == b"two"


def test_concurrent_puts_of_the_same_content_leave_one_object(
    backend: Backend, tmp_path: Path
) -> None:
    data = content(2 * PART_SIZE + 5, seed=3)
    sources = []
    for index in range(4):
        source = tmp_path / f"copy-{index}.bin"
        source.write_bytes(data)
        sources.append(source)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(backend.storage.put_file, sources))

    assert set(results) == {expected(data)}
    assert backend.stored_names() == [expected(data).sha256]
    assert backend.leftovers() == []
    assert read_all(backend.storage, expected(data).sha256) == data


def test_a_damaged_object_is_repaired_by_storing_it_again(backend: Backend) -> None:
    data = content(PART_SIZE * 2 + 1, seed=4)
    stored = backend.storage.put_bytes(data)
    backend.overwrite(stored.sha256, b"truncated")

    assert backend.storage.put_bytes(data) == stored
    assert read_all(backend.storage, stored.sha256) == data


def test_open_read_streams_in_pieces(storage: AnyStorage) -> None:
    data = content(3 * PART_SIZE + 11, seed=5)
    stored = storage.put_bytes(data)

    pieces = []
    with storage.open_read(stored.sha256) as stream:
        while piece := stream.read(4096):
            pieces.append(piece)

    assert b"".join(pieces) == data
    assert len(pieces) > 1


def test_delete_removes_the_object(backend: Backend) -> None:
    kept = backend.storage.put_bytes(b"kept")
    deleted = backend.storage.put_bytes(b"deleted")

    backend.storage.delete(deleted.sha256)

    assert not backend.storage.exists(deleted.sha256)
    assert backend.storage.exists(kept.sha256)
    assert backend.stored_names() == [kept.sha256]


def test_deleting_an_absent_object_is_not_an_error(storage: AnyStorage) -> None:
    storage.delete(ABSENT)

    assert not storage.exists(ABSENT)


def test_a_missing_object_is_reported_as_not_found(storage: AnyStorage) -> None:
    assert not storage.exists(ABSENT)
    with pytest.raises(ObjectNotFound, match=ABSENT):
        storage.size(ABSENT)
    with pytest.raises(ObjectNotFound, match=ABSENT):
        storage.open_read(ABSENT)


def test_object_not_found_is_a_storage_error() -> None:
    assert issubclass(ObjectNotFound, StorageError)


@pytest.mark.parametrize("size", [0, 1000, 3 * PART_SIZE + PART_SIZE // 3])
def test_progress_reports_add_up_to_the_size(
    storage: AnyStorage, tmp_path: Path, size: int
) -> None:
    source = tmp_path / "artifact.bin"
    source.write_bytes(content(size))
    reports: list[int] = []

    storage.put_file(source, on_progress=reports.append)

    assert sum(reports) == size
    assert all(0 < report <= PART_SIZE for report in reports)
    assert len(reports) == -(-size // PART_SIZE)


def test_a_missing_source_is_a_storage_error_naming_it(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "gone.bin"

    with pytest.raises(StorageError, match=f"cannot read {source}: No such file"):
        backend.storage.put_file(source)
    assert backend.leftovers() == []


def test_an_unreadable_source_is_a_storage_error_naming_it(
    backend: Backend, tmp_path: Path
) -> None:
    source = tmp_path / "a-directory"
    source.mkdir()

    with pytest.raises(StorageError, match=f"cannot read {source}"):
        backend.storage.put_file(source)
    assert backend.leftovers() == []


@pytest.mark.parametrize(
    "fail_after", [0, PART_SIZE, 2 * PART_SIZE], ids=["at-once", "after-a-part", "after-two"]
)
def test_a_read_error_midway_leaves_nothing_behind(
    backend: Backend,
    tmp_path: Path,
    spy_on_source: Callable[..., list[_SourceSpy]],
    fail_after: int,
) -> None:
    data = content(4 * PART_SIZE, seed=6)
    source = tmp_path / "flaky.bin"
    source.write_bytes(data)
    spy_on_source(source, fail_after=fail_after)

    with pytest.raises(StorageError, match=f"cannot read {source}: Input/output error"):
        backend.storage.put_file(source)

    assert backend.stored_names() == []
    assert backend.leftovers() == []


def test_an_interrupted_put_leaves_nothing_behind(backend: Backend, tmp_path: Path) -> None:
    data = content(4 * PART_SIZE, seed=7)
    source = tmp_path / "artifact.bin"
    source.write_bytes(data)

    def interrupt_after_the_first_part(size: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend.storage.put_file(source, on_progress=interrupt_after_the_first_part)

    assert not backend.storage.exists(expected(data).sha256)
    assert backend.stored_names() == []
    assert backend.leftovers() == []


@pytest.mark.parametrize("bad", BAD_SHA256)
def test_a_malformed_sha256_is_refused(storage: AnyStorage, bad: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: storage.exists(bad),
        lambda: storage.size(bad),
        lambda: storage.open_read(bad),
        lambda: storage.local_path(bad),
        lambda: storage.presigned_get_url(bad, expires_seconds=60, filename="x.bin"),
        lambda: storage.delete(bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="not a SHA-256"):
            call()


def test_check_passes_on_a_working_store(storage: AnyStorage) -> None:
    storage.check()


def test_describe_names_where_the_objects_live(storage: AnyStorage) -> None:
    description = storage.describe()

    if isinstance(storage, LocalStorage):
        assert description == storage.root.as_uri()
    else:
        assert description.startswith(f"s3://{storage.bucket}/gw/test (endpoint http://127.0.0.1:")
