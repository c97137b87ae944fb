"""Expiry warnings, the renewal window, and the closeout deadline of a grant."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    CloseoutClock,
    LifecycleRules,
    RenewalWindow,
    closeout_clock,
    expiry_warnings_due,
    renewal_open,
)

RULES = LifecycleRules(expiry_warning_days=(30, 7), renewal_opens_days=30, closeout_days=30)
END = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("before_end", "sent", "due"),
    [
        (60 * DAY, frozenset(), ()),
        (30 * DAY + SECOND, frozenset(), ()),
        (30 * DAY, frozenset(), (30,)),  # due at the very moment
        (20 * DAY, frozenset(), (30,)),
        (20 * DAY, frozenset({30}), ()),
        (7 * DAY + SECOND, frozenset({30}), ()),
        (7 * DAY, frozenset({30}), (7,)),
        (7 * DAY, frozenset(), (7, 30)),  # both due: nearest first, caller sends one message
        (1 * DAY, frozenset({7}), (30,)),  # a 30-day warning never sent is still due...
        (1 * DAY, frozenset({30, 7}), ()),
        (SECOND, frozenset(), (7, 30)),
        (timedelta(0), frozenset(), ()),  # ...but not once the grant has ended
        (-DAY, frozenset(), ()),
    ],
)
def test_expiry_warnings_due(
    before_end: timedelta, sent: frozenset[int], due: tuple[int, ...]
) -> None:
    assert expiry_warnings_due(RULES, END, END - before_end, sent) == due


def test_no_warnings_configured_means_none_due() -> None:
    silent = LifecycleRules(expiry_warning_days=(), renewal_opens_days=30, closeout_days=30)
    assert expiry_warnings_due(silent, END, END - DAY, frozenset()) == ()


def test_sent_warnings_no_longer_in_the_policy_are_ignored() -> None:
    assert expiry_warnings_due(RULES, END, END - DAY, frozenset({14, 30})) == (7,)


@given(
    days=st.lists(st.integers(min_value=1, max_value=400), unique=True, max_size=6),
    before_end=st.timedeltas(min_value=-10 * DAY, max_value=500 * DAY),
    sent=st.frozensets(st.integers(min_value=1, max_value=400), max_size=6),
)
def test_warnings_due_are_unsent_passed_and_nearest_first(
    days: list[int], before_end: timedelta, sent: frozenset[int]
) -> None:
    rules = LifecycleRules(tuple(sorted(days, reverse=True)), 30, 30)
    now = END - before_end
    due = expiry_warnings_due(rules, END, now, sent)
    assert list(due) == sorted(due)
    assert set(due) <= set(days) - sent
    for warning in set(days) - sent - set(due):
        assert now < END - timedelta(days=warning) or now >= END
    # Sending what is due leaves nothing due at the same moment.
    assert expiry_warnings_due(rules, END, now, sent | set(due)) == ()


@pytest.mark.parametrize(
    ("before_end", "is_open"),
    [
        (31 * DAY, False),
        (30 * DAY + SECOND, False),
        (30 * DAY, True),
        (DAY, True),
        (SECOND, True),
        (timedelta(0), False),  # the grant has ended: a new application, not a renewal
        (-DAY, False),
    ],
)
def test_renewal_window(before_end: timedelta, is_open: bool) -> None:
    assert renewal_open(RULES, END, END - before_end) == RenewalWindow(
        opens_at=END - 30 * DAY, closes_at=END, open=is_open
    )


@pytest.mark.parametrize(
    ("after_end", "overdue"),
    [(timedelta(0), False), (30 * DAY, False), (30 * DAY + SECOND, True), (90 * DAY, True)],
)
def test_closeout_clock(after_end: timedelta, overdue: bool) -> None:
    assert closeout_clock(RULES, END, END + after_end) == CloseoutClock(
        due_at=END + 30 * DAY, overdue=overdue
    )
