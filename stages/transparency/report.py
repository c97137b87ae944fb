# A transparency report's published figures: the fold's counts laid out, suppressed.
#
# Rules:
# - A report covers a period (a year "2026", a quarter "2026-Q4" or a month "2026-11",
#   in UTC) of one model or of the whole gateway.
# - Every count is a node {"count", "shown", "by"}: "count" is null when suppressed,
#   "shown" is what a reader sees ("42", "< 10", or "suppressed" for a complementary
#   cell), and "by" holds its breakdowns, each summing to it.
# - The same fold and the same `min_count` always give the same figures, key for key, so
#   recomputing a report from an export is a comparison of `figures`.
# - A duration is published only when at least `min_count` values make it.

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from stages.suppression import Relation, Shown, suppress
from stages.transparency.figures import Count, Figures, nearest_rank

SCHEMA: Final = "release-gateway/transparency-report/v1"
SCHEMA_VERSION: Final = 1
DEFAULT_MIN_COUNT: Final = 10
_PERIOD: Final = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$")


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    end: datetime


def parse_period(text: str) -> Period:
    """ "2026", "2026-Q4" or "2026-11" as [start, end) in UTC; ValueError otherwise."""
    found = _PERIOD.match(text.strip())
    if found is None or not 1970 <= int(found.group(1)) <= 9998:
        raise ValueError(
            f"{text!r} is not a period: a year (2026), a quarter (2026-Q4) or a month (2026-11)"
        )
    year, quarter, month = int(found.group(1)), found.group(2), found.group(3)
    if quarter is not None:
        first, months = (int(quarter) - 1) * 3 + 1, 3
    elif month is not None:
        first, months = int(month), 1
    else:
        first, months = 1, 12
    start = datetime(year, first, 1, tzinfo=UTC)
    after = first - 1 + months
    end = datetime(year + after // 12, after % 12 + 1, 1, tzinfo=UTC)
    return Period(text.strip(), start, end)


def overlaps(a: tuple[Period, str], b: tuple[Period, str]) -> bool:
    """Whether two reports (period, scope: "" for every model) count some of the same
    rows: their periods overlap and one covers every model or both the same one. Two
    such reports published would let a reader subtract one from the other (a year from
    its quarters, every model from one) and recover a count each of them suppressed."""
    (first, first_scope), (second, second_scope) = a, b
    same_rows = first_scope == second_scope or "" in (first_scope, second_scope)
    return same_rows and first.start < second.end and second.start < first.end


def _nodes(name: str, count: Count) -> Iterator[tuple[str, Count]]:
    yield name, count
    for breakdown, parts in sorted(count.by.items()):
        for label, part in sorted(parts.items()):
            yield from _nodes(f"{name}/{breakdown}={label}", part)


def _relations(name: str, count: Count) -> Iterator[Relation]:
    for breakdown, parts in sorted(count.by.items()):
        children = tuple(f"{name}/{breakdown}={label}" for label in sorted(parts))
        yield Relation(name, children)
        for label, part in sorted(parts.items()):
            yield from _relations(f"{name}/{breakdown}={label}", part)


def _laid_out(name: str, count: Count, shown: dict[str, Shown], min_count: int) -> dict[str, Any]:
    how = shown[name]
    node: dict[str, Any] = {
        "count": count.value if how is Shown.PUBLISHED else None,
        "shown": (
            str(count.value)
            if how is Shown.PUBLISHED
            else f"< {min_count}"
            if how is Shown.BELOW_MIN_COUNT
            else "suppressed"
        ),
    }
    if count.by:
        node["by"] = {
            breakdown: {
                label: _laid_out(f"{name}/{breakdown}={label}", part, shown, min_count)
                for label, part in sorted(parts.items())
            }
            for breakdown, parts in sorted(count.by.items())
        }
    return node


def _duration(values: list[int], min_count: int) -> dict[str, int | None]:
    if len(values) < min_count:
        return {"median_seconds": None, "p90_seconds": None}
    return {"median_seconds": nearest_rank(values, 0.5), "p90_seconds": nearest_rank(values, 0.9)}


def counts_of(figures: Figures, min_count: int) -> dict[str, Count]:
    """The report's counts by figure name (each a tree of breakdowns)."""
    decisions = figures.decisions
    denied = decisions.by.get("outcome", {}).get("denied")
    if denied is not None:
        denied.by["reason"] = {
            reason: Count(n) for reason, n in figures.denials_by_reason(min_count).items()
        }
    counts = {
        "applications_received": figures.received,
        "decisions": decisions,
        "active_grants": figures.active_grants(),
        "downloads": figures.downloads,
        "incidents": figures.incidents(),
    }
    if figures.model_id is None:
        counts["enforcement_actions"] = figures.enforcement
        counts["appeals"] = figures.appeals_by_outcome()
    for stage, accounts in sorted(figures.grantees.items()):
        counts[f"distinct_grantees/stage={stage}"] = Count(len(accounts))
    if figures.api_users:
        counts["api_use/requests"] = figures.api_requests
        counts["api_use/flagged_requests"] = figures.api_flagged
        counts["api_use/distinct_users"] = Count(len(figures.api_users))
    return counts


def cells(counts: dict[str, Count]) -> tuple[dict[str, int], list[Relation]]:
    """Every count of the report by its path, and the sums that bind them."""
    values = {
        name: node.value for root, count in counts.items() for name, node in _nodes(root, count)
    }
    relations = [relation for root, count in counts.items() for relation in _relations(root, count)]
    return values, relations


def published(figures: Figures, min_count: int) -> dict[str, Any]:
    """The report's `figures`: every count laid out and suppressed, and the durations."""
    counts = counts_of(figures, min_count)
    values, relations = cells(counts)
    shown = suppress(values, relations, min_count)
    laid = {name: _laid_out(name, count, shown, min_count) for name, count in counts.items()}
    grantees = {
        name.split("=", 1)[1]: laid.pop(name)
        for name in list(laid)
        if name.startswith("distinct_grantees/")
    }
    # Null for a period in which no service reported API use.
    api_use = {
        name.split("/", 1)[1]: laid.pop(name) for name in list(laid) if name.startswith("api_use/")
    }
    return {
        **laid,
        "distinct_grantees_by_stage": grantees,
        "review_time": _duration(figures.review_seconds, min_count),
        "time_to_triage": _duration(figures.triage_seconds(), min_count),
        "time_to_resolve": _duration(figures.resolve_seconds(), min_count),
        "api_use": api_use or None,
        "release_actions": figures.release_actions,
    }


def csv_rows(report_figures: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(figure, breakdown path, count, shown) for every count of published figures."""

    def walk(figure: str, path: str, node: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
        count = node.get("count")
        yield figure, path, "" if count is None else str(count), str(node.get("shown"))
        for breakdown, parts in node.get("by", {}).items():
            for label, part in parts.items():
                step = f"{breakdown}={label}"
                yield from walk(figure, f"{path};{step}" if path else step, part)

    for figure, value in report_figures.items():
        if isinstance(value, dict) and "shown" in value:
            yield from walk(figure, "", value)
        elif figure == "distinct_grantees_by_stage":
            for stage, node in value.items():
                yield from walk(figure, f"stage={stage}", node)
        elif figure == "api_use":
            for measure, node in (value or {}).items():
                yield from walk(f"api_use.{measure}", "", node)
        elif isinstance(value, dict):
            for measure, seconds in value.items():
                yield (
                    figure,
                    measure,
                    "" if seconds is None else str(seconds),
                    ("suppressed" if seconds is None else str(seconds)),
                )
