"""Firing policy triggers on a confirmed incident: which fire, and which are redundant."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    IncidentConfirmed,
    Reaction,
    Trigger,
    TriggerAction,
    TriggerEvent,
    describe_trigger,
    fire_triggers,
)
from stages.incidents import Severity
from stages.release import DRAFT, ReleaseState, StageMachine, Status

LOW, MEDIUM, HIGH, CRITICAL = Severity
ON = TriggerEvent.INCIDENT_CONFIRMED
MACHINE = StageMachine(("trusted_partner", "researcher", "public"))
PUBLIC = ReleaseState("public", Status.ACTIVE)
ACCOUNTS = frozenset({"acct-1", "acct-2"})

RECALL = Trigger(ON, CRITICAL, Reaction.RECALL, None)
RECALL_PUBLIC = Trigger(ON, HIGH, Reaction.RECALL_TIER, "public")
SUSPEND = Trigger(ON, CRITICAL, Reaction.SUSPEND_ACCOUNTS, None)
SHIPPED = (RECALL, RECALL_PUBLIC)


def _event(
    severity: Severity,
    release: ReleaseState | None = PUBLIC,
    accounts: frozenset[str] = ACCOUNTS,
) -> IncidentConfirmed:
    return IncidentConfirmed(severity=severity, release=release, linked_accounts=accounts)


def _fired(
    triggers: tuple[Trigger, ...], event: IncidentConfirmed
) -> list[tuple[Reaction, str | None]]:
    return [(a.action, a.tier) for a in fire_triggers(triggers, event, MACHINE)]


def test_rule_sentences() -> None:
    assert describe_trigger(0, RECALL) == (
        "triggers[0]: an incident confirmed at critical severity or worse recalls the release"
    )
    assert describe_trigger(1, RECALL_PUBLIC) == (
        "triggers[1]: an incident confirmed at high severity or worse withdraws the release "
        "from the public tier"
    )
    assert describe_trigger(2, SUSPEND) == (
        "triggers[2]: an incident confirmed at critical severity or worse suspends the "
        "accounts linked to it"
    )


@pytest.mark.parametrize(
    ("severity", "fired"),
    [
        (LOW, []),
        (MEDIUM, []),
        (HIGH, [(Reaction.RECALL_TIER, "public")]),
        # A whole recall makes the tier recall needless.
        (CRITICAL, [(Reaction.RECALL, None)]),
    ],
)
def test_shipped_triggers_by_severity(
    severity: Severity, fired: list[tuple[Reaction, str | None]]
) -> None:
    assert _fired(SHIPPED, _event(severity)) == fired


def test_each_action_names_its_rule() -> None:
    assert fire_triggers(SHIPPED, _event(HIGH), MACHINE) == (
        TriggerAction(
            Reaction.RECALL_TIER,
            "public",
            describe_trigger(1, RECALL_PUBLIC),
            rollback_to="researcher",
        ),
    )
    assert fire_triggers((SUSPEND, RECALL), _event(CRITICAL), MACHINE) == (
        TriggerAction(Reaction.SUSPEND_ACCOUNTS, None, describe_trigger(0, SUSPEND)),
        TriggerAction(Reaction.RECALL, None, describe_trigger(1, RECALL)),
    )


@pytest.mark.parametrize(
    ("stage", "fired"),
    [
        (DRAFT, []),
        ("trusted_partner", []),
        ("researcher", []),  # not open to the public yet: nothing to withdraw
        ("public", [(Reaction.RECALL_TIER, "public")]),
    ],
)
def test_a_tier_recall_needs_the_release_open_to_that_tier(
    stage: str, fired: list[tuple[Reaction, str | None]]
) -> None:
    assert _fired(SHIPPED, _event(HIGH, ReleaseState(stage, Status.ACTIVE))) == fired


@pytest.mark.parametrize("status", [Status.RECALLED, Status.DECOMMISSIONED])
def test_release_actions_need_an_active_release(status: Status) -> None:
    event = _event(CRITICAL, ReleaseState("public", status))
    assert _fired((RECALL, RECALL_PUBLIC, SUSPEND), event) == [(Reaction.SUSPEND_ACCOUNTS, None)]


def test_an_incident_about_no_release_only_touches_accounts() -> None:
    assert _fired((RECALL, RECALL_PUBLIC, SUSPEND), _event(CRITICAL, None)) == [
        (Reaction.SUSPEND_ACCOUNTS, None)
    ]


def test_suspending_needs_linked_accounts() -> None:
    assert _fired((SUSPEND,), _event(CRITICAL, accounts=frozenset())) == []
    assert _fired((SUSPEND,), _event(CRITICAL)) == [(Reaction.SUSPEND_ACCOUNTS, None)]


def test_the_narrowest_tier_recall_wins() -> None:
    researcher = Trigger(ON, CRITICAL, Reaction.RECALL_TIER, "researcher")
    partner = Trigger(ON, CRITICAL, Reaction.RECALL_TIER, "trusted_partner")
    (action,) = fire_triggers((RECALL_PUBLIC, researcher, partner), _event(CRITICAL), MACHINE)
    assert (action.tier, action.rollback_to, action.rule) == (
        "trusted_partner",
        DRAFT,
        describe_trigger(2, partner),
    )
    # At high only the public recall fires, so it stands.
    assert _fired((RECALL_PUBLIC, researcher, partner), _event(HIGH)) == [
        (Reaction.RECALL_TIER, "public")
    ]


def test_the_same_action_from_two_triggers_is_taken_once_with_the_first_rule() -> None:
    again = Trigger(ON, MEDIUM, Reaction.SUSPEND_ACCOUNTS, None)
    (action,) = fire_triggers((SUSPEND, again), _event(CRITICAL), MACHINE)
    assert action.rule == describe_trigger(0, SUSPEND)


def test_no_triggers_fire_nothing() -> None:
    assert fire_triggers((), _event(CRITICAL), MACHINE) == ()


SEVERITIES = st.sampled_from(list(Severity))
TRIGGERS = st.lists(
    st.one_of(
        st.builds(Trigger, st.just(ON), SEVERITIES, st.just(Reaction.RECALL), st.none()),
        st.builds(
            Trigger,
            st.just(ON),
            SEVERITIES,
            st.just(Reaction.RECALL_TIER),
            st.sampled_from(MACHINE.stages[1:]),
        ),
        st.builds(Trigger, st.just(ON), SEVERITIES, st.just(Reaction.SUSPEND_ACCOUNTS), st.none()),
    ),
    max_size=6,
).map(tuple)
RELEASES = st.none() | st.builds(
    ReleaseState, st.sampled_from(MACHINE.stages), st.sampled_from(list(Status))
)


@given(triggers=TRIGGERS, severity=SEVERITIES, release=RELEASES, linked=st.booleans())
def test_fired_actions_are_few_and_consistent(
    triggers: tuple[Trigger, ...], severity: Severity, release: ReleaseState | None, linked: bool
) -> None:
    event = _event(severity, release, ACCOUNTS if linked else frozenset())
    actions = fire_triggers(triggers, event, MACHINE)
    kinds = [a.action for a in actions]
    assert len(kinds) == len(set(kinds))  # at most one of each
    assert not {Reaction.RECALL, Reaction.RECALL_TIER} <= set(kinds)
    for action in actions:
        index = int(action.rule.split("]")[0].removeprefix("triggers["))
        trigger = triggers[index]
        assert (trigger.action, trigger.tier) == (action.action, action.tier)
        assert severity >= trigger.min_severity
        if action.action is not Reaction.SUSPEND_ACCOUNTS:
            assert release is not None
            assert release.status is Status.ACTIVE
        if action.action is Reaction.RECALL_TIER:
            assert release is not None
            assert action.tier is not None
            assert MACHINE.reaches(release.stage, action.tier)
            assert action.rollback_to == MACHINE.stages[MACHINE.stages.index(action.tier) - 1]
    # A graver incident never fires less.
    if severity is not CRITICAL:
        graver = fire_triggers(triggers, _event(CRITICAL, release, event.linked_accounts), MACHINE)
        assert bool(graver) or not actions


def test_a_stage_the_policy_no_longer_has_still_allows_a_whole_recall() -> None:
    stale = _event(CRITICAL, ReleaseState("beta_testers", Status.ACTIVE))
    assert _fired((RECALL_PUBLIC, RECALL), stale) == [(Reaction.RECALL, None)]
    assert _fired((RECALL_PUBLIC,), stale) == []
