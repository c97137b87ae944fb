from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.grants import (
    ENDED_GRANT_STATUSES,
    OPEN_GRANT_STATUSES,
    GrantMove,
    GrantStatus,
    IllegalGrantMove,
    Renewal,
    RenewalRefusal,
    apply_grant_move,
    bulk_grant_move,
    grant_move_sources,
    quota_period,
    renewal,
    renewal_refusal,
)

LEGAL = {
    (GrantStatus.ACTIVE, GrantMove.SUSPEND): GrantStatus.SUSPENDED,
    (GrantStatus.SUSPENDED, GrantMove.REINSTATE): GrantStatus.ACTIVE,
    (GrantStatus.ACTIVE, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.SUSPENDED, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.ACTIVE, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.SUSPENDED, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.ACTIVE, GrantMove.RENEW): GrantStatus.ACTIVE,
}


@pytest.mark.parametrize(("status", "move"), list(itertools.product(GrantStatus, GrantMove)))
def test_every_status_and_move(status: GrantStatus, move: GrantMove) -> None:
    if (status, move) in LEGAL:
        assert apply_grant_move(status, move) is LEGAL[(status, move)]
    else:
        with pytest.raises(
            IllegalGrantMove, match=f"cannot {move.value} a grant that is {status.value}"
        ):
            apply_grant_move(status, move)


@given(st.lists(st.sampled_from(list(GrantMove)), max_size=20))
def test_revoked_and_expired_are_final(moves: list[GrantMove]) -> None:
    status = GrantStatus.ACTIVE
    for move in moves:
        before = status
        try:
            status = apply_grant_move(status, move)
        except IllegalGrantMove:
            assert status is before
        if before in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            assert status is before


def test_quota_periods_count_from_the_start() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert quota_period(start, start, 30) == 0
    assert quota_period(start, start + timedelta(days=29, hours=23), 30) == 0
    assert quota_period(start, start + timedelta(days=30), 30) == 1
    assert quota_period(start, start + timedelta(days=95), 30) == 3
    assert quota_period(start, start - timedelta(days=1), 30) == 0


@pytest.mark.parametrize("move", list(GrantMove))
def test_move_sources_are_the_table_rows(move: GrantMove) -> None:
    assert grant_move_sources(move) == {status for status, each in LEGAL if each is move}


def test_a_bulk_expiry_starts_from_the_open_statuses_and_ends_expired() -> None:
    sources, leads_to = bulk_grant_move(GrantMove.EXPIRE)
    assert sources == (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
    assert leads_to is GrantStatus.EXPIRED
    assert frozenset(sources) == OPEN_GRANT_STATUSES
    assert {GrantStatus.REVOKED, GrantStatus.EXPIRED} == ENDED_GRANT_STATUSES
    for source in sources:
        assert apply_grant_move(source, GrantMove.EXPIRE) is leads_to


def test_an_active_grant_is_renewed_in_place_and_an_expired_one_by_a_new_grant() -> None:
    assert renewal(GrantStatus.ACTIVE) is Renewal.EXTEND
    assert renewal(GrantStatus.EXPIRED) is Renewal.NEW_GRANT
    # The expired grant itself never comes back: the table has no way out of expired.
    for move in GrantMove:
        with pytest.raises(IllegalGrantMove):
            apply_grant_move(GrantStatus.EXPIRED, move)


@pytest.mark.parametrize("status", [GrantStatus.SUSPENDED, GrantStatus.REVOKED])
def test_a_suspended_or_revoked_grant_is_not_renewed(status: GrantStatus) -> None:
    with pytest.raises(IllegalGrantMove, match=f"cannot renew a grant that is {status}"):
        renewal(status)
    assert renewal_refusal(status, window_open=True) is RenewalRefusal.STATUS
    assert renewal_refusal(status, window_open=False) is RenewalRefusal.STATUS


def test_renewal_eligibility() -> None:
    assert renewal_refusal(GrantStatus.ACTIVE, window_open=True) is None
    assert renewal_refusal(GrantStatus.ACTIVE, window_open=False) is RenewalRefusal.NOT_OPEN
    # An expired grant may ask at any time: its window is long past.
    assert renewal_refusal(GrantStatus.EXPIRED, window_open=False) is None
    assert renewal_refusal(GrantStatus.EXPIRED, window_open=True) is None
    assert renewal_refusal("active", window_open=True) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'reopened' is not a valid GrantStatus"):
        renewal("reopened")  # type: ignore[arg-type]
