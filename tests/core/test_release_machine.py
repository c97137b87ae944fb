"""The release stage machine: the whole table, every illegal move, and random walks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.release import (
    DRAFT,
    IllegalMove,
    Move,
    ReleaseState,
    StageError,
    StageMachine,
    Status,
    UnknownStage,
)

A, R, D = Status.ACTIVE, Status.RECALLED, Status.DECOMMISSIONED
P = "trusted_partner"
RES = "researcher"
PUB = "public"
STAGES = (DRAFT, P, RES, PUB)
MACHINE = StageMachine((P, RES, PUB))


def _status_only(stage: str) -> dict[tuple[Move, str | None], ReleaseState]:
    return {
        (Move.RECALL, None): ReleaseState(stage, R),
        (Move.DECOMMISSION, None): ReleaseState(stage, D),
    }


# The legal moves of the default ladder, written out by hand rather than derived from
# the machine's own table, so a mistake in that table shows up here.
EXPECTED: dict[ReleaseState, dict[tuple[Move, str | None], ReleaseState]] = {
    ReleaseState(DRAFT, A): {
        (Move.PROMOTE, P): ReleaseState(P, A),
        **_status_only(DRAFT),
    },
    ReleaseState(P, A): {
        (Move.PROMOTE, RES): ReleaseState(RES, A),
        (Move.ROLLBACK, DRAFT): ReleaseState(DRAFT, A),
        **_status_only(P),
    },
    ReleaseState(RES, A): {
        (Move.PROMOTE, PUB): ReleaseState(PUB, A),
        (Move.ROLLBACK, DRAFT): ReleaseState(DRAFT, A),
        (Move.ROLLBACK, P): ReleaseState(P, A),
        **_status_only(RES),
    },
    ReleaseState(PUB, A): {
        (Move.ROLLBACK, DRAFT): ReleaseState(DRAFT, A),
        (Move.ROLLBACK, P): ReleaseState(P, A),
        (Move.ROLLBACK, RES): ReleaseState(RES, A),
        **_status_only(PUB),
    },
    **{
        ReleaseState(stage, R): {
            (Move.REINSTATE, None): ReleaseState(stage, A),
            (Move.DECOMMISSION, None): ReleaseState(stage, D),
        }
        for stage in STAGES
    },
    **{ReleaseState(stage, D): {} for stage in STAGES},
}

LEGAL = [(state, move, after) for state, moves in EXPECTED.items() for move, after in moves.items()]
ILLEGAL = [
    (state, move, target)
    for state, moves in EXPECTED.items()
    for move in Move
    for target in (None, *STAGES)
    if (move, target) not in moves
]


def test_stages_are_draft_then_the_ladder() -> None:
    assert MACHINE.stages == STAGES
    assert MACHINE.initial() == ReleaseState(DRAFT, A)


def test_expected_table_covers_every_state() -> None:
    assert len(EXPECTED) == len(STAGES) * len(Status)
    # 5 moves x 5 targets per state, minus the legal ones.
    assert len(ILLEGAL) == 25 * len(EXPECTED) - len(LEGAL)


@pytest.mark.parametrize("state", list(EXPECTED), ids=str)
def test_legal_moves_match_the_table(state: ReleaseState) -> None:
    assert sorted(MACHINE.legal_moves(state), key=str) == sorted(EXPECTED[state], key=str)


@pytest.mark.parametrize(("state", "move", "after"), LEGAL, ids=str)
def test_every_legal_move(
    state: ReleaseState, move: tuple[Move, str | None], after: ReleaseState
) -> None:
    assert MACHINE.apply(state, *move) == after


@pytest.mark.parametrize(("state", "move", "target"), ILLEGAL, ids=str)
def test_every_illegal_move_raises(state: ReleaseState, move: Move, target: str | None) -> None:
    with pytest.raises(IllegalMove) as caught:
        MACHINE.apply(state, move, target)
    error = caught.value
    assert isinstance(error, StageError)
    assert (error.state, error.move, error.target) == (state, move, target)
    assert str(error) == error.why
    assert str(error).startswith(f"cannot {'roll back' if move is Move.ROLLBACK else move} ")


@pytest.mark.parametrize(
    ("state", "move", "target", "why"),
    [
        (
            ReleaseState(DRAFT, A),
            Move.PROMOTE,
            PUB,
            "cannot promote from draft to public: "
            "promotion goes one stage at a time, the next stage is trusted_partner",
        ),
        (
            ReleaseState(RES, A),
            Move.PROMOTE,
            P,
            "cannot promote from researcher to trusted_partner: "
            "trusted_partner is not wider than researcher, roll back instead",
        ),
        (
            ReleaseState(RES, A),
            Move.PROMOTE,
            RES,
            "cannot promote from researcher to researcher: "
            "researcher is not wider than researcher, roll back instead",
        ),
        (
            ReleaseState(P, A),
            Move.PROMOTE,
            None,
            "cannot promote without a target stage: the next stage is researcher",
        ),
        (
            ReleaseState(PUB, A),
            Move.PROMOTE,
            None,
            "cannot promote from public: it is already the widest stage",
        ),
        (
            ReleaseState(DRAFT, A),
            Move.ROLLBACK,
            DRAFT,
            "cannot roll back from draft: there is no narrower stage",
        ),
        (
            ReleaseState(RES, A),
            Move.ROLLBACK,
            PUB,
            "cannot roll back from researcher to public: public is not narrower than researcher",
        ),
        (
            ReleaseState(RES, A),
            Move.ROLLBACK,
            None,
            "cannot roll back without a target stage: choose one of draft, trusted_partner",
        ),
        (
            ReleaseState(RES, A),
            Move.RECALL,
            RES,
            "cannot recall to researcher: recall keeps the stage, give no target",
        ),
        (
            ReleaseState(RES, A),
            Move.REINSTATE,
            None,
            "cannot reinstate an active release: only a recalled release can be reinstated",
        ),
        (
            ReleaseState(RES, R),
            Move.PROMOTE,
            PUB,
            "cannot promote a recalled release: reinstate it first",
        ),
        (
            ReleaseState(RES, R),
            Move.RECALL,
            None,
            "cannot recall a recalled release: it is already recalled",
        ),
        (
            ReleaseState(PUB, D),
            Move.REINSTATE,
            None,
            "cannot reinstate a decommissioned release: decommissioning is final",
        ),
    ],
)
def test_illegal_move_explains_why(
    state: ReleaseState, move: Move, target: str | None, why: str
) -> None:
    with pytest.raises(IllegalMove) as caught:
        MACHINE.apply(state, move, target)
    assert caught.value.why == why


def test_move_may_be_given_as_plain_text() -> None:
    assert MACHINE.apply(MACHINE.initial(), "promote", P) == ReleaseState(P, A)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "target"),
    [
        (ReleaseState(DRAFT, A), "everyone"),
        (ReleaseState("everyone", A), P),
        (ReleaseState("everyone", A), None),
    ],
)
def test_unknown_stage_is_refused(state: ReleaseState, target: str | None) -> None:
    with pytest.raises(UnknownStage) as caught:
        MACHINE.apply(state, Move.PROMOTE, target)
    assert isinstance(caught.value, StageError)
    assert caught.value.stage == "everyone"
    assert str(caught.value) == (
        "unknown stage 'everyone'; stages are draft, trusted_partner, researcher, public"
    )


def test_legal_moves_of_an_unknown_stage_is_refused() -> None:
    with pytest.raises(UnknownStage):
        MACHINE.legal_moves(ReleaseState("everyone", A))


@pytest.mark.parametrize(
    ("stage", "open_to"),
    [
        (DRAFT, set()),
        (P, {P}),
        (RES, {P, RES}),
        (PUB, {P, RES, PUB}),
    ],
)
def test_reaches(stage: str, open_to: set[str]) -> None:
    assert {tier for tier in (P, RES, PUB) if MACHINE.reaches(stage, tier)} == open_to


@pytest.mark.parametrize(("stage", "tier"), [(DRAFT, DRAFT), ("everyone", P), (PUB, "everyone")])
def test_reaches_refuses_what_is_not_a_stage_or_tier(stage: str, tier: str) -> None:
    with pytest.raises(UnknownStage):
        MACHINE.reaches(stage, tier)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ((), "at least one tier"),
        ((DRAFT, P), "'draft' is the stage before any tier"),
        ((P, P), "distinct"),
    ],
)
def test_machine_refuses_bad_ladders(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StageMachine(names)


# Property tests: random ladders, random sequences of moves, invariants after each one.

ladder_names = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda name: name != DRAFT),
    min_size=1,
    max_size=7,
    unique=True,
)
moves = st.lists(
    st.tuples(st.sampled_from(Move), st.none() | st.integers(min_value=0, max_value=7)),
    max_size=60,
)


@given(names=ladder_names, sequence=moves)
def test_random_walks_keep_the_invariants(
    names: list[str], sequence: list[tuple[Move, int | None]]
) -> None:
    machine = StageMachine(names)
    stages = machine.stages
    state = machine.initial()
    for move, index in sequence:
        target = None if index is None else stages[index % len(stages)]
        legal = machine.legal_moves(state)
        before = ReleaseState(state.stage, state.status)
        try:
            after = machine.apply(state, move, target)
        except IllegalMove:
            assert state == before
            assert (move, target) not in legal
            continue
        assert (move, target) in legal
        assert state.status is not Status.DECOMMISSIONED
        assert after.stage in stages
        rank_change = stages.index(after.stage) - stages.index(state.stage)
        if move is Move.PROMOTE:
            assert rank_change == 1
        elif move is Move.ROLLBACK:
            assert rank_change < 0
        else:
            assert rank_change == 0
        if move in (Move.PROMOTE, Move.ROLLBACK, Move.REINSTATE):
            assert after.status is Status.ACTIVE
        state = after


@given(names=ladder_names, data=st.data())
def test_decommissioned_is_absorbing(names: list[str], data: st.DataObject) -> None:
    machine = StageMachine(names)
    stage = data.draw(st.sampled_from(machine.stages))
    state = ReleaseState(stage, Status.DECOMMISSIONED)
    assert machine.legal_moves(state) == []
    move = data.draw(st.sampled_from(Move))
    target = data.draw(st.none() | st.sampled_from(machine.stages))
    with pytest.raises(IllegalMove):
        machine.apply(state, move, target)


@given(names=ladder_names, data=st.data())
def test_every_legal_move_applies(names: list[str], data: st.DataObject) -> None:
    machine = StageMachine(names)
    state = ReleaseState(
        data.draw(st.sampled_from(machine.stages)), data.draw(st.sampled_from(Status))
    )
    for move, target in machine.legal_moves(state):
        assert machine.apply(state, move, target).stage in machine.stages


@given(names=ladder_names)
def test_promoting_from_draft_walks_the_whole_ladder(names: list[str]) -> None:
    machine = StageMachine(names)
    state = machine.initial()
    for name in names:
        assert not machine.reaches(state.stage, name)
        state = machine.apply(state, Move.PROMOTE, name)
        assert machine.reaches(state.stage, name)
    assert state == ReleaseState(names[-1], Status.ACTIVE)
    assert all(machine.reaches(state.stage, name) for name in names)


def test_release_state_takes_status_as_text_and_refuses_unknown_ones() -> None:
    assert ReleaseState(DRAFT, "recalled").status is Status.RECALLED  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'paused' is not a valid Status"):
        ReleaseState(DRAFT, "paused")  # type: ignore[arg-type]


def test_next_stage_is_one_wider_and_none_at_the_widest() -> None:
    assert [MACHINE.next_stage(stage) for stage in STAGES] == [P, RES, PUB, None]
    for stage in STAGES[:-1]:
        following = MACHINE.next_stage(stage)
        assert MACHINE.apply(ReleaseState(stage, A), Move.PROMOTE, following).stage == following
    with pytest.raises(UnknownStage, match="unknown stage 'beta'"):
        MACHINE.next_stage("beta")


def test_open_tiers_are_those_an_active_release_reaches() -> None:
    assert MACHINE.open_tiers(ReleaseState(DRAFT, A)) == frozenset()
    assert MACHINE.open_tiers(ReleaseState(P, A)) == {P}
    assert MACHINE.open_tiers(ReleaseState(RES, A)) == {P, RES}
    assert MACHINE.open_tiers(ReleaseState(PUB, A)) == {P, RES, PUB}
    for stage in STAGES:
        for tier in STAGES[1:]:
            opened = tier in MACHINE.open_tiers(ReleaseState(stage, A))
            assert opened is MACHINE.reaches(stage, tier)
    with pytest.raises(UnknownStage):
        MACHINE.open_tiers(ReleaseState("beta", A))


@pytest.mark.parametrize("status", [R, D])
def test_a_release_not_active_is_open_to_no_one(status: Status) -> None:
    for stage in (*STAGES, "a stage since removed"):
        assert MACHINE.open_tiers(ReleaseState(stage, status)) == frozenset()
