"""The API key format: `rgk_` + 22 base62 characters (131 random bits) + a 6-character
base62 CRC32 of everything before it.

The fixed prefix lets secret scanners recognise a leaked key; the checksum lets the
gateway refuse a mistyped or made-up key without touching the database. Only the
SHA-256 of a key is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "rgk_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_CHARS = 22  # 62**22 > 2**130
_CHECKSUM_CHARS = 6  # 62**6 > 2**32
_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{_SECRET_CHARS + _CHECKSUM_CHARS}}}")
DISPLAY_CHARS = 12  # `rgk_` and the first 8 characters of the secret


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECKSUM_CHARS)


def new_api_key() -> str:
    """A fresh key, e.g. `rgk_4nT0...`; 32 characters."""
    body = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_CHARS))
    return body + _checksum(body)


def is_well_formed(key: str) -> bool:
    """Right prefix, length, alphabet and checksum: worth a database lookup."""
    if not _SHAPE.fullmatch(key):
        return False
    body, checksum = key[:-_CHECKSUM_CHARS], key[-_CHECKSUM_CHARS:]
    return secrets.compare_digest(_checksum(body), checksum)


def key_digest(key: str) -> str:
    """What is stored: the SHA-256 of the key (it has 131 random bits, so no salt or KDF)."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]
