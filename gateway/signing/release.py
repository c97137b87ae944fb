"""Release signatures in the OpenSSF model signing format.

The manifest is built from the SHA-256 digests computed while the files were stored, so
publishing reads every file once. The result is the same bundle `model_signing sign key`
would write for the folder, so anyone can check it with `model_signing verify key`.
"""

from __future__ import annotations

import hashlib
import pathlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.credentials.key_encryption import create_private_file, owner_only

KEY_FILE = "release-signing-key.pem"
# model_signing skips these when it hashes a folder; publishing skips them too.
IGNORED_NAMES = frozenset({".git", ".gitattributes", ".github", ".gitignore"})


class SignatureInvalid(Exception):
    """A folder does not match a release signature."""


@dataclass(frozen=True)
class SigningKey:
    path: Path
    public_pem: bytes
    key_id: str  # SHA-256 of the DER public key, hex


def ensure_signing_key(keys_dir: Path) -> SigningKey:
    """Load the release signing key, generating a P-256 key on first use; mode 0600."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / KEY_FILE
    if not path.exists():
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Two processes starting at once never write different keys, and neither reads a
        # half-written one.
        create_private_file(path, pem)
    # A key readable by others could sign a release in the provider's name.
    owner_only(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an elliptic-curve private key")
    public = loaded.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(path=path, public_pem=public_pem, key_id=hashlib.sha256(der).hexdigest())


@dataclass(frozen=True)
class SignedManifest:
    bundle: str  # the bundle JSON as model_signing writes it
    root_sha256: str  # the in-toto subject digest: SHA-256 over the sorted file digests


def sign_release(
    model_name: str, files: Iterable[tuple[str, str]], key: SigningKey
) -> SignedManifest:
    """Sign `(relative posix path, sha256 hex)` pairs with the release key."""
    from model_signing import manifest
    from model_signing._hashing import hashing
    from model_signing._signing import sign_ec_key, signing

    files = sorted(files)
    items = [
        manifest.FileManifestItem(
            path=pathlib.PurePosixPath(path), digest=hashing.Digest("sha256", bytes.fromhex(digest))
        )
        for path, digest in files
    ]
    # allow_symlinks: links that stay inside the folder are published as the file they
    # point to, and the verifier must follow them the same way.
    serialization_type = manifest._FileSerialization("sha256", allow_symlinks=True)
    signed = manifest.Manifest(model_name, items, serialization_type)
    payload = signing.Payload(signed)
    signature = sign_ec_key.Signer(key.path).sign(payload)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.sig"
        signature.write(out)
        bundle = out.read_text(encoding="utf-8")
    root = hashlib.sha256(b"".join(bytes.fromhex(d) for _, d in files)).hexdigest()
    return SignedManifest(bundle=bundle, root_sha256=root)


def verify_folder(folder: Path, bundle: str, public_pem: bytes) -> None:
    """Check a downloaded folder against a release signature; raise SignatureInvalid."""
    from model_signing import hashing, verifying

    with tempfile.TemporaryDirectory() as tmp:
        sig = Path(tmp) / "model.sig"
        key = Path(tmp) / "key.pem"
        sig.write_text(bundle, encoding="utf-8")
        key.write_bytes(public_pem)
        try:
            # The verifier does not take allow_symlinks from the bundle; say it the same way.
            hashing_config = (
                hashing.Config()  # type: ignore[no-untyped-call]
                .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=True)
                .set_allow_symlinks(True)
            )
            config = verifying.Config().use_elliptic_key_verifier(public_key=key)  # type: ignore[no-untyped-call]
            config.set_hashing_config(hashing_config).verify(folder, sig)
        except ValueError as exc:
            raise SignatureInvalid(str(exc)) from exc
