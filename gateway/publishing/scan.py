"""Walk a release folder and refuse what cannot be published, before anything is stored."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import InvalidInput
from gateway.signing.release import IGNORED_NAMES


@dataclass(frozen=True)
class FolderFile:
    path: str  # relative, POSIX separators
    source: Path  # what to read (a link inside the folder is read through)
    size: int


def scan_folder(folder: Path) -> list[FolderFile]:
    """Every regular file below `folder`, sorted by path, or InvalidInput saying what is wrong."""
    if not folder.exists():
        raise InvalidInput(f"{folder}: no such folder", code="folder_missing")
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder", code="folder_missing")
    root = folder.resolve()
    found: list[FolderFile] = []
    problems: list[str] = []
    for dirpath, dirnames, all_files in os.walk(root, followlinks=False):
        here = Path(dirpath)
        filenames = all_files
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in IGNORED_NAMES]
            filenames = [f for f in all_files if f not in IGNORED_NAMES]
        dirnames.sort()
        for name in list(dirnames):
            entry = here / name
            if entry.is_symlink():
                problems.append(f"{_rel(entry, root)}: a link to a folder; copy the folder instead")
                dirnames.remove(name)
        for name in sorted(filenames):
            entry = here / name
            rel = _rel(entry, root)
            problem = _check_name(rel)
            if problem is None:
                problem = _check_entry(entry, root)
            if problem is not None:
                problems.append(f"{rel}: {problem}")
                continue
            found.append(FolderFile(path=rel, source=entry, size=entry.stat().st_size))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InvalidInput(f"cannot publish {folder}:\n  {shown}{more}", code="folder_invalid")
    if not found:
        raise InvalidInput(f"{folder}: the folder has no files to publish", code="folder_empty")
    return sorted(found, key=lambda f: f.path)


def _rel(entry: Path, root: Path) -> str:
    return entry.relative_to(root).as_posix()


def _check_name(rel: str) -> str | None:
    if len(rel) > 1024:
        return "path longer than 1024 characters"
    if "\\" in rel or any(ord(c) < 32 for c in rel):
        return "the path has a backslash or a control character"
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    return None


def _check_entry(entry: Path, root: Path) -> str | None:
    if entry.is_symlink():
        target = entry.resolve()
        if not target.is_relative_to(root):
            return f"a link that leaves the folder (to {target})"
        if not target.exists():
            return "a broken link"
    try:
        mode = entry.stat().st_mode
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if not os.access(entry, os.R_OK):
        return "not readable"
    return None
