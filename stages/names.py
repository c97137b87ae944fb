"""Names of models and releases: `org/name` and `org/name:version`.

Parsing is strict so that names are safe in URLs, object keys and shell commands alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9])?")


class InvalidName(ValueError):
    """A model reference or version that the gateway does not accept."""


@dataclass(frozen=True, order=True)
class ModelRef:
    org: str
    name: str

    def __str__(self) -> str:
        return f"{self.org}/{self.name}"


@dataclass(frozen=True, order=True)
class ReleaseRef:
    model: ModelRef
    version: str

    def __str__(self) -> str:
        return f"{self.model}:{self.version}"


def parse_model_ref(text: str) -> ModelRef:
    """Parse `org/name`; both parts are 1-64 letters, digits, `.`, `_` or `-`."""
    org, sep, name = text.partition("/")
    if not sep or not _PART.fullmatch(org) or not _PART.fullmatch(name) or ".." in text:
        raise InvalidName(
            f"invalid model name {text!r}: expected ORG/NAME, each 1-64 letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit"
        )
    return ModelRef(org, name)


def check_version(version: str) -> str:
    """Return the version if valid: 1-64 letters, digits, `.`, `_`, `+` or `-`."""
    if not _VERSION.fullmatch(version) or ".." in version:
        raise InvalidName(
            f"invalid version {version!r}: expected 1-64 letters, digits, '.', '_', '+' or '-', "
            "starting and ending with a letter or digit"
        )
    return version


def parse_release_ref(text: str, *, version_required: bool = True) -> tuple[ModelRef, str | None]:
    """Parse `org/name:version` (the version may be optional for some commands)."""
    model_text, sep, version = text.partition(":")
    if not sep and version_required:
        raise InvalidName(f"invalid release {text!r}: expected ORG/NAME:VERSION")
    model = parse_model_ref(model_text)
    return model, check_version(version) if sep else None
