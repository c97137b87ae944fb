"""The clock of a decommission: the reminder schedule, reminders due, and retention."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    DecommissionRules,
    RetentionClock,
    decommission_schedule,
    reminders_due,
    retention_clock,
)

RULES = DecommissionRules(reminder_days=(30, 7), retention_days=90)
EFFECTIVE = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
ANNOUNCED = EFFECTIVE - timedelta(days=60)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def test_schedule_is_earliest_first() -> None:
    assert decommission_schedule(RULES, ANNOUNCED, EFFECTIVE) == (
        EFFECTIVE - 30 * DAY,
        EFFECTIVE - 7 * DAY,
    )


@pytest.mark.parametrize(
    ("notice", "schedule"),
    [
        (60 * DAY, (30, 7)),
        (30 * DAY + SECOND, (30, 7)),
        (30 * DAY, (7,)),  # a reminder at the very moment of the announcement is the announcement
        (10 * DAY, (7,)),
        (7 * DAY, ()),
        (DAY, ()),
    ],
)
def test_reminders_before_the_announcement_are_not_sent(
    notice: timedelta, schedule: tuple[int, ...]
) -> None:
    announced = EFFECTIVE - notice
    assert decommission_schedule(RULES, announced, EFFECTIVE) == tuple(
        EFFECTIVE - days * DAY for days in schedule
    )


@pytest.mark.parametrize("notice", [timedelta(0), -DAY])
def test_a_decommission_takes_effect_after_its_announcement(notice: timedelta) -> None:
    with pytest.raises(ValueError, match="a decommission takes effect after it is announced"):
        decommission_schedule(RULES, EFFECTIVE - notice, EFFECTIVE)
    with pytest.raises(ValueError, match="a decommission takes effect after it is announced"):
        reminders_due(RULES, EFFECTIVE - notice, EFFECTIVE, EFFECTIVE, frozenset())


@pytest.mark.parametrize(
    ("before", "sent", "due"),
    [
        (45 * DAY, frozenset(), ()),
        (30 * DAY + SECOND, frozenset(), ()),
        (30 * DAY, frozenset(), (30,)),  # due at the very moment
        (20 * DAY, frozenset({30}), ()),
        (7 * DAY, frozenset({30}), (7,)),
        (7 * DAY, frozenset(), (7, 30)),  # both due: nearest first, the caller sends one message
        (DAY, frozenset({30, 7}), ()),
        (timedelta(0), frozenset(), ()),  # the decommission has taken effect
        (-DAY, frozenset(), ()),
    ],
)
def test_reminders_due(before: timedelta, sent: frozenset[int], due: tuple[int, ...]) -> None:
    assert reminders_due(RULES, ANNOUNCED, EFFECTIVE, EFFECTIVE - before, sent) == due


def test_a_short_notice_skips_the_reminders_it_covers() -> None:
    announced = EFFECTIVE - 10 * DAY
    assert reminders_due(RULES, announced, EFFECTIVE, announced, frozenset()) == ()
    assert reminders_due(RULES, announced, EFFECTIVE, EFFECTIVE - 7 * DAY, frozenset()) == (7,)


def test_no_reminders_configured() -> None:
    silent = DecommissionRules(reminder_days=(), retention_days=0)
    assert decommission_schedule(silent, ANNOUNCED, EFFECTIVE) == ()
    assert reminders_due(silent, ANNOUNCED, EFFECTIVE, EFFECTIVE - DAY, frozenset()) == ()


@given(
    days=st.lists(st.integers(1, 120), unique=True, max_size=5),
    notice=st.timedeltas(SECOND, 150 * DAY),
    before=st.timedeltas(-5 * DAY, 160 * DAY),
    sent=st.frozensets(st.integers(1, 120), max_size=5),
)
def test_due_reminders_are_scheduled_unsent_and_passed(
    days: list[int], notice: timedelta, before: timedelta, sent: frozenset[int]
) -> None:
    rules = DecommissionRules(tuple(sorted(days, reverse=True)), 0)
    announced, now = EFFECTIVE - notice, EFFECTIVE - before
    schedule = decommission_schedule(rules, announced, EFFECTIVE)
    assert list(schedule) == sorted(schedule)
    assert all(announced < at < EFFECTIVE for at in schedule)
    due = reminders_due(rules, announced, EFFECTIVE, now, sent)
    assert list(due) == sorted(due)
    assert not set(due) & sent
    for reminder in due:
        assert EFFECTIVE - reminder * DAY in schedule
        assert EFFECTIVE - reminder * DAY <= now < EFFECTIVE
    # Sending what is due leaves nothing due at the same moment.
    assert reminders_due(rules, announced, EFFECTIVE, now, sent | set(due)) == ()


@pytest.mark.parametrize(
    ("after", "purgeable"),
    [
        (-DAY, False),
        (timedelta(0), False),
        (90 * DAY - SECOND, False),
        (90 * DAY, True),
        (365 * DAY, True),
    ],
)
def test_retention_clock(after: timedelta, purgeable: bool) -> None:
    assert retention_clock(RULES, EFFECTIVE, EFFECTIVE + after) == RetentionClock(
        purge_at=EFFECTIVE + 90 * DAY, purgeable=purgeable
    )


def test_zero_retention_may_purge_at_the_date() -> None:
    rules = DecommissionRules(reminder_days=(30,), retention_days=0)
    assert retention_clock(rules, EFFECTIVE, EFFECTIVE).purgeable
