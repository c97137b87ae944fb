"""The Content-Disposition header that makes a browser save a download under a name."""

import string
from urllib.parse import quote

# Printable ASCII that needs no escaping inside a quoted-string (RFC 6266 / RFC 9110).
_PLAIN = frozenset(string.ascii_letters + string.digits + " !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def attachment_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` fallback and the exact UTF-8 `filename*`.

    Only the last path segment is used, and characters that could break the header
    (quotes, backslashes, control characters) never reach it unescaped.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in {".", ".."}:
        raise ValueError(f"not a usable download file name: {filename!r}")
    fallback = "".join(char if char in _PLAIN else "_" for char in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
