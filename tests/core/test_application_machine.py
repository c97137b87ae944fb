"""The application machine: every (status, move, actor), the reasons, and random walks."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.applications import (
    TERMINAL_STATUSES,
    Actor,
    ActorNotAllowed,
    ApplicationMove,
    ApplicationMoveError,
    ApplicationStatus,
    IllegalApplicationMove,
    ReasonRequired,
    apply_application_move,
    awaits_review,
    is_open,
    legal_moves,
    reason_required,
)

S = ApplicationStatus
M = ApplicationMove
APPLICANT, OPERATOR, SYSTEM = Actor.APPLICANT, Actor.OPERATOR, Actor.SYSTEM

# The machine written out by hand rather than read from its own table, so a mistake in
# that table shows up here: move -> (from, to, who may make it, reason required).
EXPECTED: dict[ApplicationMove, tuple[set[S], S, set[Actor], bool]] = {
    M.START_REVIEW: ({S.SUBMITTED}, S.UNDER_REVIEW, {OPERATOR}, False),
    M.REQUEST_CHANGES: ({S.SUBMITTED, S.UNDER_REVIEW}, S.CHANGES_REQUESTED, {OPERATOR}, True),
    M.RESUBMIT: ({S.CHANGES_REQUESTED}, S.SUBMITTED, {APPLICANT}, False),
    M.APPROVE: ({S.SUBMITTED, S.UNDER_REVIEW}, S.APPROVED, {OPERATOR, SYSTEM}, False),
    M.DENY: ({S.SUBMITTED, S.UNDER_REVIEW}, S.DENIED, {OPERATOR}, True),
    M.WITHDRAW: (
        {S.SUBMITTED, S.UNDER_REVIEW, S.CHANGES_REQUESTED},
        S.WITHDRAWN,
        {APPLICANT},
        False,
    ),
    M.EXPIRE: ({S.CHANGES_REQUESTED}, S.EXPIRED, {SYSTEM}, False),
}
TERMINAL = {S.APPROVED, S.DENIED, S.WITHDRAWN, S.EXPIRED}
COMBINATIONS = list(itertools.product(S, M, Actor))
REASONS = [None, "", "   ", "the affiliation could not be confirmed"]


def test_expected_table_covers_every_move() -> None:
    assert set(EXPECTED) == set(M)
    assert len(COMBINATIONS) == 7 * 7 * 3


@pytest.mark.parametrize(("status", "move", "actor"), COMBINATIONS, ids=str)
@pytest.mark.parametrize("reason", REASONS, ids=repr)
def test_every_status_move_and_actor(
    status: ApplicationStatus, move: ApplicationMove, actor: Actor, reason: str | None
) -> None:
    starts_from, leads_to, actors, needs_reason = EXPECTED[move]
    given_reason = reason is not None and reason.strip() != ""
    if actor not in actors:
        expected_error: type[ApplicationMoveError] | None = ActorNotAllowed
    elif status not in starts_from:
        expected_error = IllegalApplicationMove
    elif needs_reason and not given_reason:
        expected_error = ReasonRequired
    else:
        expected_error = None
    if expected_error is None:
        assert apply_application_move(status, move, actor, reason) is leads_to
        return
    with pytest.raises(ApplicationMoveError) as caught:
        apply_application_move(status, move, actor, reason)
    assert type(caught.value) is expected_error


@pytest.mark.parametrize(("status", "move", "actor"), COMBINATIONS, ids=str)
def test_legal_moves_match_the_table(
    status: ApplicationStatus, move: ApplicationMove, actor: Actor
) -> None:
    starts_from, _, actors, _ = EXPECTED[move]
    assert (move in legal_moves(status, actor)) == (status in starts_from and actor in actors)


@pytest.mark.parametrize("move", list(M), ids=str)
def test_reason_required_matches_the_table(move: ApplicationMove) -> None:
    assert reason_required(move) is EXPECTED[move][3]


@pytest.mark.parametrize("status", list(S), ids=str)
def test_open_and_terminal_statuses(status: ApplicationStatus) -> None:
    assert is_open(status) is (status not in TERMINAL)
    assert (status in TERMINAL_STATUSES) is (status in TERMINAL)
    assert awaits_review(status) is (status in {S.SUBMITTED, S.UNDER_REVIEW})
    if status in TERMINAL:
        assert all(legal_moves(status, actor) == () for actor in Actor)


@pytest.mark.parametrize(
    ("status", "move", "actor", "reason", "error", "message"),
    [
        (
            S.APPROVED,
            M.DENY,
            OPERATOR,
            "too late",
            IllegalApplicationMove,
            "cannot deny an application that is approved: it is closed",
        ),
        (
            S.CHANGES_REQUESTED,
            M.START_REVIEW,
            OPERATOR,
            None,
            IllegalApplicationMove,
            "cannot start reviewing an application that is waiting for changes",
        ),
        (
            S.UNDER_REVIEW,
            M.RESUBMIT,
            APPLICANT,
            None,
            IllegalApplicationMove,
            "cannot resubmit an application that is under review",
        ),
        (
            S.SUBMITTED,
            M.DENY,
            APPLICANT,
            "no",
            ActorNotAllowed,
            "the applicant cannot deny an application; only an operator can",
        ),
        (
            S.SUBMITTED,
            M.APPROVE,
            APPLICANT,
            None,
            ActorNotAllowed,
            "the applicant cannot approve an application; "
            "only an operator or the gateway itself can",
        ),
        (
            S.SUBMITTED,
            M.WITHDRAW,
            OPERATOR,
            None,
            ActorNotAllowed,
            "an operator cannot withdraw an application; only the applicant can",
        ),
        (
            S.CHANGES_REQUESTED,
            M.EXPIRE,
            OPERATOR,
            None,
            ActorNotAllowed,
            "an operator cannot expire an application; only the gateway itself can",
        ),
        (
            S.UNDER_REVIEW,
            M.DENY,
            OPERATOR,
            " ",
            ReasonRequired,
            "a reason is required to deny an application: it is shown to the applicant",
        ),
        (
            S.SUBMITTED,
            M.REQUEST_CHANGES,
            OPERATOR,
            None,
            ReasonRequired,
            "a reason is required to request changes to an application: "
            "say what the applicant should change",
        ),
    ],
)
def test_errors_say_why(
    status: ApplicationStatus,
    move: ApplicationMove,
    actor: Actor,
    reason: str | None,
    error: type[ApplicationMoveError],
    message: str,
) -> None:
    with pytest.raises(error) as caught:
        apply_application_move(status, move, actor, reason)
    assert str(caught.value) == message


def test_errors_carry_what_was_tried() -> None:
    with pytest.raises(IllegalApplicationMove) as illegal:
        apply_application_move(S.DENIED, M.APPROVE, OPERATOR)
    assert (illegal.value.status, illegal.value.move) == (S.DENIED, M.APPROVE)
    with pytest.raises(ActorNotAllowed) as actor:
        apply_application_move(S.SUBMITTED, M.START_REVIEW, SYSTEM)
    assert (actor.value.move, actor.value.actor) == (M.START_REVIEW, SYSTEM)
    with pytest.raises(ReasonRequired) as reason:
        apply_application_move(S.SUBMITTED, M.DENY, OPERATOR)
    assert reason.value.move is M.DENY


def test_the_actor_is_checked_before_the_status() -> None:
    # An applicant trying an operator's move learns nothing about the application's state.
    for status in S:
        with pytest.raises(ActorNotAllowed):
            apply_application_move(status, M.DENY, APPLICANT, "because")


def test_a_reason_is_accepted_where_none_is_needed() -> None:
    assert apply_application_move(S.UNDER_REVIEW, M.WITHDRAW, APPLICANT, "found another way") is (
        S.WITHDRAWN
    )


def test_values_may_come_as_stored_text() -> None:
    after = apply_application_move("submitted", "approve", "system")  # type: ignore[arg-type]
    assert after is S.APPROVED
    assert is_open("changes_requested")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'pending' is not a valid ApplicationStatus"):
        apply_application_move("pending", "approve", "system")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'admin' is not a valid Actor"):
        apply_application_move("submitted", "approve", "admin")  # type: ignore[arg-type]


def test_the_review_path_and_the_changes_loop() -> None:
    status = S.SUBMITTED
    status = apply_application_move(status, M.START_REVIEW, OPERATOR)
    status = apply_application_move(status, M.REQUEST_CHANGES, OPERATOR, "name your group")
    status = apply_application_move(status, M.RESUBMIT, APPLICANT)
    assert status is S.SUBMITTED
    status = apply_application_move(status, M.START_REVIEW, OPERATOR)
    assert apply_application_move(status, M.APPROVE, OPERATOR) is S.APPROVED


# Property tests: random sequences of attempts, invariants after each one.

attempts = st.lists(
    st.tuples(st.sampled_from(M), st.sampled_from(Actor), st.sampled_from(REASONS)),
    max_size=40,
)


@given(start=st.sampled_from(S), sequence=attempts)
def test_random_walks_keep_the_invariants(
    start: ApplicationStatus, sequence: list[tuple[ApplicationMove, Actor, str | None]]
) -> None:
    status = start
    for move, actor, reason in sequence:
        before = status
        try:
            status = apply_application_move(status, move, actor, reason)
        except ApplicationMoveError:
            assert status is before  # a refused move changes nothing
            assert move not in legal_moves(before, actor) or reason_required(move)
            continue
        assert move in legal_moves(before, actor)
        assert is_open(before)  # nothing ever leaves a terminal status
        assert status is EXPECTED[move][1]


@given(status=st.sampled_from(sorted(TERMINAL)), sequence=attempts)
def test_terminal_statuses_absorb(
    status: ApplicationStatus, sequence: list[tuple[ApplicationMove, Actor, str | None]]
) -> None:
    for move, actor, reason in sequence:
        with pytest.raises(ApplicationMoveError):
            apply_application_move(status, move, actor, reason)


@given(sequence=attempts)
def test_every_walk_from_submission_ends_open_or_in_a_terminal_status(
    sequence: list[tuple[ApplicationMove, Actor, str | None]],
) -> None:
    status = S.SUBMITTED
    seen = [status]
    for move, actor, reason in sequence:
        try:
            status = apply_application_move(status, move, actor, reason)
        except ApplicationMoveError:
            continue
        seen.append(status)
    closed = [index for index, value in enumerate(seen) if value in TERMINAL]
    # Once closed, the walk never moves again: the terminal status is the last one seen.
    assert closed in ([], [len(seen) - 1])
