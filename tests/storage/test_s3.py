"""What only the S3 store does: keys under a prefix, presigned URLs, and its error messages."""

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.storage import ObjectNotFound, Storage, StorageError
from gateway.storage.s3 import MAX_PARTS, MAX_PRESIGN_SECONDS, S3Storage, part_size_for
from tests.fixtures.moto import S3Bucket
from tests.storage.conftest import PART_SIZE, S3_PREFIX, make_s3_storage
from tests.storage.test_contract import content, expected

# One attempt and a short connect timeout: the failures below are meant, not transient.
NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=2)


@pytest.fixture
def s3(s3_bucket: S3Bucket, aws_session: boto3.session.Session) -> S3Storage:
    return make_s3_storage(s3_bucket, session=aws_session)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound, so no one else takes it, but refuses connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def all_keys(client: Any, bucket: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def inject_error(storage: S3Storage, operation: str, code: str, *, on_call: int = 1) -> None:
    """Make the on_call-th call of an S3 operation fail with an error response."""
    calls = 0

    def fail(**kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == on_call:
            error = {"Error": {"Code": code, "Message": f"injected {code}"}}
            raise ClientError(error, operation)  # type: ignore[arg-type]

    storage.client.meta.events.register(f"before-parameter-build.s3.{operation}", fail)


def test_objects_are_keyed_by_sha256_under_the_prefix(
    s3: S3Storage, moto_s3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(content(3 * PART_SIZE))

    small = s3.put_bytes(b"small")
    big = s3.put_file(source)

    assert all_keys(moto_s3_client, s3.bucket) == sorted(
        [f"{S3_PREFIX}/objects/{small.sha256}", f"{S3_PREFIX}/objects/{big.sha256}"]
    )


def test_stores_under_different_prefixes_do_not_see_each_other(
    s3_bucket: S3Bucket, aws_session: boto3.session.Session
) -> None:
    first = make_s3_storage(s3_bucket, prefix="one", session=aws_session)
    second = make_s3_storage(s3_bucket, prefix="/two/", session=aws_session)

    stored = first.put_bytes(b"only in one")

    assert second.prefix == "two"
    assert first.exists(stored.sha256)
    assert not second.exists(stored.sha256)


def test_a_store_without_prefix_keys_objects_at_the_top(
    s3_bucket: S3Bucket, aws_session: boto3.session.Session, moto_s3_client: Any
) -> None:
    storage = make_s3_storage(s3_bucket, prefix="", session=aws_session)

    stored = storage.put_bytes(b"top")

    assert all_keys(moto_s3_client, s3_bucket.name) == [f"objects/{stored.sha256}"]
    assert storage.describe().startswith(f"s3://{s3_bucket.name}/ (endpoint ")


def test_a_failed_part_upload_aborts_the_upload(
    s3: S3Storage, moto_s3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(content(4 * PART_SIZE))
    inject_error(s3, "UploadPart", "InternalError", on_call=2)

    with pytest.raises(StorageError) as caught:
        s3.put_file(source)

    message = str(caught.value)
    assert f"S3 bucket '{s3.bucket}' at http://127.0.0.1:" in message
    assert "cannot upload part 2 of gw/test/incoming/" in message
    assert message.endswith("injected InternalError (InternalError)")
    assert all_keys(moto_s3_client, s3.bucket) == []
    assert moto_s3_client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_a_failed_completion_aborts_the_upload(
    s3: S3Storage, moto_s3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(content(2 * PART_SIZE + 1))
    inject_error(s3, "CompleteMultipartUpload", "InternalError")

    with pytest.raises(StorageError, match="cannot complete the upload"):
        s3.put_file(source)

    assert all_keys(moto_s3_client, s3.bucket) == []
    assert moto_s3_client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_a_failed_copy_to_the_final_key_leaves_nothing_behind(
    s3: S3Storage, moto_s3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(content(2 * PART_SIZE + 1))
    inject_error(s3, "CopyObject", "InternalError")

    with pytest.raises(StorageError, match=r"cannot copy gw/test/incoming/.* to object"):
        s3.put_file(source)

    assert all_keys(moto_s3_client, s3.bucket) == []


def test_access_denied_names_the_bucket_and_the_code(s3: S3Storage) -> None:
    inject_error(s3, "HeadBucket", "AccessDenied")

    with pytest.raises(StorageError) as caught:
        s3.check()

    assert str(caught.value) == (
        f"S3 bucket '{s3.bucket}' at {s3_endpoint(s3)}: bucket check failed: "
        "access denied (AccessDenied)"
    )


def s3_endpoint(storage: S3Storage) -> str:
    return str(storage.client.meta.endpoint_url)


@pytest.mark.parametrize("size", [10, 3 * PART_SIZE], ids=["small", "multipart"])
def test_a_missing_bucket_is_a_storage_error_naming_it(
    moto_server: str, aws_session: boto3.session.Session, tmp_path: Path, size: int
) -> None:
    storage = make_s3_storage(S3Bucket(moto_server, "no-such-bucket"), session=aws_session)
    source = tmp_path / "artifact.bin"
    source.write_bytes(content(size))

    with pytest.raises(StorageError) as caught:
        storage.put_file(source)

    message = str(caught.value)
    assert message.startswith(f"S3 bucket 'no-such-bucket' at {moto_server}: ")
    assert message.endswith("bucket does not exist (NoSuchBucket)")
    assert not isinstance(caught.value, ObjectNotFound)


def test_check_fails_on_a_missing_bucket(
    moto_server: str, aws_session: boto3.session.Session
) -> None:
    storage = make_s3_storage(S3Bucket(moto_server, "no-such-bucket"), session=aws_session)

    with pytest.raises(StorageError) as caught:
        storage.check()

    assert str(caught.value) == (
        f"S3 bucket 'no-such-bucket' at {moto_server}: bucket check failed: "
        "bucket does not exist (404)"
    )


def test_an_endpoint_that_does_not_answer_is_a_storage_error(
    moto_server: str, aws_session: boto3.session.Session, closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    storage = make_s3_storage(
        S3Bucket(endpoint, "models"), session=aws_session, client_config=NO_RETRIES
    )

    for attempt in (storage.check, lambda: storage.put_bytes(b"x")):
        with pytest.raises(StorageError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"S3 bucket 'models' at {endpoint}: ")
        assert "cannot connect to the endpoint" in message


def test_missing_credentials_are_a_storage_error(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # A new session, so no credentials found earlier are reused.
    storage = make_s3_storage(s3_bucket, session=boto3.session.Session())

    with pytest.raises(StorageError, match="bucket check failed: no AWS credentials found"):
        storage.check()


def test_describe_shows_no_credentials(moto_server: str) -> None:
    storage = S3Storage(
        "models", "v1", endpoint_url="http://key:hunter2@127.0.0.1:9", region="eu-west-1"
    )

    assert storage.describe() == "s3://models/v1 (endpoint http://127.0.0.1:9, region eu-west-1)"


def test_local_path_is_none(s3: S3Storage) -> None:
    stored = s3.put_bytes(b"remote")
    storage: Storage = s3

    assert storage.local_path(stored.sha256) is None


def test_a_presigned_url_downloads_the_object_and_honours_range(s3: S3Storage) -> None:
    data = content(2 * PART_SIZE + 100, seed=9)
    stored = s3.put_bytes(data)

    url = s3.presigned_get_url(stored.sha256, expires_seconds=60, filename="model.safetensors")

    whole = httpx2.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-disposition"] == (
        "attachment; filename=\"model.safetensors\"; filename*=UTF-8''model.safetensors"
    )
    part = httpx2.get(url, headers={"Range": "bytes=100-4195"})
    assert part.status_code == 206
    assert part.content == data[100:4196]
    assert part.headers["content-range"] == f"bytes 100-4195/{len(data)}"


def test_a_presigned_url_signs_no_range_and_expires(s3: S3Storage) -> None:
    stored = s3.put_bytes(b"signed")

    url = s3.presigned_get_url(stored.sha256, expires_seconds=90, filename="x.bin")

    assert "X-Amz-Expires=90" in url
    assert "X-Amz-SignedHeaders=host&" in url
    assert f"/{s3.bucket}/{S3_PREFIX}/objects/{stored.sha256}?" in url


@pytest.mark.parametrize("seconds", [0, -1, MAX_PRESIGN_SECONDS + 1])
def test_a_presigned_url_lifetime_out_of_range_is_refused(s3: S3Storage, seconds: int) -> None:
    sha256 = expected(b"").sha256

    with pytest.raises(ValueError, match="expires_seconds must be between"):
        s3.presigned_get_url(sha256, expires_seconds=seconds, filename="x.bin")


def test_a_missing_object_read_is_not_found_not_a_generic_error(s3: S3Storage) -> None:
    sha256 = expected(b"absent").sha256

    with pytest.raises(ObjectNotFound) as caught:
        s3.open_read(sha256)

    assert str(caught.value) == (
        f"S3 bucket '{s3.bucket}' at {s3_endpoint(s3)}: object {sha256} not found"
    )


def test_part_size_grows_only_when_parts_would_run_out() -> None:
    eight_mib = 8 * 1024 * 1024

    assert part_size_for(None, eight_mib) == eight_mib
    assert part_size_for(eight_mib * MAX_PARTS, eight_mib) == eight_mib
    assert part_size_for(eight_mib * MAX_PARTS + 1, eight_mib) == eight_mib + 1
    assert part_size_for(200 * 1024**3, eight_mib) * MAX_PARTS >= 200 * 1024**3


@pytest.mark.parametrize(
    ("bucket", "options"),
    [("", {}), ("a/b", {}), ("models", {"part_size": 0})],
)
def test_bad_constructor_arguments_are_refused(bucket: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"bucket name|part_size"):
        S3Storage(bucket, **options)
