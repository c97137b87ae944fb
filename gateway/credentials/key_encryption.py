"""Private keys at rest: sealed with a key-encryption key (KEK) that is not in the database.

A database dump alone therefore cannot mint a download URL. The KEK comes from
`GATEWAY_SECRET_KEY` (every replica of a fleet needs the same value) or, on one machine,
from a file under `GATEWAY_HOME/keys` created with mode 0600 on first start. Both hold one
or more keys: the first seals, every one of them opens, so a KEK can be rotated without a
moment in which some process cannot read what another wrote. A KMS can stand in later
behind the same small interface.

A sealed value reads `rgkek1:<kek id>:<base64url(nonce || AES-256-GCM ciphertext)>`; the
kid of the signing key is the associated data, so a sealed key moved onto another row
does not open. The kek id is a one-way fingerprint of the KEK: it tells a wrong KEK from
a damaged value, and names which KEK a row needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.config import ConfigError, Settings

logger = logging.getLogger("gateway.keys")
SCHEME = "rgkek1"
KEK_FILE = "secret-key"
KEK_BYTES = 32
_NONCE_BYTES = 12
ROTATE_THE_SETTING = (
    "GATEWAY_SECRET_KEY is set: put a new key first in it, keep the old one after a comma, "
    "and restart every replica; each start re-encrypts the keys under the first"
)
HOW_TO_MAKE_ONE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


class KeyEncryptionError(ConfigError):
    """The key-encryption key is missing, wrong, or cannot open a sealed value."""


class KeyEncryptor(Protocol):
    """Seals and opens private keys; `kid` is bound to the ciphertext."""

    @property
    def source(self) -> str:
        """Where the key-encryption key comes from, for messages (a setting or a file)."""

    def seal(self, plaintext: bytes, *, kid: str) -> str:
        """The sealed text of `plaintext`, under the key that seals now."""

    def open(self, sealed: str, *, kid: str) -> bytes:
        """The plaintext of a sealed value; KeyEncryptionError if no key here opens it."""

    def is_current(self, sealed: str) -> bool:
        """Whether `sealed` is sealed under the key that seals now (else: re-seal it)."""

    def create_if_missing(self) -> None:
        """Make the key-encryption key if there is none; called only while nothing is sealed."""


def is_sealed(value: str) -> bool:
    return value.startswith(f"{SCHEME}:")


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"release-gateway kek id\0" + kek).hexdigest()[:16]


def parse_keks(text: str, where: str) -> list[bytes]:
    """Keys from a comma- or line-separated list of base64url values of 32 bytes each."""
    parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    if not parts:
        raise KeyEncryptionError(f"{where}: expected a key; make one with {HOW_TO_MAKE_ONE}")
    keys = []
    for number, part in enumerate(parts, start=1):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEK_BYTES:
            raise KeyEncryptionError(
                f"{where}: key {number} is not {KEK_BYTES} bytes of base64url; "
                f"make one with {HOW_TO_MAKE_ONE}"
            )
        keys.append(raw)
    return keys


def new_kek_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEK_BYTES)).decode().rstrip("=")


class LocalKeyEncryptor:
    """AES-256-GCM with keys from `GATEWAY_SECRET_KEY` or from a file of this gateway's home.

    The file is read when first needed and again when a sealed value names a key it does
    not hold (another process on this machine rotated the KEK); it is created only by
    `create_if_missing()`, which the start-up check calls when the database holds no sealed key.
    """

    def __init__(self, *, keys: list[bytes] | None = None, path: Path | None = None) -> None:
        assert (keys is None) != (path is None), "keys from the setting or a file, not both"
        self._keys = keys
        self._path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> LocalKeyEncryptor:
        if settings.secret_key is not None:
            return cls(keys=parse_keks(settings.secret_key, "GATEWAY_SECRET_KEY"))
        return cls(path=settings.keys_dir / KEK_FILE)

    @property
    def source(self) -> str:
        return "GATEWAY_SECRET_KEY" if self._path is None else str(self._path)

    @property
    def path(self) -> Path | None:
        """The file the keys come from; None when they come from the setting."""
        return self._path

    def exists(self) -> bool:
        return self._path is None or self._path.exists()

    def create_if_missing(self) -> None:
        """Write a fresh key file (mode 0600) unless one exists; a no-op with the setting."""
        if self._path is None or self._path.exists():
            return
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_file(self._path, (new_kek_text() + "\n").encode())
        self._keys = None

    def add_key(self) -> str:
        """Put a fresh key first in the file (the others stay to open older values)."""
        if self._path is None:
            raise KeyEncryptionError(ROTATE_THE_SETTING)
        current = self._path.read_text(encoding="utf-8") if self._path.exists() else ""
        fresh = new_kek_text()
        _write_private(self._path, fresh + "\n" + current).replace(self._path)
        self._keys = None
        return kek_id(parse_keks(fresh, "the new key")[0])

    def _loaded(self, *, reload: bool = False) -> list[bytes]:
        if self._path is None:
            assert self._keys is not None
            return self._keys
        if self._keys is None or reload:
            if not self._path.exists():
                raise KeyEncryptionError(
                    f"the key-encryption key file {self._path} is missing; restore it, or "
                    "set GATEWAY_SECRET_KEY to the key it held"
                )
            owner_only(self._path)
            try:
                text = self._path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyEncryptionError(f"{self._path}: cannot read: {exc}") from exc
            self._keys = parse_keks(text, str(self._path))
        return self._keys

    def current_id(self) -> str:
        return kek_id(self._loaded()[0])

    def seal(self, plaintext: bytes, *, kid: str) -> str:
        kek = self._loaded()[0]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = AESGCM(kek).encrypt(nonce, plaintext, _associated(kid))
        encoded = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
        return f"{SCHEME}:{kek_id(kek)}:{encoded}"

    def open(self, sealed: str, *, kid: str) -> bytes:
        scheme, _, rest = sealed.partition(":")
        wanted, _, encoded = rest.partition(":")
        if scheme != SCHEME or not wanted or not encoded:
            raise KeyEncryptionError(f"the private key of URL signing key {kid} is not sealed")
        kek = self._find(wanted)
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return AESGCM(kek).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(kid))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise KeyEncryptionError(
                f"the private key of URL signing key {kid} does not open with "
                f"key-encryption key {wanted} from {self.source}: it was changed or moved"
            ) from exc

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(f"{SCHEME}:{self.current_id()}:")

    def _find(self, wanted: str) -> bytes:
        for attempt in (False, True):
            if attempt and self._path is None:
                break
            for kek in self._loaded(reload=attempt):
                if kek_id(kek) == wanted:
                    return kek
        held = ", ".join(kek_id(k) for k in self._loaded())
        raise KeyEncryptionError(
            f"the URL signing keys in the database were encrypted with key-encryption key "
            f"{wanted}, but {self.source} holds {held}: set GATEWAY_SECRET_KEY (or restore "
            "the key file) to the key they were encrypted with; every replica needs the same"
        )


def create_private_file(path: Path, content: bytes) -> None:
    """Create `path` (mode 0600) holding `content`, unless it exists. Written and synced
    beside it first, then hard-linked into place: the name appears whole or not at all,
    and of two processes starting at once one file wins and both read it."""
    written = _write_private(path, content)
    try:
        os.link(written, path)
    except FileExistsError:
        pass
    finally:
        written.unlink()


def _write_private(beside: Path, content: bytes | str) -> Path:
    """A new file next to `beside`, mode 0600 from its creation, written and synced."""
    data = content.encode() if isinstance(content, str) else content
    path = beside.with_name(f".{beside.name}.{secrets.token_hex(8)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path


def _associated(kid: str) -> bytes:
    return f"release-gateway url-signing-key:{kid}".encode()


def owner_only(path: Path) -> None:
    """Make a secret file readable by its owner alone (mode 0600), saying so if it was not."""
    mode = path.stat().st_mode & 0o777
    if not mode & 0o077:
        return
    try:
        path.chmod(0o600)
    except OSError as exc:
        logger.warning("%s is readable by others (mode %o), unfixable: %s", path, mode, exc)
        return
    logger.warning("%s was readable by others (mode %o); it is now 0600", path, mode)
