"""The log's tree (RFC 6962 / RFC 9162), over hashes held anywhere.

Rules of this module:
- Pure: no I/O. A perfect subtree is named by its coordinates `(level, position)`: the
  2**level leaves from position * 2**level. The shell stores each once it is complete
  (level 0 is the leaf hash itself) and hands back the hashes a computation asks for.
- Each computation is split in two: which coordinates it needs (so the shell fetches
  them in one query), then the result from a mapping of those coordinates to hashes.
- The empty tree's root is SHA-256 of nothing; sizes and indexes are checked here, and a
  bad one is a ValueError naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Coordinates = tuple[int, int]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def subtrees(start: int, end: int) -> list[Coordinates]:
    """The perfect subtrees that make up leaves [start, end), left to right, each as
    large as its position allows (the compact range)."""
    found = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        found.append((level, start >> level))
        start += 1 << level
    return found


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root over perfect subtrees of decreasing size, left to right."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def range_hash(start: int, end: int, nodes: Mapping[Coordinates, bytes]) -> bytes:
    """The tree hash of leaves [start, end), a range that RFC 6962's splitting produces."""
    return fold([nodes[c] for c in subtrees(start, end)])


def _split(size: int) -> int:
    """The largest power of two below `size` (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are the audit path of leaf `index` in a tree of
    `size` (RFC 6962 PATH), from the leaf's side up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        half = _split(end - start)
        if index < start + half:
            ranges.append((start + half, end))
            end = start + half
        else:
            ranges.append((start, start + half))
            start += half
    return ranges[::-1]


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes prove the tree of `old` leaves a prefix of the tree of
    `new` (RFC 6962 SUBPROOF(old, D[0:new], true))."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    if old in (0, new):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, new, True
    m = old
    while m != end - start:
        half = _split(end - start)
        if m <= half:
            ranges.append((start + half, end))
            end = start + half
        else:
            ranges.append((start, start + half))
            start += half
            m -= half
            whole = False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def needed(ranges: Iterable[tuple[int, int]]) -> set[Coordinates]:
    """Every stored subtree the hashes of `ranges` are made of."""
    return {c for start, end in ranges for c in subtrees(start, end)}


def hashes_of(ranges: Sequence[tuple[int, int]], nodes: Mapping[Coordinates, bytes]) -> list[bytes]:
    return [range_hash(start, end, nodes) for start, end in ranges]


@dataclass
class Appender:
    """Appends leaves to a tree of `size` leaves whose compact range is `frontier` (the
    hashes of `subtrees(0, size)`), collecting every subtree the new leaves complete."""

    size: int
    frontier: list[tuple[int, bytes]]

    @classmethod
    def over(cls, size: int, nodes: Mapping[Coordinates, bytes]) -> Appender:
        return cls(size, [(level, nodes[level, pos]) for level, pos in subtrees(0, size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; the subtrees above level 0 it completes, as (level,
        position, hash)."""
        completed = []
        stack = self.frontier
        stack.append((0, leaf))
        self.size += 1
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            level, right = stack.pop()
            _, left = stack.pop()
            joined = node_hash(left, right)
            stack.append((level + 1, joined))
            completed.append((level + 1, (self.size >> (level + 1)) - 1, joined))
        return completed

    @property
    def root(self) -> bytes:
        return fold([hashed for _, hashed in self.frontier])
