"""The signature check without re-reading files, against bundles the gateway really makes."""

from __future__ import annotations

import hashlib
import json
from base64 import b64decode, b64encode
from pathlib import Path

import pytest

from gateway.client.errors import DownloadFailed
from gateway.client.verify import signed_digests, verify_release
from gateway.signing.release import SigningKey, ensure_signing_key, sign_release

FILES = {
    "model.safetensors": hashlib.sha256(b"weights").hexdigest(),
    "shards/b.safetensors": hashlib.sha256(b"more").hexdigest(),
    "README.md": hashlib.sha256(b"card").hexdigest(),
}


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return ensure_signing_key(tmp_path / "keys")


@pytest.fixture
def bundle(key: SigningKey) -> str:
    return sign_release("sample", FILES.items(), key).bundle


def test_signed_digests_are_the_published_ones(bundle: str, key: SigningKey) -> None:
    assert signed_digests(bundle, key.public_pem) == FILES


def test_the_whole_release_verifies(bundle: str, key: SigningKey) -> None:
    assert verify_release(bundle, key.public_pem, FILES, complete=True) == 3


def test_a_subset_verifies_unless_it_claims_to_be_complete(bundle: str, key: SigningKey) -> None:
    subset = {"README.md": FILES["README.md"]}
    assert verify_release(bundle, key.public_pem, subset, complete=False) == 3
    with pytest.raises(DownloadFailed, match=r"model\.safetensors is signed but was not") as caught:
        verify_release(bundle, key.public_pem, subset, complete=True)
    assert caught.value.exit_code == 41


def test_a_digest_the_signer_did_not_sign_fails(bundle: str, key: SigningKey) -> None:
    changed = {**FILES, "README.md": hashlib.sha256(b"other card").hexdigest()}
    with pytest.raises(DownloadFailed, match=r"README\.md has another digest") as caught:
        verify_release(bundle, key.public_pem, changed, complete=False)
    assert caught.value.exit_code == 41


def test_an_unsigned_file_fails(bundle: str, key: SigningKey) -> None:
    extra = {**FILES, "extra.bin": hashlib.sha256(b"x").hexdigest()}
    with pytest.raises(DownloadFailed, match=r"extra\.bin is not in the signed release"):
        verify_release(bundle, key.public_pem, extra, complete=False)


def test_another_key_fails(bundle: str, tmp_path: Path) -> None:
    other = ensure_signing_key(tmp_path / "other")
    with pytest.raises(DownloadFailed, match="does not verify") as caught:
        verify_release(bundle, other.public_pem, FILES, complete=True)
    assert caught.value.exit_code == 41


def test_a_payload_changed_after_signing_fails(bundle: str, key: SigningKey) -> None:
    document = json.loads(bundle)
    envelope = document["dsseEnvelope"]
    payload = json.loads(b64decode(envelope["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "00" * 32
    envelope["payload"] = b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(DownloadFailed, match="does not verify"):
        verify_release(json.dumps(document), key.public_pem, FILES, complete=True)


def test_garbage_is_an_invalid_signature(key: SigningKey) -> None:
    with pytest.raises(DownloadFailed) as caught:
        verify_release("{}", key.public_pem, FILES, complete=True)
    assert caught.value.exit_code == 41
