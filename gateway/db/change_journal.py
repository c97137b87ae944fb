"""SQLite's change journal: how one gateway process learns which watched tables another
process's commits wrote (gateway/db/changes.py reads it before each cache lookup).

A file beside the database (`<file>-changes`): every process appends one line per commit,
the names of the watched tables it wrote, and each reads from where it last read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

logger = logging.getLogger("gateway.db.changes")

# Any table: what a reader assumes when it cannot tell what changed.
EVERYTHING = "*"
# The journal starts again (a new file) once it is this long.
JOURNAL_MAX_BYTES = 1 << 20


class Journal:
    """The tables that commits wrote, one line per commit, appended by every process on one
    SQLite database file and read by each from where it last read.

    Appends are single `O_APPEND` writes, so lines from several processes never mix; a
    line still being written (no newline yet) is read next time. When the file grows past
    JOURNAL_MAX_BYTES a writer replaces it with an empty one: a reader that finds another
    file than it was reading forgets everything once, and a writer that appended to the
    file just replaced appends again to the new one.
    """

    def __init__(self, path: Path, watched: frozenset[str]) -> None:
        self.path = path
        self._watched = watched
        self._file, self._offset = self._where()
        self._warned = False

    def _where(self) -> tuple[tuple[int, int] | None, int]:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None, 0
        return (found.st_dev, found.st_ino), found.st_size

    def append(self, tables: Iterable[str]) -> None:
        line = (" ".join(sorted(tables)) + "\n").encode()
        try:
            for _attempt in range(2):
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    written = os.fstat(fd)
                    end = written.st_size
                finally:
                    os.close(fd)
                here = (written.st_dev, written.st_ino)
                # What this process wrote itself it has already forgotten (`committed`).
                if self._file in (here, None) and end - len(line) == self._offset:
                    self._file, self._offset = here, end
                if end > JOURNAL_MAX_BYTES:
                    self._start_again()
                    return
                if self._where()[0] == here:
                    return
                # Replaced while this process appended: the new file has to say it too.
        except OSError:
            if not self._warned:
                logger.warning(
                    "cannot write the change journal %s; other processes see this one's "
                    "changes within the time to live",
                    self.path,
                    exc_info=True,
                )
            self._warned = True

    def _start_again(self) -> None:
        fresh = self.path.with_name(f"{self.path.name}.{os.getpid()}.new")
        fresh.write_bytes(b"")
        os.replace(fresh, self.path)

    def news(self) -> set[str] | None:
        """The tables written since the last look (EVERYTHING when it cannot tell), or
        None when nothing was."""
        file, size = self._where()
        if file == self._file and size == self._offset:
            return None
        if self._file is None and file is not None:
            # The first journal: nothing was written before it.
            self._file, self._offset = file, 0
            return self._read()
        if file != self._file or size < self._offset:
            self._file, self._offset = file, 0
            self._read()  # what the new file holds is part of everything
            return {EVERYTHING}
        return self._read()

    def _read(self) -> set[str] | None:
        try:
            with open(self.path, "rb") as journal:
                journal.seek(self._offset)
                chunk = journal.read()
        except FileNotFoundError:
            return None
        whole = chunk.rfind(b"\n") + 1
        if whole == 0:
            return None
        self._offset += whole
        tables: set[str] = set()
        for name in chunk[:whole].decode(errors="replace").split():
            tables.add(name if name in self._watched else EVERYTHING)
        return tables or None


_JOURNALS: dict[Path, Journal] = {}


def journal_of(database_url: str, watched: frozenset[str]) -> Journal | None:
    """This process's journal of the SQLite database file at `database_url`, naming
    `watched` tables (None for a database in memory)."""
    url = make_url(database_url)
    name = url.database
    if not name or name == ":memory:" or url.query.get("mode") == "memory":
        return None
    path = Path(name).resolve()
    path = path.with_name(f"{path.name}-changes")
    found = _JOURNALS.get(path)
    if found is None:
        found = _JOURNALS[path] = Journal(path, watched)
    return found
