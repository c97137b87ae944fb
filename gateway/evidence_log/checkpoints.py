"""Checkpoints in the C2SP signed-note format (c2sp.org/tlog-checkpoint, signed-note).

A checkpoint reads:

    <origin>
    <tree size>
    <root hash, base64>
    time <RFC 3339, UTC>

    — <key name> <base64(key id || Ed25519 signature)>

The signature covers the text before the blank line. The key id is the first four bytes
of SHA-256(key name, "\\n", 0x01, public key); the verifier key that tools such as the
reference verifier read is `<name>+<key id, hex>+<base64(0x01 || public key)>`. The
origin is the key name: `<host of the public URL>/evidence`.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_ED25519: Final = b"\x01"
EM_DASH: Final = "\u2014"


def key_name_for(public_url: str) -> str:
    """The log's name: the host (and port) of the gateway's public URL, then /evidence."""
    return f"{urlsplit(public_url).netloc or 'localhost'}/evidence"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    encoded = base64.b64encode(_ED25519 + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def body(origin: str, size: int, root: bytes, at: datetime) -> str:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {stamp}\n"


def sign(private_key: Ed25519PrivateKey, name: str, text: str) -> str:
    """The signed note of `text` (a checkpoint body)."""
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(text.encode())
    stamp = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{text}\n{EM_DASH} {name} {stamp}\n"
