"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import InvalidInput

_HASHER = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 1024  # hashing is deliberately slow; a megabyte password is a denial of service
# Verifying against this when the account does not exist takes the same time as a real
# check, so response times do not reveal which emails have accounts.
_DECOY = _HASHER.hash("decoy password that matches nothing")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"choose a password of at least {MIN_LENGTH} characters", code="weak_password"
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password is at most {MAX_LENGTH} characters", code="weak_password")
    if len(set(password)) < 4:
        raise InvalidInput("that password is too easy to guess", code="weak_password")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored or _DECOY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
