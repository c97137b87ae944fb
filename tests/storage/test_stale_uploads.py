"""A killed write leaves no temporary file behind for good: the next publish, or the
gateway's next start, removes the `.incoming` files nobody is writing, and never one that
a live write is still filling."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.runtime import Runtime
from gateway.storage import LocalStorage, StoredObject
from tests.sample import publish

# Stores what arrives on a FIFO; the test feeds it a little and kills the process.
_WRITER = """
import sys
from pathlib import Path
from gateway.storage import LocalStorage, StoredObject
LocalStorage(Path(sys.argv[1])).put_file(Path(sys.argv[2]))
"""


def incoming(root: Path) -> list[Path]:
    return sorted((root / "tmp").glob("*.incoming"))


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@contextmanager
def fed_fifo(path: Path) -> Iterator[Callable[[], BinaryIO]]:
    """A FIFO at `path`; the callable waits until a reader opens it and returns its writer."""
    os.mkfifo(path)
    opened: list[BinaryIO] = []
    opener = threading.Thread(target=lambda: opened.append(path.open("wb", buffering=0)))
    opener.daemon = True
    opener.start()

    def writer() -> BinaryIO:
        opener.join(30)
        return opened[0]

    try:
        yield writer
    finally:
        for out in opened:
            out.close()


def killed_write(root: Path, tmp_path: Path) -> Path:
    """The `.incoming` file of a write killed with SIGKILL halfway through."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "source.fifo"
    with fed_fifo(source) as sink:
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(source)])
        try:
            out = sink()
            out.write(b"x" * 300_000)  # more than one chunk: the first is written
            wait_for(lambda: any(p.stat().st_size > 0 for p in incoming(root)), "a write in flight")
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
    (left,) = incoming(root)
    return left


def test_the_file_of_a_killed_write_is_removed_and_a_live_one_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStorage(root)
    dead = killed_write(root, tmp_path)
    # A write in flight in this process, blocked on its source half-way.
    source = tmp_path / "live.fifo"
    result: list[StoredObject] = []
    with fed_fifo(source) as sink:
        thread = threading.Thread(target=lambda: result.append(store.put_file(source)), daemon=True)
        thread.start()
        out = sink()
        out.write(b"a" * 300_000)
        wait_for(lambda: len(incoming(root)) == 2, "the live write's file")
        live = next(p for p in incoming(root) if p != dead)
        assert store.remove_stale_uploads() == 1
        assert incoming(root) == [live]
        out.write(b"b" * 50_000)
    thread.join(30)
    (stored,) = result
    expected = b"a" * 300_000 + b"b" * 50_000
    assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    with store.open_read(stored.sha256) as read:
        assert read.read() == expected
    assert incoming(root) == []
    assert store.remove_stale_uploads() == 0


def local_root(settings: Settings) -> Path | None:
    if not settings.storage_url.startswith("file://"):
        return None
    return Path(settings.storage_url.removeprefix("file://"))


@pytest.mark.anyio
async def test_the_next_publish_and_the_next_start_remove_what_a_killed_write_left(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    root = local_root(settings)
    if root is None:
        # S3: leftovers are told by age; an interrupted upload older than a day goes.
        await _s3_leftovers_go(runtime)
        return
    killed_write(root, tmp_path / "first")
    await publish(runtime, tmp_path)
    assert incoming(root) == []
    killed_write(root, tmp_path / "second")
    async with AsyncTestClient(app=create_app(settings=settings)) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert incoming(root) == []


async def _s3_leftovers_go(runtime: Runtime) -> None:
    from datetime import UTC, datetime, timedelta
    from unittest import mock

    from gateway.storage.s3 import S3Storage

    storage = runtime.storage
    assert isinstance(storage, S3Storage)
    key = f"{storage.prefix}/incoming/interrupted"
    storage.client.put_object(Bucket=storage.bucket, Key=f"{key}-object", Body=b"left")
    assert storage.remove_stale_uploads() == 0  # just now: may belong to a live upload
    # (moto dates every multipart upload in 2010, so one is made only now.)
    storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key)
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    with mock.patch("gateway.storage.s3.datetime") as clock:
        clock.now.return_value = later
        assert storage.remove_stale_uploads() == 2
    listed = storage.client.list_multipart_uploads(Bucket=storage.bucket)
    assert listed.get("Uploads", []) == []
    objects = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"{key}")
    assert objects.get("Contents", []) == []
