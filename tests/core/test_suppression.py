"""Small-count suppression: property tests that try to recover every suppressed count
from the published ones, by searching all the values the relations allow."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stages.suppression import Relation, Shown, suppress

MIN = 10


def alternative(
    name: str,
    counts: Mapping[str, int],
    shown: Mapping[str, Shown],
    relations: list[Relation],
    min_count: int,
    cap: int,
) -> dict[str, int] | None:
    """Values of the hidden counts that agree with everything published (and with what
    a reader knows of each hidden count) but give `name` another value than its own;
    None if there are none (then `name` is recovered)."""
    hidden = sorted(n for n in counts if shown[n] is not Shown.PUBLISHED)
    hidden.remove(name)
    hidden.insert(0, name)

    def domain(n: str) -> list[int]:
        if shown[n] is Shown.BELOW_MIN_COUNT:
            values = list(range(min_count))
        else:
            values = list(range(min_count, cap + 1))
        if n == name:
            values.remove(counts[n]) if counts[n] in values else None
        return sorted(values, key=lambda v: abs(v - counts[n]))

    chosen: dict[str, int] = {n: v for n, v in counts.items() if shown[n] is Shown.PUBLISHED}

    def possible() -> bool:
        for relation in relations:
            known = [chosen.get(p) for p in relation.parts]
            total = chosen.get(relation.total)
            low = sum(v for v in known if v is not None)
            if total is not None and low > total:
                return False
            if total is not None and None not in known and low != total:
                return False
        return True

    def search(i: int) -> bool:
        if i == len(hidden):
            return True
        for value in domain(hidden[i]):
            chosen[hidden[i]] = value
            if possible() and search(i + 1):
                return True
            del chosen[hidden[i]]
        return False

    return dict(chosen) if search(0) else None


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, int], list[Relation]]:
    """A count with one or two breakdowns, some of whose parts are broken down again."""
    counts: dict[str, int] = {}
    relations: list[Relation] = []

    def leaf(name: str) -> int:
        counts[name] = draw(st.integers(0, 24))
        return counts[name]

    def node(name: str, depth: int) -> int:
        if depth == 0 or draw(st.booleans()):
            return leaf(name)
        labels = [f"{name}.{i}" for i in range(draw(st.integers(1, 3)))]
        total = sum(node(label, depth - 1) for label in labels)
        counts[name] = total
        relations.append(Relation(name, tuple(labels)))
        second = draw(st.booleans()) and depth == 2
        if second:
            values = draw(st.lists(st.integers(0, total), min_size=1, max_size=2))
            split = [*values, total - sum(values)] if sum(values) <= total else [total]
            others = [f"{name}~{i}" for i in range(len(split))]
            counts.update(zip(others, split, strict=True))
            relations.append(Relation(name, tuple(others)))
        return total

    node("root", 2)
    return counts, relations


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tables(), st.sampled_from([3, 5, MIN]))
def test_no_suppressed_count_can_be_recovered(
    table: tuple[dict[str, int], list[Relation]], min_count: int
) -> None:
    counts, relations = table
    shown = suppress(counts, relations, min_count)
    cap = 2 * max(counts.values()) + 2 * min_count
    for name, how in shown.items():
        assert (how is Shown.BELOW_MIN_COUNT) == (counts[name] < min_count) or (
            how is Shown.COMPLEMENTARY and counts[name] >= min_count
        )
        if how is not Shown.PUBLISHED:
            other = alternative(name, counts, shown, relations, min_count, cap)
            assert other is not None, f"{name} = {counts[name]} is recovered from {shown}"


def test_a_lone_small_part_takes_the_next_smallest_with_it() -> None:
    counts = {"t": 40, "a": 25, "b": 11, "c": 4}
    shown = suppress(counts, [Relation("t", ("a", "b", "c"))], MIN)
    assert shown == {
        "t": Shown.PUBLISHED,
        "a": Shown.PUBLISHED,
        "b": Shown.COMPLEMENTARY,
        "c": Shown.BELOW_MIN_COUNT,
    }


def test_two_small_parts_protect_each_other() -> None:
    counts = {"t": 30, "a": 22, "b": 4, "c": 4}
    shown = suppress(counts, [Relation("t", ("a", "b", "c"))], MIN)
    assert [n for n, how in shown.items() if how is not Shown.PUBLISHED] == ["b", "c"]


def test_bounds_alone_would_give_a_cell_away() -> None:
    # t = a + b with b < 10 and a at least 10: a published 10 as t pins both, so t goes.
    counts = {"t": 10, "a": 10, "b": 0}
    shown = suppress(counts, [Relation("t", ("a", "b"))], MIN)
    assert shown == {"t": Shown.COMPLEMENTARY, "a": Shown.COMPLEMENTARY, "b": Shown.BELOW_MIN_COUNT}


def test_a_nested_small_cell_hides_a_cousin_not_the_figure() -> None:
    counts = {"t": 60, "x": 30, "y": 30, "x.a": 26, "x.b": 4, "y.a": 15, "y.b": 15}
    relations = [
        Relation("t", ("x", "y")),
        Relation("x", ("x.a", "x.b")),
        Relation("y", ("y.a", "y.b")),
    ]
    shown = suppress(counts, relations, MIN)
    assert {n for n, how in shown.items() if how is not Shown.PUBLISHED} == {"x.a", "x.b"}


def test_min_count_below_three_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        suppress({"t": 1}, [], 2)


def test_counts_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(ValueError, match="do not add up"):
        suppress({"t": 5, "a": 1}, [Relation("t", ("a",))], 3)
