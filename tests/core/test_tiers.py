"""Tiers and the ladder that orders them."""

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.tiers import Tier, TierLadder, UnknownTier


def tier(name: str, rank: int, components: tuple[str, ...] = ("weights",)) -> Tier:
    return Tier(
        name=name,
        rank=rank,
        title=name.title(),
        components=frozenset(components),
        grant_days=30,
        url_ttl_seconds=600,
        download_quota=3,
        quota_period_days=30,
    )


PARTNER = tier("trusted_partner", 1, ("weights", "data_manifest", "eval_tools"))
RESEARCHER = tier("researcher", 2, ("weights", "eval_tools"))
PUBLIC = tier("public", 3, ("weights",))
LADDER = TierLadder([PUBLIC, PARTNER, RESEARCHER])


def test_ladder_is_ordered_narrowest_first_whatever_the_input_order() -> None:
    assert LADDER.names == ("trusted_partner", "researcher", "public")
    assert list(LADDER) == [PARTNER, RESEARCHER, PUBLIC]
    assert len(LADDER) == 3


def test_get_and_rank() -> None:
    assert LADDER.get("researcher") is RESEARCHER
    assert [LADDER.rank(name) for name in LADDER.names] == [1, 2, 3]


def test_contains() -> None:
    assert "public" in LADDER
    assert "draft" not in LADDER
    assert PUBLIC not in LADDER  # membership is by name, not by tier value


@pytest.mark.parametrize("lookup", [LADDER.get, LADDER.rank, LADDER.visible_components])
def test_unknown_tier_names_the_known_ones(lookup: Callable[[str], object]) -> None:
    with pytest.raises(UnknownTier) as caught:
        lookup("everyone")
    assert isinstance(caught.value, LookupError)
    assert caught.value.name == "everyone"
    assert caught.value.known == LADDER.names
    assert str(caught.value) == (
        "unknown tier 'everyone'; known tiers: trusted_partner, researcher, public"
    )


def test_visible_components() -> None:
    assert LADDER.visible_components("researcher") == {"weights", "eval_tools"}


@pytest.mark.parametrize(
    ("component", "tiers"),
    [
        ("weights", ("trusted_partner", "researcher", "public")),
        ("eval_tools", ("trusted_partner", "researcher")),
        ("data_manifest", ("trusted_partner",)),
        ("secrets", ()),
    ],
)
def test_tiers_seeing(component: str, tiers: tuple[str, ...]) -> None:
    assert LADDER.tiers_seeing(component) == tiers


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([], "at least one tier"),
        ([PARTNER, dataclasses.replace(RESEARCHER, name="trusted_partner")], "distinct"),
        ([PARTNER, dataclasses.replace(RESEARCHER, rank=1)], r"ranks must be 1\.\.2"),
        ([PARTNER, dataclasses.replace(RESEARCHER, rank=3)], r"ranks must be 1\.\.2"),
        ([dataclasses.replace(PARTNER, rank=0)], r"ranks must be 1\.\.1"),
    ],
)
def test_bad_ladders_are_refused(tiers: list[Tier], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierLadder(tiers)


def test_tiers_and_ladders_are_immutable_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PUBLIC.rank = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        LADDER.tiers = ()  # type: ignore[misc]
    assert TierLadder([PARTNER, RESEARCHER, PUBLIC]) == LADDER
    assert hash(TierLadder([PARTNER, RESEARCHER, PUBLIC])) == hash(LADDER)


components = st.frozensets(st.sampled_from(["weights", "code", "config", "eval_tools"]))


@given(
    names=st.lists(
        st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True), min_size=1, max_size=8, unique=True
    ),
    data=st.data(),
)
def test_random_ladders(names: list[str], data: st.DataObject) -> None:
    tiers = [
        dataclasses.replace(tier(name, rank), components=data.draw(components))
        for rank, name in enumerate(names, start=1)
    ]
    ladder = TierLadder(data.draw(st.permutations(tiers)))
    assert ladder.names == tuple(names)
    assert all(ladder.rank(name) == rank for rank, name in enumerate(names, start=1))
    for component in ("weights", "code", "config", "eval_tools"):
        assert ladder.tiers_seeing(component) == tuple(
            name for name in names if component in ladder.visible_components(name)
        )


def test_a_tier_recall_reaches_every_wider_tier() -> None:
    assert LADDER.recall_reach([]) == frozenset()
    assert LADDER.recall_reach(["public"]) == {"public"}
    assert LADDER.recall_reach(["researcher"]) == {"researcher", "public"}
    assert LADDER.recall_reach(["trusted_partner"]) == set(LADDER.names)
    assert LADDER.recall_reach(["public", "researcher"]) == {"researcher", "public"}
    # A tier since removed from the policy stays recalled and widens nothing.
    assert LADDER.recall_reach(["beta"]) == {"beta"}
    assert LADDER.recall_reach(["beta", "researcher"]) == {"beta", "researcher", "public"}


@given(st.sets(st.sampled_from(["trusted_partner", "researcher", "public"])))
def test_a_recall_never_leaves_a_wider_tier_open(recalled: set[str]) -> None:
    reach = LADDER.recall_reach(recalled)
    assert recalled <= reach
    for name in reach:
        assert {t.name for t in LADDER if t.rank >= LADDER.rank(name)} <= reach
    narrowest = min((LADDER.rank(name) for name in recalled), default=len(LADDER) + 1)
    assert all(LADDER.rank(name) >= narrowest for name in reach)
