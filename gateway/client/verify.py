"""The release signature, checked without reading the files again.

The downloaded files were already hashed on the way in and matched the digests the
gateway listed. What remains is to show those digests are the ones the release signer
signed: check the bundle's envelope signature with the public key, take the signed
manifest from it, and compare (path, digest) pairs. The result is the same as running
`model_signing verify key` over the folder, at the cost of one small JSON document
instead of a second pass over every byte.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from gateway.client.errors import signature_invalid

_SHOWN = 5  # list at most this many problem paths in a message


def signed_digests(bundle: str, public_pem: bytes) -> dict[str, str]:
    """The (path -> sha256 hex) pairs a bundle signs, once its signature checks out."""
    from cryptography.exceptions import InvalidSignature
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    with tempfile.TemporaryDirectory() as scratch:
        # model_signing reads both from files; write them where nobody else looks.
        signature_file = Path(scratch) / "release.sig"
        key_file = Path(scratch) / "key.pem"
        signature_file.write_text(bundle, encoding="utf-8")
        key_file.write_bytes(public_pem)
        try:
            signature = sign_sigstore_pb.Signature.read(signature_file)
            signed = sign_ec_key.Verifier(key_file).verify(signature)
        except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
            raise signature_invalid(
                f"the release signature does not verify with the gateway's key: "
                f"{exc or type(exc).__name__}"
            ) from exc
    method = signed.serialization_type.get("method")
    if method != "files":
        raise signature_invalid(f"the release signature hashes {method!r}, not whole files")
    digests: dict[str, str] = {}
    for resource in signed.resource_descriptors():
        if resource.digest.algorithm != "sha256":
            raise signature_invalid(
                f"{resource.identifier} is signed with {resource.digest.algorithm}, not sha256"
            )
        digests[resource.identifier] = resource.digest.digest_hex
    return digests


def check_files(signed: Mapping[str, str], files: Mapping[str, str], *, complete: bool) -> None:
    """Every downloaded (path, sha256) must be signed; with `complete`, nothing signed missing."""
    unsigned = sorted(p for p in files if p not in signed)
    changed = sorted(p for p in files if p in signed and signed[p] != files[p])
    missing = sorted(p for p in signed if p not in files) if complete else []
    problems = [
        *(f"{p} is not in the signed release" for p in unsigned),
        *(f"{p} has another digest than the signed one" for p in changed),
        *(f"{p} is signed but was not downloaded" for p in missing),
    ]
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise signature_invalid("; ".join(problems[:_SHOWN]) + more)


def verify_release(
    bundle: str, public_pem: bytes, files: Mapping[str, str], *, complete: bool
) -> int:
    """Check downloaded files against the release signature; returns how many are signed."""
    signed = signed_digests(bundle, public_pem)
    check_files(signed, files, complete=complete)
    return len(signed)
