"""Files an operator names as input (a license, use guidance, a policy, an evidence report).

Rules of this module:
- Only a regular file is read (a link to one is followed). A device (`/dev/zero`), a
  FIFO, a socket or a folder is refused before a byte is read: reading one could block
  or never end.
- Opening never blocks: a FIFO with no writer is refused like any other non-file.
- A file is read up to its limit and no further; a larger one is refused, even one that
  grows while it is read.
- Every refusal is an InvalidInput that names the file, with the code `<what>_missing`
  or `<what>_invalid`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.errors import InvalidInput

# A license or use guidance is a few dozen KiB; a policy file a few KiB.
TEXT_FILE_MAX_BYTES = 1024 * 1024


def read_input_file(path: Path, *, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`; InvalidInput naming it otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInput(f"{what} file {path}: no such file", code=f"{what}_missing") from None
    except OSError as exc:
        raise _invalid(path, what, f"cannot open it ({exc.strerror or exc})") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _invalid(path, what, f"not a regular file ({_kind(mode)})")
    with os.fdopen(fd, "rb") as source:
        try:
            data = source.read(max_bytes + 1)
        except OSError as exc:
            raise _invalid(path, what, f"cannot read it ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise _invalid(path, what, f"larger than the limit of {_size(max_bytes)}")
    return data


def read_input_text(path: Path, *, what: str, max_bytes: int = TEXT_FILE_MAX_BYTES) -> str:
    """The UTF-8 text of the regular file at `path`; InvalidInput naming it otherwise."""
    data = read_input_file(path, what=what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(path, what, f"cannot read it as UTF-8 text ({exc})") from exc


def _invalid(path: Path, what: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{what} file {path}: {problem}", code=f"{what}_invalid")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _size(nbytes: int) -> str:
    if nbytes >= 1024 * 1024 and nbytes % (1024 * 1024) == 0:
        return f"{nbytes // (1024 * 1024)} MiB"
    return f"{nbytes} bytes"
