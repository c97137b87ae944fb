from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.grants import GrantMove, GrantStatus, IllegalGrantMove, apply_grant_move, quota_period

LEGAL = {
    (GrantStatus.ACTIVE, GrantMove.SUSPEND): GrantStatus.SUSPENDED,
    (GrantStatus.SUSPENDED, GrantMove.REINSTATE): GrantStatus.ACTIVE,
    (GrantStatus.ACTIVE, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.SUSPENDED, GrantMove.REVOKE): GrantStatus.REVOKED,
    (GrantStatus.ACTIVE, GrantMove.EXPIRE): GrantStatus.EXPIRED,
    (GrantStatus.SUSPENDED, GrantMove.EXPIRE): GrantStatus.EXPIRED,
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
