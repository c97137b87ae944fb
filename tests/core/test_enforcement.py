"""Enforcement: the account and appeal machines, the ladder's next step, the clocks."""

import itertools
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    AppealClosed,
    AppealOpen,
    EnforcementRules,
    PastAction,
    Suggestion,
    appeal_window,
    next_step,
    suspension_until,
)
from stages.enforcement import (
    AccountMove,
    AccountStatus,
    AppealMove,
    AppealStatus,
    EnforcementError,
    EnforcementStep,
    IllegalAccountMove,
    IllegalAppealMove,
    apply_appeal_move,
    apply_enforcement,
    legal_account_moves,
    overturn_move,
)
from stages.incidents import Severity

A = AccountStatus
M = AccountMove
WARN, SUSPEND, TERMINATE = EnforcementStep
LOW, MEDIUM, HIGH, CRITICAL = Severity
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)

RULES = EnforcementRules(
    ladder=(WARN, SUSPEND, TERMINATE),
    suspend_days=30,
    appeal_days=30,
    by_severity=MappingProxyType({HIGH: SUSPEND, CRITICAL: TERMINATE}),
)

# The account machine written out by hand: (status, move) -> status after.
EXPECTED: dict[tuple[AccountStatus, AccountMove], AccountStatus] = {
    (A.ACTIVE, M.WARN): A.ACTIVE,
    (A.SUSPENDED, M.WARN): A.SUSPENDED,
    (A.ACTIVE, M.SUSPEND): A.SUSPENDED,
    (A.ACTIVE, M.TERMINATE): A.TERMINATED,
    (A.SUSPENDED, M.TERMINATE): A.TERMINATED,
    (A.SUSPENDED, M.LIFT): A.ACTIVE,
    (A.TERMINATED, M.RESTORE): A.ACTIVE,
}
ACCOUNT_COMBINATIONS = list(itertools.product(A, M))


@pytest.mark.parametrize(("status", "move"), ACCOUNT_COMBINATIONS, ids=str)
def test_every_account_status_and_move(status: AccountStatus, move: AccountMove) -> None:
    after = EXPECTED.get((status, move))
    if after is not None:
        assert apply_enforcement(status, move) is after
        assert move in legal_account_moves(status)
        return
    with pytest.raises(IllegalAccountMove) as caught:
        apply_enforcement(status, move)
    assert isinstance(caught.value, EnforcementError)
    assert (caught.value.status, caught.value.move) == (status, move)
    assert move not in legal_account_moves(status)


@pytest.mark.parametrize(
    ("status", "move", "why"),
    [
        (A.SUSPENDED, M.SUSPEND, "cannot suspend a suspended account: it is already suspended"),
        (
            A.TERMINATED,
            M.WARN,
            "cannot warn a terminated account: termination is final unless overturned on appeal",
        ),
        (
            A.TERMINATED,
            M.LIFT,
            "cannot lift the suspension of a terminated account: termination is final unless "
            "overturned on appeal",
        ),
        (
            A.ACTIVE,
            M.LIFT,
            "cannot lift the suspension of an active account: only a suspension can be lifted",
        ),
        (
            A.SUSPENDED,
            M.RESTORE,
            "cannot restore a suspended account: only a terminated account is restored, after "
            "its termination is overturned",
        ),
    ],
)
def test_illegal_account_move_explains_why(
    status: AccountStatus, move: AccountMove, why: str
) -> None:
    with pytest.raises(IllegalAccountMove) as caught:
        apply_enforcement(status, move)
    assert str(caught.value) == why


def test_each_step_is_an_account_move_and_steps_are_ranked() -> None:
    assert [AccountMove(step) for step in EnforcementStep] == [M.WARN, M.SUSPEND, M.TERMINATE]
    assert [step.rank for step in EnforcementStep] == [1, 2, 3]


def test_account_status_from_storage_text() -> None:
    assert apply_enforcement("active", "suspend") is A.SUSPENDED  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'banned' is not a valid AccountStatus"):
        apply_enforcement("banned", M.LIFT)  # type: ignore[arg-type]


