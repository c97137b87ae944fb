"""Each storage test runs against a local store in tmp_path and an S3 store on moto."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest

from gateway.storage import LocalStorage
from gateway.storage.s3 import S3Storage

# The moto fixtures (moto_server, moto_s3_client, s3_bucket) come from the root conftest's
# pytest_plugins; importing them here too would start a second server.
from tests.fixtures.moto import MOTO_MIN_PART_SIZE, S3Bucket

# Small parts, so a few dozen KiB exercise multipart uploads; moto allows this size.
PART_SIZE = MOTO_MIN_PART_SIZE
S3_PREFIX = "gw/test"


class Backend(Protocol):
    """A store under test, with a look behind its interface at what it really holds."""

    @property
    def storage(self) -> LocalStorage | S3Storage: ...

    def stored_names(self) -> list[str]:
        """The names of the stored objects (their SHA-256s)."""
        ...

    def leftovers(self) -> list[str]:
        """Whatever an in-flight write leaves: temp files, incoming keys, open uploads."""
        ...

    def overwrite(self, sha256: str, data: bytes) -> None:
        """Replace an object's bytes behind the store's back, as a damaged disk would."""
        ...


@dataclass
class LocalBackend:
    storage: LocalStorage

    def stored_names(self) -> list[str]:
        objects = self.storage.root / "objects"
        return sorted(path.name for path in objects.rglob("*") if path.is_file())

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in (self.storage.root / "tmp").iterdir())

    def overwrite(self, sha256: str, data: bytes) -> None:
        self.storage.local_path(sha256).write_bytes(data)


@dataclass
class S3Backend:
    storage: S3Storage
    client: Any

    def _keys(self, folder: str) -> list[str]:
        listing = self.client.list_objects_v2(
            Bucket=self.storage.bucket, Prefix=f"{S3_PREFIX}/{folder}/"
        )
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def stored_names(self) -> list[str]:
        return [key.rsplit("/", 1)[1] for key in self._keys("objects")]

    def leftovers(self) -> list[str]:
        uploads = self.client.list_multipart_uploads(Bucket=self.storage.bucket)
        pending = [f"upload of {upload['Key']}" for upload in uploads.get("Uploads", [])]
        return self._keys("incoming") + pending

    def overwrite(self, sha256: str, data: bytes) -> None:
        key = f"{S3_PREFIX}/objects/{sha256}"
        self.client.put_object(Bucket=self.storage.bucket, Key=key, Body=data)


@pytest.fixture(scope="session")
def aws_session(moto_server: str) -> boto3.session.Session:
    """One boto3 session for the S3 stores under test: each new one reloads the S3 model."""
    return boto3.session.Session()


def make_s3_storage(bucket: S3Bucket, **options: Any) -> S3Storage:
    """An S3Storage on a moto bucket with the tests' small parts."""
    options.setdefault("part_size", PART_SIZE)
    options.setdefault("prefix", S3_PREFIX)
    return S3Storage(bucket.name, endpoint_url=bucket.endpoint_url, **options)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The store under test, local or S3."""
    if request.param == "local":
        return LocalBackend(LocalStorage(tmp_path / "store", chunk_size=PART_SIZE))
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    session = request.getfixturevalue("aws_session")
    storage = make_s3_storage(bucket, session=session)
    return S3Backend(storage, request.getfixturevalue("moto_s3_client"))


@pytest.fixture
def storage(backend: Backend) -> LocalStorage | S3Storage:
    """The store under test, without the look behind it."""
    return backend.storage
