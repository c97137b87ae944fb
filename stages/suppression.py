# Small-count suppression of published figures, with complementary suppression.
#
# Rules:
# - Figures are named counts bound by relations `total = part + part + ...` (a breakdown
#   of a count). Every count is at least 0. The relations of one report form a forest
#   (two relations share at most one count, and no chain of them comes back to where it
#   began), as a report's breakdowns do: for such relations the bounds below are exactly
#   what a reader can work out, so "no suppressed count is pinned by its bounds" is the
#   same as "no suppressed count can be recovered from the published ones".
# - A count under `min_count` is suppressed (shown as "< min_count"): a reader knows it
#   is in [0, min_count - 1]. A count suppressed only to protect another is
#   complementary: a reader knows it is at least `min_count`.
# - While some suppressed count is pinned (its lowest and highest possible values are
#   equal), the smallest published count of a relation it is in is suppressed as well,
#   parts before totals, then by name: the same figures always give the same result.
# - `min_count` is at least 3: with "< 2" a reader would know 0 or 1, and a relation of
#   two such counts whose total is published as at least 2 gives both away.

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MIN_MIN_COUNT: Final = 3
# An upper bound no count reaches; a complementary count is known only from below.
_UNBOUNDED: Final = 1 << 62


class Shown(StrEnum):
    PUBLISHED = "published"
    BELOW_MIN_COUNT = "below_min_count"
    COMPLEMENTARY = "complementary"


@dataclass(frozen=True)
class Relation:
    total: str
    parts: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return (self.total, *self.parts)


def suppress(
    counts: Mapping[str, int], relations: Iterable[Relation], min_count: int
) -> dict[str, Shown]:
    """How each count is shown: published, suppressed as small, or complementary."""
    if min_count < MIN_MIN_COUNT:
        raise ValueError(f"min_count must be at least {MIN_MIN_COUNT}, not {min_count}")
    bound = tuple(relations)
    shown = {
        name: Shown.BELOW_MIN_COUNT if value < min_count else Shown.PUBLISHED
        for name, value in counts.items()
    }
    while True:
        low, high = bounds(counts, shown, bound, min_count)
        pinned = sorted(
            name
            for name in counts
            if shown[name] is not Shown.PUBLISHED and low[name] == high[name]
        )
        if not pinned:
            return shown
        hidden = sorted(name for name in counts if shown[name] is not Shown.PUBLISHED)
        # Beside a pinned count first; failing that, beside any hidden one, so that the
        # bounds reaching the pinned count through its hidden neighbours widen.
        chosen = _protector(pinned, counts, shown, bound) or _protector(
            hidden, counts, shown, bound
        )
        if chosen is None:
            raise ValueError(f"{pinned[0]} cannot be protected: every count is hidden")
        shown[chosen] = Shown.COMPLEMENTARY


def bounds(
    counts: Mapping[str, int],
    shown: Mapping[str, Shown],
    relations: tuple[Relation, ...],
    min_count: int,
) -> tuple[dict[str, int], dict[str, int]]:
    """The lowest and highest value of each count that a reader of the published counts
    can work out, by tightening every relation's bounds until none moves."""
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    for name, value in counts.items():
        how = shown[name]
        if how is Shown.PUBLISHED:
            low[name] = high[name] = value
        elif how is Shown.BELOW_MIN_COUNT:
            low[name], high[name] = 0, min_count - 1
        else:
            low[name], high[name] = min_count, _UNBOUNDED
    moved = True
    while moved:
        moved = False
        for relation in relations:
            parts_low = sum(low[p] for p in relation.parts)
            parts_high = sum(high[p] for p in relation.parts)
            total = relation.total
            moved |= _tighten(low, high, total, parts_low, parts_high)
            for part in relation.parts:
                others_low = parts_low - low[part]
                others_high = parts_high - high[part]
                moved |= _tighten(
                    low, high, part, low[total] - others_high, high[total] - others_low
                )
            if low[total] > high[total] or any(low[p] > high[p] for p in relation.parts):
                raise ValueError(f"the counts of {total} do not add up")
    return low, high


def _tighten(low: dict[str, int], high: dict[str, int], name: str, lo: int, hi: int) -> bool:
    lo, hi = max(low[name], lo), min(high[name], hi)
    changed = (lo, hi) != (low[name], high[name])
    low[name], high[name] = lo, hi
    return changed


def _protector(
    pinned: list[str],
    counts: Mapping[str, int],
    shown: Mapping[str, Shown],
    relations: tuple[Relation, ...],
) -> str | None:
    """The published count to hide next, beside the first pinned count that has one:
    the smallest part of a relation it is in, or failing any, the smallest total."""
    for name in pinned:
        around = [r for r in relations if name in r.members]
        parts = [p for r in around for p in r.parts if shown[p] is Shown.PUBLISHED]
        totals = [r.total for r in around if shown[r.total] is Shown.PUBLISHED]
        if parts or totals:
            return min(parts or totals, key=lambda p: (counts[p], p))
    return None