@given(st.lists(st.sampled_from([M.WARN, M.SUSPEND, M.TERMINATE, M.LIFT]), max_size=10))
def test_only_restore_leaves_terminated(moves: list[AccountMove]) -> None:
    status = A.ACTIVE
    for move in moves:
        try:
            after = apply_enforcement(status, move)
        except IllegalAccountMove:
            continue
        assert status is not A.TERMINATED
        if move is M.WARN:
            assert after is status  # a warning is a record, not a status
        status = after


APPEAL_COMBINATIONS = list(itertools.product(AppealStatus, AppealMove))


@pytest.mark.parametrize(("status", "move"), APPEAL_COMBINATIONS, ids=str)
def test_every_appeal_status_and_move(status: AppealStatus, move: AppealMove) -> None:
    expected = {
        (AppealStatus.PENDING, AppealMove.UPHOLD): AppealStatus.UPHELD,
        (AppealStatus.PENDING, AppealMove.OVERTURN): AppealStatus.OVERTURNED,
    }.get((status, move))
    if expected is not None:
        assert apply_appeal_move(status, move) is expected
        return
    with pytest.raises(
        IllegalAppealMove,
        match=f"^cannot {move} an appeal that was {status}: the decision is final$",
    ):
        apply_appeal_move(status, move)


@pytest.mark.parametrize(
    ("step", "status", "in_force", "move"),
    [
        (WARN, A.ACTIVE, True, None),  # a struck warning changes no status
        (WARN, A.SUSPENDED, True, None),
        (SUSPEND, A.SUSPENDED, True, M.LIFT),
        (SUSPEND, A.SUSPENDED, False, None),  # an earlier suspension; a later one runs
        (SUSPEND, A.ACTIVE, False, None),  # it already ended
        (SUSPEND, A.TERMINATED, True, None),  # the termination has its own appeal
        (TERMINATE, A.TERMINATED, True, M.RESTORE),
    ],
)
def test_overturn_undoes_what_still_holds(
    step: EnforcementStep, status: AccountStatus, in_force: bool, move: AccountMove | None
) -> None:
    assert overturn_move(step, status, in_force=in_force) is move
    if move is not None:
        assert apply_enforcement(status, move) is A.ACTIVE


def _history(*steps: EnforcementStep, overturned: int | None = None) -> tuple[PastAction, ...]:
    return tuple(
        PastAction(step, overturned=index == overturned) for index, step in enumerate(steps)
    )


@pytest.mark.parametrize(
    ("history", "severity", "suggestion"),
    [
        ((), None, Suggestion(WARN, "no standing action: the ladder starts with warn")),
        ((), LOW, Suggestion(WARN, "no standing action: the ladder starts with warn")),
        (_history(WARN), None, Suggestion(SUSPEND, "after a warn comes suspend")),
        (_history(WARN, WARN), MEDIUM, Suggestion(SUSPEND, "after a warn comes suspend")),
        (_history(WARN, SUSPEND), None, Suggestion(TERMINATE, "after a suspend comes terminate")),
        # Order does not matter, the gravest standing action does.
        (_history(SUSPEND, WARN), None, Suggestion(TERMINATE, "after a suspend comes terminate")),
        # An overturned action does not stand.
        (
            _history(WARN, SUSPEND, overturned=1),
            None,
            Suggestion(SUSPEND, "after a warn comes suspend"),
        ),
        (
            _history(WARN, overturned=0),
            None,
            Suggestion(WARN, "no standing action: the ladder starts with warn"),
        ),
        # Severity skips steps.
        (
            (),
            HIGH,
            Suggestion(
                SUSPEND, "a high incident calls for at least suspend (enforcement.by_severity.high)"
            ),
        ),
        (
            _history(WARN),
            CRITICAL,
            Suggestion(
                TERMINATE,
                "a critical incident calls for at least terminate "
                "(enforcement.by_severity.critical)",
            ),
        ),
        # ...but never holds the ladder back.
        (_history(WARN, SUSPEND), HIGH, Suggestion(TERMINATE, "after a suspend comes terminate")),
        (
            _history(WARN, SUSPEND, TERMINATE),
            None,
            Suggestion(None, "the account is already terminated; there is no further step"),
        ),
        (
            _history(WARN, SUSPEND, TERMINATE, overturned=2),
            None,
            Suggestion(TERMINATE, "after a suspend comes terminate"),
        ),
    ],
)
def test_next_step(
    history: tuple[PastAction, ...], severity: Severity | None, suggestion: Suggestion
) -> None:
    assert next_step(RULES, history, severity) == suggestion


