"""storage_from_url: which URLs name which store, and what every other URL is told."""

import re
from pathlib import Path

import pytest

from gateway.storage import LocalStorage, storage_from_url
from gateway.storage.s3 import S3Storage

EXPECTED = "expected file:///absolute/path or s3://bucket[/prefix]"


def test_a_file_url_makes_a_local_store_and_its_directories(tmp_path: Path) -> None:
    url = (tmp_path / "objects").as_uri()

    storage = storage_from_url(url)

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "objects"
    assert (tmp_path / "objects" / "objects").is_dir()
    assert storage.describe() == url


def test_a_file_url_may_name_localhost_and_escape_characters(tmp_path: Path) -> None:
    storage = storage_from_url(f"file://localhost{tmp_path}/with%20space")

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "with space"


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("s3://models", ""),
        ("s3://models/", ""),
        ("s3://models/gateway", "gateway"),
        ("s3://models/gateway/prod/", "gateway/prod"),
    ],
)
def test_an_s3_url_makes_an_s3_store(url: str, prefix: str) -> None:
    storage = storage_from_url(
        url, s3_endpoint_url="http://127.0.0.1:9000", s3_region="eu-central-1"
    )

    assert isinstance(storage, S3Storage)
    assert storage.bucket == "models"
    assert storage.prefix == prefix
    assert storage.describe() == (
        f"s3://models/{prefix} (endpoint http://127.0.0.1:9000, region eu-central-1)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/srv/objects",
        "objects",
        "http://example.org/objects",
        "gs://bucket/prefix",
        "file://srv/objects",
        "file:objects",
        "file:///srv/objects?mode=fast",
        "s3://",
        "s3:///prefix",
        "s3://bucket:9000/prefix",
        "s3://bucket/prefix#fragment",
    ],
)
def test_any_other_url_is_refused_with_what_was_expected(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(EXPECTED)):
        storage_from_url(url)


def test_credentials_in_an_s3_url_are_refused_without_repeating_them() -> None:
    with pytest.raises(ValueError, match=re.escape(EXPECTED)) as caught:
        storage_from_url("s3://AKIAEXAMPLE:hunter2@bucket/prefix")

    assert "hunter2" not in str(caught.value)
    assert "AKIAEXAMPLE" not in str(caught.value)
    assert "holds credentials" in str(caught.value)
