"""Objects in an S3 bucket (AWS S3, MinIO, R2, Ceph...) through boto3.

Keys: `<prefix>/objects/<sha256>` for stored objects. A file larger than one part is
streamed, once, into `<prefix>/incoming/<uuid4>` as a multipart upload, because its hash
(and so its key) is known only at the end; it is then copied server-side to its key and
the incoming object deleted. A failure aborts the multipart upload. A process killed
mid-upload can still leave an incomplete upload or an incoming object: a bucket lifecycle
rule that aborts incomplete multipart uploads and expires `<prefix>/incoming/` after a
day clears them.

Every botocore error is turned into StorageError (ObjectNotFound for a missing object)
here, with a message that names the bucket, the endpoint, what was being done and the
error code. Credentials come from boto3's standard chain; S3-compatible stores that do
not accept boto3's default checksums can be served by setting
AWS_REQUEST_CHECKSUM_CALCULATION=when_required in the environment.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from gateway.storage.disposition import attachment_disposition
from gateway.storage.interface import (
    CHUNK_SIZE,
    HashingReader,
    ObjectNotFound,
    ProgressCallback,
    StorageError,
    StoredObject,
    source_error,
    validate_sha256,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# An upload to incoming/ older than this was interrupted: no single write takes a day.
STALE_UPLOAD_AGE = timedelta(days=1)
# S3 takes at most this many parts in one multipart upload.
MAX_PARTS = 10_000
# SigV4 presigned URLs are valid for at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# The longest one storage call waits for the store, its retries and their back-off
# included: a hung endpoint fails a publish or a request in this time instead of hanging.
DEFAULT_TIMEOUT_SECONDS = 30.0
# Standard retry mode retries throttling, transient errors and timeouts, up to this many
# attempts, sleeping up to 1 s, then 2 s, ... between them.
MAX_ATTEMPTS = 3
# Each attempt may wait at least this long to connect and for each read.
_MIN_ATTEMPT_SECONDS = 1.5


def attempt_plan(timeout_seconds: float) -> tuple[int, float]:
    """(attempts, seconds each may wait) so that attempts and back-off fit the timeout."""
    for attempts in range(MAX_ATTEMPTS, 1, -1):
        backoff = 2 ** (attempts - 1) - 1  # the longest sleeps between the attempts
        each = (timeout_seconds - backoff) / attempts
        if each >= _MIN_ATTEMPT_SECONDS:
            return attempts, each
    return 1, timeout_seconds


# Error codes that mean "no such object" (a HEAD response has no body, so only a status).
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_REASONS = {
    "301": "the bucket is in another region",
    "PermanentRedirect": "the bucket is in another region",
    "403": "access denied",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "the access key is not known to the server",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the credentials have expired",
    "NoSuchBucket": "bucket does not exist",
    "SlowDown": "the server asks to slow down",
}


# One boto3 session for the process, as boto3.client() keeps one: it loads the S3 service
# model once, so each runtime's client costs milliseconds, not a tenth of a second.
# Sessions are not thread-safe, so clients are made under a lock.
_SESSION_LOCK = threading.Lock()


@cache
def _shared_session() -> boto3.session.Session:
    return boto3.session.Session()


class S3Storage:
    """A Storage in an S3 bucket, under an optional key prefix.

    part_size is both the multipart part size and the read size; S3 wants at least
    5 MiB for every part but the last (tests use smaller parts against moto).
    timeout_seconds bounds each call, retries and back-off included (see attempt_plan).
    client_config is merged over the defaults (s3v4, standard retries, timeouts). The
    client comes from session, or the process's boto3 session with the standard
    credential chain.

    A HEAD answers a missing bucket and a missing object alike (a bare 404), so exists()
    and size() cannot tell them apart; check() can, and writes report NoSuchBucket.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = CHUNK_SIZE,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        client_config: Config | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"not an S3 bucket name: {bucket!r}")
        if part_size <= 0:
            raise ValueError(f"part_size must be positive, got {part_size}")
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self._bucket = bucket
        self._prefix = "/".join(segment for segment in prefix.split("/") if segment)
        self._base = f"{self._prefix}/" if self._prefix else ""
        self._part_size = part_size
        self._timeout = timeout_seconds
        self._attempts, each = attempt_plan(timeout_seconds)
        config = Config(
            signature_version="s3v4",
            retries={"mode": "standard", "total_max_attempts": self._attempts},
            connect_timeout=each,
            read_timeout=each,
        )
        if client_config is not None:
            config = config.merge(client_config)
        try:
            with _SESSION_LOCK:
                self._client = (session or _shared_session()).client(
                    "s3", endpoint_url=endpoint_url, region_name=region, config=config
                )
        except (BotoCoreError, ValueError) as exc:
            raise StorageError(f"S3 bucket {bucket!r}: cannot create a client: {exc}") from exc
        self._endpoint = _without_userinfo(str(self._client.meta.endpoint_url))
        self._region = str(self._client.meta.region_name)
        self._where = f"S3 bucket {bucket!r} at {self._endpoint}"

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix, without slashes at either end ("" for none)."""
        return self._prefix

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, for diagnostics and tests."""
        return self._client

    def describe(self) -> str:
        """The bucket and prefix, with the endpoint and region in use."""
        return (
            f"s3://{self._bucket}/{self._prefix} (endpoint {self._endpoint}, region {self._region})"
        )

    def put_file(self, path: Path, *, on_progress: ProgressCallback | None = None) -> StoredObject:
        """Upload a file, reading it once (see the module docstring)."""
        try:
            source = path.open("rb")
        except OSError as exc:
            raise source_error(path, exc) from exc
        with source:
            try:
                size_hint: int | None = os.fstat(source.fileno()).st_size
            except OSError:
                size_hint = None
            return self._put(HashingReader(source, name=str(path)), on_progress, size_hint)

    def put_bytes(self, data: bytes) -> StoredObject:
        """Upload bytes held in memory."""
        reader = HashingReader(io.BytesIO(data), name="the given bytes")
        return self._put(reader, None, len(data))

    def exists(self, sha256: str) -> bool:
        """Whether the object is stored (a HEAD request)."""
        return self._stored_size(sha256) is not None

    def size(self, sha256: str) -> int:
        """The object's size (a HEAD request)."""
        size = self._stored_size(sha256)
        if size is None:
            raise ObjectNotFound(f"{self._where}: object {sha256} not found")
        return size

    def open_read(self, sha256: str) -> BinaryIO:
        """Stream the object's body."""
        key = self._key(sha256)
        with self._boundary(f"cannot read object {sha256}", sha256=sha256):
            body: StreamingBody = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
        raw = _BodyReader(body, what=f"{self._where}: reading object {sha256}")
        return io.BufferedReader(raw, buffer_size=1024 * 1024)

    def local_path(self, sha256: str) -> None:
        """None: S3 objects are not files on this machine."""
        validate_sha256(sha256)

    def internal_path(self, sha256: str) -> None:
        """None: S3 objects are not files a front server can send."""
        validate_sha256(sha256)

    def presigned_get_url(self, sha256: str, *, expires_seconds: int, filename: str) -> str:
        """A presigned GET that saves the object as filename; any Range header is allowed."""
        key = self._key(sha256)
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(
                f"expires_seconds must be between 1 and {MAX_PRESIGN_SECONDS}, "
                f"got {expires_seconds}"
            )
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": attachment_disposition(filename),
        }
        with self._boundary("cannot sign a download URL"):
            url: str = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds
            )
        return url

    def delete(self, sha256: str) -> None:
        """Delete the object; S3 deletes are idempotent."""
        key = self._key(sha256)
        with self._boundary(f"cannot delete object {sha256}"):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def check(self) -> None:
        """HEAD the bucket: reachable, credentials accepted, bucket there."""
        with self._boundary("bucket check failed", missing="bucket does not exist"):
            self._client.head_bucket(Bucket=self._bucket)

    def remove_stale_uploads(self) -> int:
        """Abort multipart uploads to incoming/ and delete incoming objects, older than a day.

        S3 has no locks to tell a live upload from a dead one, so age does: no write of one
        object takes a day (the bucket lifecycle rule in the module docstring does the same).
        """
        cutoff = datetime.now(UTC) - STALE_UPLOAD_AGE
        incoming = f"{self._base}incoming/"
        removed = 0
        with self._boundary("cannot list interrupted uploads"):
            uploads = self._client.get_paginator("list_multipart_uploads")
            for page in uploads.paginate(Bucket=self._bucket, Prefix=incoming):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._abort(upload["Key"], upload["UploadId"])
                        removed += 1
            objects = self._client.get_paginator("list_objects_v2")
            for listing in objects.paginate(Bucket=self._bucket, Prefix=incoming):
                for item in listing.get("Contents", []):
                    if item["LastModified"] < cutoff:
                        self._discard(item["Key"])
                        removed += 1
        if removed:
            logger.info("%s: removed %d interrupted upload(s)", self._where, removed)
        return removed

    def _put(
        self,
        reader: HashingReader,
        on_progress: ProgressCallback | None,
        size_hint: int | None,
    ) -> StoredObject:
        part_size = part_size_for(size_hint, self._part_size)
        parts = iter(partial(reader.read_chunk, part_size), b"")
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:
            # One part: the hash is already known, so store straight under the final key.
            stored = reader.result()
            self._put_single(stored, first)
            if on_progress is not None and first:
                on_progress(len(first))
            return stored
        temp_key = self._upload_incoming(chain([first, second], parts), on_progress)
        try:
            stored = reader.result()
            self._publish(temp_key, stored)
        finally:
            self._discard(temp_key)
        return stored

    def _put_single(self, stored: StoredObject, data: bytes) -> None:
        if self._stored_size(stored.sha256) == stored.size:
            return
        with self._boundary(f"cannot upload object {stored.sha256}"):
            self._client.put_object(Bucket=self._bucket, Key=self._key(stored.sha256), Body=data)

    def _upload_incoming(
        self, chunks: Iterable[bytes], on_progress: ProgressCallback | None
    ) -> str:
        temp_key = f"{self._base}incoming/{uuid.uuid4()}"
        with self._boundary(f"cannot start an upload to {temp_key}"):
            created = self._client.create_multipart_upload(Bucket=self._bucket, Key=temp_key)
        upload_id: str = created["UploadId"]
        etags: list[tuple[int, str]] = []
        try:
            for number, chunk in enumerate(chunks, start=1):
                with self._boundary(f"cannot upload part {number} of {temp_key}"):
                    uploaded = self._client.upload_part(
                        Bucket=self._bucket,
                        Key=temp_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                    )
                etags.append((number, uploaded["ETag"]))
                if on_progress is not None:
                    on_progress(len(chunk))
            with self._boundary(f"cannot complete the upload to {temp_key}"):
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=temp_key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": number, "ETag": etag} for number, etag in etags]
                    },
                )
        except BaseException:
            self._abort(temp_key, upload_id)
            # In case the completion went through although its answer was lost.
            self._discard(temp_key)
            raise
        return temp_key

    def _publish(self, temp_key: str, stored: StoredObject) -> None:
        if self._stored_size(stored.sha256) == stored.size:
            return
        # The managed copy switches to a multipart copy for objects over 5 GiB.
        with self._boundary(f"cannot copy {temp_key} to object {stored.sha256}"):
            self._client.copy(
                CopySource={"Bucket": self._bucket, "Key": temp_key},
                Bucket=self._bucket,
                Key=self._key(stored.sha256),
            )

    def _abort(self, temp_key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=temp_key, UploadId=upload_id
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("%s: cannot abort the upload to %s: %s", self._where, temp_key, exc)

    def _discard(self, temp_key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=temp_key)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("%s: cannot delete %s: %s", self._where, temp_key, exc)

    def _stored_size(self, sha256: str) -> int | None:
        key = self._key(sha256)
        try:
            with self._boundary(f"cannot look up object {sha256}", sha256=sha256):
                head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ObjectNotFound:
            return None
        size: int = head["ContentLength"]
        return size

    def _key(self, sha256: str) -> str:
        return f"{self._base}objects/{validate_sha256(sha256)}"

    @contextmanager
    def _boundary(
        self, action: str, *, sha256: str | None = None, missing: str = "not found"
    ) -> Iterator[None]:
        """Turn botocore errors raised inside into StorageError / ObjectNotFound."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "unknown")
            if code in _MISSING_CODES:
                if sha256 is not None:
                    raise ObjectNotFound(f"{self._where}: object {sha256} not found") from exc
                reason = missing
            else:
                reason = _REASONS.get(code) or error.get("Message") or "request failed"
            raise StorageError(f"{self._where}: {action}: {reason} ({code})") from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            tries = f"{self._attempts} attempts" if self._attempts > 1 else "1 attempt"
            raise StorageError(
                f"{self._where}: {action}: no answer within {self._timeout:g} s ({tries})"
            ) from exc
        except NoCredentialsError as exc:
            raise StorageError(
                f"{self._where}: {action}: no AWS credentials found (environment, "
                "shared credentials file, or instance role)"
            ) from exc
        except BotoConnectionError as exc:
            raise StorageError(
                f"{self._where}: {action}: cannot connect to the endpoint ({exc})"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self._where}: {action}: {exc}") from exc


class _BodyReader(io.RawIOBase):
    """A response body as a raw binary stream whose errors are StorageError."""

    def __init__(self, body: StreamingBody, *, what: str) -> None:
        super().__init__()
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except BotoCoreError as exc:
            raise StorageError(f"{self._what} failed: {exc}") from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def part_size_for(size: int | None, configured: int) -> int:
    """The part size for a file of this size: the configured one, grown if the file would
    otherwise need more than MAX_PARTS parts."""
    if size is None:
        return configured
    return max(configured, -(-size // MAX_PARTS))


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))
