"""Free text from people: refused with a clear message when it is not text a person typed.

PostgreSQL cannot store NUL at all, and other control characters are never typed on
purpose; both would otherwise surface as a 500 deep in the database driver.
"""

from __future__ import annotations

from gateway.errors import InvalidInput

_ALLOWED_CONTROLS = frozenset("\t")
_LINE_BREAKS = frozenset("\n\r")


def clean_text(
    value: str | None,
    *,
    field: str,
    max_length: int,
    multiline: bool = True,
    required: bool = False,
) -> str | None:
    """`value` stripped, or None when empty and optional; InvalidInput naming `field` otherwise."""
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{field} is required", code="text_required")
        return None
    allowed = _ALLOWED_CONTROLS | (_LINE_BREAKS if multiline else frozenset())
    if any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in text):
        kind = "control characters" if multiline else "line breaks or control characters"
        raise InvalidInput(f"{field} may not contain {kind}", code="text_invalid")
    if len(text) > max_length:
        raise InvalidInput(f"{field} is at most {max_length} characters", code="text_too_long")
    return text
