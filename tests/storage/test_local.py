"""What only the local store does: its layout, atomic commit, and its own error messages."""

import errno
import hashlib
import os
from pathlib import Path

import pytest

from gateway.storage import ObjectNotFound, Storage, StorageError
from gateway.storage.local import LocalStorage
from tests.storage.conftest import PART_SIZE
from tests.storage.test_contract import content


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", chunk_size=PART_SIZE)


def test_the_constructor_creates_the_layout(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "deep" / "store")

    assert (tmp_path / "deep" / "store" / "objects").is_dir()
    assert (tmp_path / "deep" / "store" / "tmp").is_dir()
    assert storage.describe() == (tmp_path / "deep" / "store").as_uri()


def test_objects_fan_out_by_the_first_two_bytes_of_their_sha256(local: LocalStorage) -> None:
    stored = local.put_bytes(b"layout")
    sha = stored.sha256

    path = local.local_path(sha)

    assert path == local.root / "objects" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == b"layout"


def test_the_object_appears_under_its_name_only_when_complete(
    local: LocalStorage, tmp_path: Path
) -> None:
    data = content(3 * PART_SIZE)
    sha = hashlib.sha256(data).hexdigest()
    final = local.root / "objects" / sha[:2] / sha[2:4] / sha
    source = tmp_path / "artifact.bin"
    source.write_bytes(data)
    seen: list[tuple[bool, int]] = []

    def look(size: int) -> None:
        seen.append((final.exists(), len(list((local.root / "tmp").iterdir()))))

    local.put_file(source, on_progress=look)

    assert seen == [(False, 1)] * 3
    assert final.read_bytes() == data
    assert list((local.root / "tmp").iterdir()) == []


def test_local_path_of_a_missing_object_is_not_found(local: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        local.local_path(hashlib.sha256(b"absent").hexdigest())


def test_there_are_no_presigned_urls(local: LocalStorage) -> None:
    stored = local.put_bytes(b"served by the gateway")
    storage: Storage = local

    assert storage.presigned_get_url(stored.sha256, expires_seconds=60, filename="x.bin") is None


def test_a_full_disk_is_a_storage_error_and_leaves_no_temp_file(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("gateway.storage.local.os.fsync", disk_full)

    with pytest.raises(StorageError) as caught:
        local.put_bytes(b"does not fit")

    assert str(caught.value) == (
        f"local store {local.describe()}: cannot write a temporary file: No space left on device"
    )
    assert list((local.root / "tmp").iterdir()) == []
    assert list((local.root / "objects").rglob("*")) == []


def test_check_fails_when_the_store_is_not_writable(local: LocalStorage) -> None:
    (local.root / "tmp").rmdir()
    (local.root / "tmp").write_text("a file where the tmp directory was")

    with pytest.raises(StorageError, match=f"local store {local.describe()}: not writable"):
        local.check()


def test_check_fails_when_the_objects_directory_is_gone(local: LocalStorage) -> None:
    (local.root / "objects").rmdir()

    with pytest.raises(StorageError, match="not writable: No such directory"):
        local.check()


def test_a_root_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(StorageError, match="cannot create the store's directories"):
        LocalStorage(blocker / "store")


def test_a_chunk_size_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        LocalStorage(tmp_path, chunk_size=0)
