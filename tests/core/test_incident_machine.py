"""Incidents: the ordering of severities, and every (status, move) of the machine."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.incidents import (
    OPEN_INCIDENT_STATUSES,
    TERMINAL_INCIDENT_STATUSES,
    Category,
    IllegalIncidentMove,
    IncidentMove,
    IncidentMoveError,
    IncidentReasonRequired,
    IncidentStatus,
    Severity,
    apply_incident_move,
    incident_reason_required,
    is_open_incident,
    legal_incident_moves,
)

S = IncidentStatus
M = IncidentMove
LOW, MEDIUM, HIGH, CRITICAL = Severity

# The machine written out by hand rather than read from its own table, so a mistake in
# that table shows up here: move -> (from, to, reason required).
EXPECTED: dict[IncidentMove, tuple[set[S], S, bool]] = {
    M.TRIAGE: ({S.REPORTED}, S.TRIAGED, False),
    M.CONFIRM: ({S.REPORTED, S.TRIAGED}, S.CONFIRMED, False),
    M.DISMISS: ({S.REPORTED, S.TRIAGED}, S.DISMISSED, True),
    M.RESOLVE: ({S.CONFIRMED}, S.RESOLVED, False),
}
COMBINATIONS = list(itertools.product(S, M))
REASONS = [None, "", "  ", "the weights on that site are not ours"]


def test_severities_are_ordered_by_rank_not_alphabet() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4]
    assert LOW < MEDIUM < HIGH < CRITICAL
    assert CRITICAL > HIGH  # alphabetically "critical" < "high"
    assert sorted([CRITICAL, LOW, HIGH, MEDIUM]) == [LOW, MEDIUM, HIGH, CRITICAL]
    assert max([HIGH, CRITICAL, MEDIUM]) is CRITICAL


@pytest.mark.parametrize(("a", "b"), list(itertools.product(Severity, Severity)), ids=str)
def test_severity_comparisons_agree_with_rank(a: Severity, b: Severity) -> None:
    assert (a < b, a <= b, a > b, a >= b) == (
        a.rank < b.rank,
        a.rank <= b.rank,
        a.rank > b.rank,
        a.rank >= b.rank,
    )
    # Text read back from storage compares the same way, on either side.
    assert (a.value < b, b > a.value) == (a.rank < b.rank, b.rank > a.rank)


def test_comparing_with_text_that_is_no_severity_fails() -> None:
    with pytest.raises(ValueError, match="'severe' is not a valid Severity"):
        _ = HIGH < "severe"


def test_categories() -> None:
    assert [c.value for c in Category] == ["misuse", "safety", "security", "leak", "legal", "other"]


def test_expected_table_covers_every_move() -> None:
    assert set(EXPECTED) == set(M)
    assert len(COMBINATIONS) == 5 * 4


@pytest.mark.parametrize(("status", "move"), COMBINATIONS, ids=str)
@pytest.mark.parametrize("reason", REASONS, ids=repr)
def test_every_status_and_move(
    status: IncidentStatus, move: IncidentMove, reason: str | None
) -> None:
    starts_from, leads_to, needs_reason = EXPECTED[move]
    given_reason = reason is not None and reason.strip() != ""
    if status not in starts_from:
        expected_error: type[IncidentMoveError] | None = IllegalIncidentMove
    elif needs_reason and not given_reason:
        expected_error = IncidentReasonRequired
    else:
        expected_error = None
    if expected_error is None:
        assert apply_incident_move(status, move, reason) is leads_to
        return
    with pytest.raises(IncidentMoveError) as caught:
        apply_incident_move(status, move, reason)
    assert type(caught.value) is expected_error


@pytest.mark.parametrize("status", list(S), ids=str)
def test_legal_moves_match_the_table(status: IncidentStatus) -> None:
    assert legal_incident_moves(status) == tuple(m for m in M if status in EXPECTED[m][0])


@pytest.mark.parametrize(
    ("status", "move", "why"),
    [
        (S.DISMISSED, M.CONFIRM, "cannot confirm an incident that is dismissed: it is closed"),
        (S.RESOLVED, M.RESOLVE, "cannot resolve an incident that is resolved: it is closed"),
        (
            S.TRIAGED,
            M.RESOLVE,
            "cannot resolve an incident that is triaged: only a confirmed incident is "
            "resolved; dismiss one that is not confirmed",
        ),
        (
            S.CONFIRMED,
            M.DISMISS,
            "cannot dismiss an incident that is confirmed: it is already confirmed",
        ),
        (S.TRIAGED, M.TRIAGE, "cannot triage an incident that is triaged"),
    ],
)
def test_illegal_move_explains_why(status: IncidentStatus, move: IncidentMove, why: str) -> None:
    with pytest.raises(IllegalIncidentMove) as caught:
        apply_incident_move(status, move, "a reason")
    assert str(caught.value) == why
    assert (caught.value.status, caught.value.move) == (status, move)


def test_reason_required_explains_why() -> None:
    with pytest.raises(
        IncidentReasonRequired,
        match=r"^a reason is required to dismiss an incident: the reporter is told why$",
    ):
        apply_incident_move(S.REPORTED, M.DISMISS, " ")
    assert [m for m in M if incident_reason_required(m)] == [M.DISMISS]


def test_statuses_and_moves_from_storage_text() -> None:
    assert apply_incident_move("triaged", "confirm") is S.CONFIRMED  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'closed' is not a valid IncidentStatus"):
        apply_incident_move("closed", M.RESOLVE)  # type: ignore[arg-type]


def test_open_and_terminal_statuses() -> None:
    assert {S.DISMISSED, S.RESOLVED} == TERMINAL_INCIDENT_STATUSES
    assert {S.REPORTED, S.TRIAGED, S.CONFIRMED} == OPEN_INCIDENT_STATUSES
    assert [is_open_incident(s) for s in S] == [True, True, True, False, False]
    # Terminal statuses have no way out.
    assert all(legal_incident_moves(s) == () for s in TERMINAL_INCIDENT_STATUSES)


@given(st.lists(st.sampled_from(list(M)), max_size=8))
def test_random_walks_only_go_forward_and_end_closed(moves: list[IncidentMove]) -> None:
    status = S.REPORTED
    order = [S.REPORTED, S.TRIAGED, S.CONFIRMED, S.DISMISSED, S.RESOLVED]
    for move in moves:
        try:
            after = apply_incident_move(status, move, "reason")
        except IllegalIncidentMove:
            assert move not in legal_incident_moves(status)
            continue
        assert move in legal_incident_moves(status)
        assert order.index(after) > order.index(status)
        assert after is not S.RESOLVED or status is S.CONFIRMED
        status = after
    # Every walk can still be closed: a terminal status, or a way to one.
    assert status in TERMINAL_INCIDENT_STATUSES or legal_incident_moves(status)
