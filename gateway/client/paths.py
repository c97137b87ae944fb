"""Where a file named by the server may be written: only inside the download folder.

The server's paths are data from the network. A path that is absolute, climbs out with
"..", or names a Windows drive could overwrite any file the user can write, so it is
refused before anything touches the disk.
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.client.errors import unexpected

PART_SUFFIX = ".part"
_DRIVE = re.compile(r"[A-Za-z]:")


def check_relative_path(path: str) -> str:
    """Return `path` if it is a plain relative POSIX path; raise DownloadFailed if not."""
    problem = _problem(path)
    if problem:
        raise unexpected(f"the server sent an unsafe file path {path!r}: {problem}")
    return path


def _problem(path: str) -> str | None:
    parts = path.split("/")
    checks = (
        (not path, "it is empty"),
        ("\x00" in path or "\\" in path, "it contains a NUL byte or a backslash"),
        (path.startswith("/"), "it is absolute"),
        (bool(_DRIVE.match(parts[0])), "it names a drive"),
        (any(p in ("", ".", "..") for p in parts), "it has an empty, '.' or '..' segment"),
        # Our own partial files end in .part; a release file named so would be taken for one.
        (parts[-1].endswith(PART_SUFFIX), f"it ends in {PART_SUFFIX}"),
    )
    return next((problem for failed, problem in checks if failed), None)


def target_path(root: Path, path: str) -> Path:
    """The final location of `path` under `root`, which must stay inside `root`.

    Resolving catches a symlink already in the folder that points elsewhere.
    """
    target = root / check_relative_path(path)
    if not target.resolve().is_relative_to(root.resolve()):
        raise unexpected(f"the file path {path!r} leads outside {root} through a link")
    return target


def part_path(target: Path) -> Path:
    """Where `target` is written until its SHA-256 is checked."""
    return target.with_name(target.name + PART_SUFFIX)


def check_unique(paths: list[str]) -> None:
    """Two artifacts with one path (or a file that is also a folder) cannot both be written."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise unexpected(f"the server listed {path!r} twice")
        seen.add(path)
    folders = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    clash = sorted(seen & folders)
    if clash:
        raise unexpected(f"the server listed {clash[0]!r} as both a file and a folder")
