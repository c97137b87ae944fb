"""Which files of a release the user asked for: --components and --include.

A file is selected when its component is one of --components (if given) and its path
matches one of the --include globs (if given). Globs follow the publish rules of
`policies.components`: a glob without "/" matches the file name in any folder, a glob
with "/" matches the whole path, and matching is case-sensitive everywhere.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Selection:
    components: frozenset[str] = frozenset()
    includes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, components: Iterable[str], includes: Iterable[str]) -> Selection:
        """From repeatable, comma-separated --components and repeatable --include."""
        names = frozenset(
            part.strip() for value in components for part in value.split(",") if part.strip()
        )
        return cls(names, tuple(g for g in includes if g))

    @property
    def everything(self) -> bool:
        return not self.components and not self.includes

    def matches(self, path: str, component: str) -> bool:
        if self.components and component not in self.components:
            return False
        if not self.includes:
            return True
        name = posixpath.basename(path)
        return any(fnmatchcase(path if "/" in g else name, g) for g in self.includes)
