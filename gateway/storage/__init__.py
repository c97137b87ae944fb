"""Object storage: one small interface, a local-directory and an S3 implementation.

Pick one with `storage_from_url`; the S3 implementation (and boto3) is imported only when
an s3:// URL asks for it.
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.storage.disposition import attachment_disposition
from gateway.storage.interface import (
    CHUNK_SIZE,
    ObjectNotFound,
    ProgressCallback,
    SourceUnreadable,
    Storage,
    StorageError,
    StoredObject,
    validate_sha256,
)
from gateway.storage.local import LocalStorage

__all__ = [
    "CHUNK_SIZE",
    "LocalStorage",
    "ObjectNotFound",
    "ProgressCallback",
    "SourceUnreadable",
    "Storage",
    "StorageError",
    "StoredObject",
    "attachment_disposition",
    "storage_from_url",
    "validate_sha256",
]

_EXPECTED = "expected file:///absolute/path or s3://bucket[/prefix]"


def storage_from_url(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    timeout_seconds: float | None = None,
) -> Storage:
    """The storage a URL names: file:///absolute/path or s3://bucket[/prefix].

    A local store's directories are created. s3_endpoint_url, s3_region and
    timeout_seconds (each call, retries included; None: the default) go to the S3 client
    (for MinIO, R2, Ceph...); credentials come from boto3's standard chain.
    Raises ValueError for any other URL.
    """
    parts = urlsplit(url)
    shown = _shown(url)
    if parts.query or parts.fragment:
        raise ValueError(f"storage URL {shown} has a query or fragment; {_EXPECTED}")
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in {"", "localhost"}:
            raise ValueError(
                f"storage URL {shown} names a host ({parts.netloc!r}); {_EXPECTED} "
                "(three slashes before an absolute path)"
            )
        if not path.startswith("/"):
            raise ValueError(f"storage URL {shown} has no absolute path; {_EXPECTED}")
        return LocalStorage(Path(path))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if "@" in bucket:
            raise ValueError(
                f"storage URL {shown} holds credentials; {_EXPECTED}, with credentials "
                "from the environment, a profile or an instance role"
            )
        if not bucket or ":" in bucket:
            raise ValueError(f"storage URL {shown} names no bucket; {_EXPECTED}")
        from gateway.storage.s3 import DEFAULT_TIMEOUT_SECONDS, S3Storage

        return S3Storage(
            bucket,
            unquote(parts.path),
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            timeout_seconds=timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        )
    raise ValueError(f"unsupported storage URL {shown}; {_EXPECTED}")


def _shown(url: str) -> str:
    """The URL for an error message, with any user:password@ masked."""
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if separator and "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return repr(f"{scheme}{separator}{authority}{slash}{path}")
