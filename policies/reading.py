# Reading validated values out of a parsed TOML document.
#
# Rules:
# - A problem names the dotted path of the field, what was expected and what was found.
# - Problems are collected, not raised one by one, so one run shows all of them.
# - Type guards say what a value is; TOML booleans are never taken for integers.
# - Every integer is bounded, so nothing downstream overflows: a database integer column
#   holds any policy integer, and a day count added to a date never nears year 9999.

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeGuard, TypeVar

NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
POSITIVE_INT: Final = "a positive integer"
NON_NEGATIVE_INT: Final = "a non-negative integer"
# A billion: a hundred thousand times any count a policy needs, and inside 32 bits.
MAX_INT: Final = 1_000_000_000
# A century of days: grants, clocks and notices are months; sums of a few stay far from
# the end of the calendar (datetime stops at year 9999).
MAX_DAYS: Final = 36_500

T = TypeVar("T")


class Check:
    """Collects problems while fields are read."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def keys(self, table: Mapping[str, object], path: str, allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                self.add(at(path, key), f"unknown key; allowed keys: {', '.join(allowed)}")

    def field(
        self,
        table: Mapping[str, object],
        path: str,
        key: str,
        expected: str,
        accept: Callable[[object], TypeGuard[T]],
    ) -> T | None:
        if key not in table:
            self.add(at(path, key), f"missing; expected {expected}")
            return None
        value = table[key]
        if not accept(value):
            self.add(
                at(path, key), f"expected {expected}{beyond(accept, value)}, got {describe(value)}"
            )
            return None
        return value

    def optional(
        self,
        table: Mapping[str, object],
        path: str,
        key: str,
        expected: str,
        accept: Callable[[object], TypeGuard[T]],
        default: T,
    ) -> T | None:
        """Like field(), but a missing key is `default` rather than a problem."""
        if key not in table:
            return default
        return self.field(table, path, key, expected, accept)


def at(path: str, key: str) -> str:
    """The dotted path of `key` inside the table at `path`."""
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """How a TOML value is shown in a message: strings quoted, containers by kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a date/time ({value})"


def _number(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**30:
        # Never converted to text in full: a number of thousands of digits would be a page.
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    return repr(value)


def beyond(accept: Callable[[object], bool], value: object) -> str:
    """The bound to name in a message when `value` was refused for lying past it."""
    bounds = _BOUNDS.get(accept)
    if bounds is None or not isinstance(value, int) or isinstance(value, bool):
        return ""
    low, high = bounds
    if value > high:
        return f" of at most {high}" + (" (100 years)" if high == MAX_DAYS else "")
    if low is not None and value < low:
        return f" of at least {low}"
    return ""


def is_table(value: object) -> TypeGuard[dict[str, object]]:
    return isinstance(value, dict)


def is_array(value: object) -> TypeGuard[list[object]]:
    return isinstance(value, list)


def is_bool(value: object) -> TypeGuard[bool]:
    return isinstance(value, bool)


def is_int(value: object) -> TypeGuard[int]:
    # TOML booleans arrive as bool, which Python counts as int.
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT


def is_positive_int(value: object) -> TypeGuard[int]:
    return is_int(value) and value > 0


def is_non_negative_int(value: object) -> TypeGuard[int]:
    return is_int(value) and value >= 0


def is_days(value: object) -> TypeGuard[int]:
    return is_positive_int(value) and value <= MAX_DAYS


def is_non_negative_days(value: object) -> TypeGuard[int]:
    return is_non_negative_int(value) and value <= MAX_DAYS


# Suppression needs at least 3 (stages/suppression.py); past 1,000 nothing is published.
MIN_COUNT_RANGE: Final = (3, 1000)


def is_min_count(value: object) -> TypeGuard[int]:
    return is_int(value) and MIN_COUNT_RANGE[0] <= value <= MIN_COUNT_RANGE[1]


# (lowest, highest) of each bounded guard; a lowest of None is already in its words
# ("a positive integer").
_BOUNDS: Final[Mapping[Callable[[object], bool], tuple[int | None, int]]] = {
    is_int: (-MAX_INT, MAX_INT),
    is_positive_int: (None, MAX_INT),
    is_non_negative_int: (None, MAX_INT),
    is_days: (None, MAX_DAYS),
    is_non_negative_days: (None, MAX_DAYS),
    is_min_count: MIN_COUNT_RANGE,
}


def is_string(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


def is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def is_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def read_day_list(
    check: Check, table: Mapping[str, object], section: str, key: str, meaning: str
) -> tuple[int, ...] | None:
    """An array of distinct positive day counts, earliest first (largest number first)."""
    items = check.field(
        table,
        section,
        key,
        f"an array of distinct positive integers ({meaning})",
        is_array,
    )
    if items is None:
        return None
    days: list[int] = []
    for index, item in enumerate(items):
        path = f"{section}.{key}[{index}]"
        if not is_days(item):
            check.add(path, f"expected {POSITIVE_INT}{beyond(is_days, item)}, got {describe(item)}")
        elif item in days:
            check.add(path, f"expected no repeats, got {item} again")
        else:
            days.append(item)
    if len(days) != len(items):
        return None
    # The earliest first, whatever order the file lists them in.
    return tuple(sorted(days, reverse=True))
