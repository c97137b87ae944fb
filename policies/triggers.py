# Which policy triggers fire on an event, and what they ask the gateway to do.
#
# Rules:
# - Pure: the event carries every fact; the answer is the actions to take, each naming
#   the rule that asked for it, so the evidence can say why the gateway acted.
# - A trigger fires when the event is its `on` and the incident is of its
#   `min_severity` or worse.
# - Only actions that change something are returned, at most once each:
#   - release actions need a release that is active (a recalled or decommissioned one
#     has nothing left to withdraw);
#   - a tier recall needs the release to be open to that tier (a stage the current
#     policy does not know counts as open to none), and is dropped when a
#     whole recall fires; of several tier recalls the narrowest tier wins, since
#     withdrawing from a tier withdraws from every wider one;
#   - suspending accounts needs accounts linked to the incident.
# - The actions keep the order of the triggers that asked for them.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from policies.schema import Reaction, Trigger, TriggerEvent
from stages.incidents import Severity
from stages.release import ReleaseState, StageMachine, Status


@dataclass(frozen=True)
class IncidentConfirmed:
    """An incident was confirmed at `severity`.

    `release` is the state of the release it is about (None: about no one release), and
    `linked_accounts` the accounts it names.
    """

    severity: Severity
    release: ReleaseState | None
    linked_accounts: frozenset[str] = field(default_factory=frozenset)
    on = TriggerEvent.INCIDENT_CONFIRMED


@dataclass(frozen=True)
class TriggerAction:
    """What a trigger asks for; `rule` says which trigger and why, for the evidence.

    For recall_tier, `tier` is the tier withdrawn and `rollback_to` the stage the release
    goes back to (the one just narrower than `tier`); both are None otherwise.
    """

    action: Reaction
    tier: str | None
    rule: str
    rollback_to: str | None = None


def describe_trigger(index: int, trigger: Trigger) -> str:
    """The sentence that names a trigger of the policy, e.g. in evidence and messages."""
    what = {
        Reaction.RECALL: "recalls the release",
        Reaction.RECALL_TIER: f"withdraws the release from the {trigger.tier} tier",
        Reaction.SUSPEND_ACCOUNTS: "suspends the accounts linked to it",
    }[trigger.action]
    event = "an incident confirmed" if trigger.on is TriggerEvent.INCIDENT_CONFIRMED else trigger.on
    return f"triggers[{index}]: {event} at {trigger.min_severity} severity or worse {what}"


def fire_triggers(
    triggers: Sequence[Trigger], event: IncidentConfirmed, machine: StageMachine
) -> tuple[TriggerAction, ...]:
    """The actions the policy's `triggers` ask for on `event`, without redundant ones."""
    fired = [
        (index, trigger)
        for index, trigger in enumerate(triggers)
        if trigger.on is event.on and event.severity >= trigger.min_severity
    ]
    release = event.release
    active = release is not None and release.status is Status.ACTIVE
    recall = active and any(t.action is Reaction.RECALL for _, t in fired)
    narrowest = (
        _narrowest_open_tier(fired, release, machine)
        if release is not None and release.status is Status.ACTIVE
        else None
    )
    actions: list[TriggerAction] = []
    seen: set[tuple[Reaction, str | None]] = set()
    for index, trigger in fired:
        action = _action(index, trigger, event, recall=recall, narrowest=narrowest, machine=machine)
        if action is not None and (action.action, action.tier) not in seen:
            seen.add((action.action, action.tier))
            actions.append(action)
    return tuple(actions)


def _narrowest_open_tier(
    fired: list[tuple[int, Trigger]], release: ReleaseState, machine: StageMachine
) -> str | None:
    """The narrowest tier a fired tier recall names that the release is open to now."""
    if release.stage not in machine.stages:
        return None  # a stage the current policy no longer has: whose reach is unknown
    tiers = [
        t.tier
        for _, t in fired
        if t.action is Reaction.RECALL_TIER
        and t.tier is not None
        and t.tier in machine.stages
        and machine.reaches(release.stage, t.tier)
    ]
    return min(tiers, key=machine.stages.index, default=None)


def _action(
    index: int,
    trigger: Trigger,
    event: IncidentConfirmed,
    *,
    recall: bool,
    narrowest: str | None,
    machine: StageMachine,
) -> TriggerAction | None:
    rule = describe_trigger(index, trigger)
    if trigger.action is Reaction.RECALL:
        return TriggerAction(Reaction.RECALL, None, rule) if recall else None
    if trigger.action is Reaction.RECALL_TIER:
        if recall or trigger.tier is None or trigger.tier != narrowest:
            return None
        below = machine.stages[machine.stages.index(trigger.tier) - 1]
        return TriggerAction(Reaction.RECALL_TIER, trigger.tier, rule, rollback_to=below)
    if event.linked_accounts:
        return TriggerAction(Reaction.SUSPEND_ACCOUNTS, None, rule)
    return None