def test_a_severity_without_its_own_step_takes_the_nearest_lesser_ones() -> None:
    rules = EnforcementRules(RULES.ladder, 30, 30, MappingProxyType({MEDIUM: SUSPEND}))
    assert next_step(rules, (), CRITICAL) == Suggestion(
        SUSPEND,
        "a critical incident calls for at least suspend (enforcement.by_severity.medium, as for "
        "medium)",
    )
    assert next_step(rules, (), LOW).step is WARN


def test_the_top_of_a_ladder_without_termination_repeats() -> None:
    rules = EnforcementRules((WARN, SUSPEND), 30, 30, MappingProxyType({}))
    assert next_step(rules, _history(WARN, SUSPEND), None) == Suggestion(
        SUSPEND, "suspend is the top of the ladder: suspend again"
    )


def test_a_past_step_no_longer_on_the_ladder_still_counts() -> None:
    rules = EnforcementRules((SUSPEND, TERMINATE), 30, 30, MappingProxyType({}))
    assert next_step(rules, _history(WARN), None) == Suggestion(
        SUSPEND, "after a warn comes suspend"
    )
    assert next_step(rules, (), None).step is SUSPEND


STEPS = st.sampled_from(list(EnforcementStep))
HISTORIES = st.lists(st.builds(PastAction, STEPS, st.booleans()), max_size=6).map(tuple)


@given(history=HISTORIES, severity=st.none() | st.sampled_from(list(Severity)))
def test_the_ladder_only_escalates(
    history: tuple[PastAction, ...], severity: Severity | None
) -> None:
    suggestion = next_step(RULES, history, severity)
    standing = [a.step for a in history if not a.overturned]
    if TERMINATE in standing:
        assert suggestion.step is None
        return
    assert suggestion.step is not None
    assert suggestion.step in RULES.ladder
    assert all(suggestion.step.rank > step.rank for step in standing)
    if severity is not None and severity in RULES.by_severity:
        assert suggestion.step.rank >= RULES.by_severity[severity].rank


def test_suspension_until() -> None:
    assert suspension_until(RULES, AT) == AT + 30 * DAY
    assert suspension_until(RULES, AT, days=7) == AT + 7 * DAY
    with pytest.raises(ValueError, match="a suspension lasts at least a day, got 0 days"):
        suspension_until(RULES, AT, days=0)


@pytest.mark.parametrize(
    ("after", "window"),
    [
        (timedelta(0), AppealOpen(AT + 30 * DAY)),
        (29 * DAY, AppealOpen(AT + 30 * DAY)),
        (30 * DAY, AppealOpen(AT + 30 * DAY)),  # inclusive: the last moment still counts
        (
            30 * DAY + SECOND,
            AppealClosed(
                AT + 30 * DAY,
                "the appeal window closed on 2026-03-31 09:00 UTC, 30 days after the action",
            ),
        ),
    ],
)
def test_appeal_window(after: timedelta, window: AppealOpen | AppealClosed) -> None:
    assert appeal_window(RULES, AT, AT + after, already_appealed=False) == window
    assert window.may_appeal is isinstance(window, AppealOpen)


def test_one_appeal_per_action() -> None:
    assert appeal_window(RULES, AT, AT + DAY, already_appealed=True) == AppealClosed(
        AT + 30 * DAY, "this action was already appealed; one appeal per action"
    )
