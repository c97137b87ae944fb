# Reading how the provider responds from a policy file: the triggers that fire on
# incidents, the decommission notice, the enforcement ladder and the deadlines of
# reporting to an authority.
#
# Rules:
# - Same contract as the rest of the loader: every problem is collected with the dotted
#   path of its field, what was expected and what was found; unknown keys are refused.
# - [decommission] and [enforcement] are required, every key spelled out, except
#   enforcement.by_severity (no table: a severity never skips a step of the ladder).
#   [[triggers]] may be absent: then nothing fires by itself. [reporting] may be absent:
#   then no incident has a reporting deadline.
# - Combinations that cannot mean what they say are refused: a tier on a trigger that
#   does not recall a tier, a ladder that does not escalate, a severity mapped to a step
#   that is not on the ladder or to a milder step than a lesser severity, a graver
#   severity given longer to report than a lesser one, a reminder not before the
#   shortest deadline.

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeGuard

from policies.reading import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    Check,
    at,
    describe,
    is_array,
    is_days,
    is_non_negative_days,
    is_table,
    is_text,
    read_day_list,
)
from policies.schema import (
    DecommissionRules,
    EnforcementRules,
    QuarantineRules,
    Reaction,
    ReportingRules,
    Trigger,
    TriggerEvent,
)
from stages.enforcement import EnforcementStep
from stages.incidents import Severity
from stages.tiers import TierLadder

_TRIGGER_KEYS: Final = ("on", "min_severity", "action", "tier")
_DECOMMISSION_KEYS: Final = ("reminder_days", "retention_days")
_ENFORCEMENT_KEYS: Final = ("ladder", "suspend_days", "appeal_days", "by_severity")
_SEVERITY_KEYS: Final = tuple(Severity)


def _one_of(values: type[StrEnum]) -> str:
    return "one of " + ", ".join(f'"{value}"' for value in values)


def _is_event(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(TriggerEvent)


def _is_severity(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(Severity)


def _is_reaction(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(Reaction)


def _is_step(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(EnforcementStep)


def read_triggers(
    data: Mapping[str, object], check: Check, ladder: TierLadder | None
) -> tuple[Trigger, ...] | None:
    """The `[[triggers]]` array, in file order; absent is no triggers."""
    items = check.optional(
        data, "", "triggers", "an array of tables {on, min_severity, action}", is_array, []
    )
    if items is None:
        return None
    triggers: list[Trigger] = []
    for index, item in enumerate(items):
        path = f"triggers[{index}]"
        read = _read_trigger(item, path, check, ladder)
        if read is None:
            continue
        if read in triggers:
            check.add(
                path,
                f"expected no repeats, got the same trigger as triggers[{triggers.index(read)}]",
            )
            continue
        triggers.append(read)
    return tuple(triggers) if len(triggers) == len(items) else None


def _read_trigger(
    item: object, path: str, check: Check, ladder: TierLadder | None
) -> Trigger | None:
    if not is_table(item):
        check.add(path, f"expected a table {{on, min_severity, action}}, got {describe(item)}")
        return None
    check.keys(item, path, _TRIGGER_KEYS)
    on = check.field(item, path, "on", _one_of(TriggerEvent), _is_event)
    severity = check.field(item, path, "min_severity", _one_of(Severity), _is_severity)
    action_text = check.field(item, path, "action", _one_of(Reaction), _is_reaction)
    action = None if action_text is None else Reaction(action_text)
    tier = _read_trigger_tier(item, path, action, check, ladder)
    if on is None or severity is None or action is None or tier is None:
        return None
    return Trigger(
        on=TriggerEvent(on),
        min_severity=Severity(severity),
        action=action,
        tier=tier or None,
    )


def _read_trigger_tier(
    item: Mapping[str, object],
    path: str,
    action: Reaction | None,
    check: Check,
    ladder: TierLadder | None,
) -> str | None:
    """The trigger's tier; "" when it has none, None when there is a problem."""
    key_path = at(path, "tier")
    if action is None:
        return ""  # the action's own problem is reported; nothing to check against
    if action is not Reaction.RECALL_TIER:
        if "tier" in item:
            check.add(
                key_path,
                f'expected no tier for action "{action}" (only "{Reaction.RECALL_TIER}" '
                f"names one), got {describe(item['tier'])}",
            )
            return None
        return ""
    known = "" if ladder is None else f" ({', '.join(ladder.names)})"
    expected = f'a tier of the ladder{known} for action "{Reaction.RECALL_TIER}"'
    if "tier" not in item:
        check.add(key_path, f"missing; expected {expected}")
        return None
    tier = item["tier"]
    if not isinstance(tier, str) or (ladder is not None and tier not in ladder):
        check.add(key_path, f"expected {expected}, got {describe(tier)}")
        return None
    return tier


def read_decommission(data: Mapping[str, object], check: Check) -> DecommissionRules | None:
    """The `[decommission]` table: reminders before hosting ends, retention after."""
    table = check.field(
        data, "", "decommission", "a table {reminder_days, retention_days}", is_table
    )
    if table is None:
        return None
    check.keys(table, "decommission", _DECOMMISSION_KEYS)
    reminders = _read_reminder_days(table, check)
    retention = check.field(
        table, "decommission", "retention_days", NON_NEGATIVE_INT, is_non_negative_days
    )
    if reminders is None or retention is None:
        return None
    return DecommissionRules(reminder_days=reminders, retention_days=retention)


def _read_reminder_days(table: Mapping[str, object], check: Check) -> tuple[int, ...] | None:
    return read_day_list(
        check, table, "decommission", "reminder_days", "days before the decommission date"
    )


def read_enforcement(data: Mapping[str, object], check: Check) -> EnforcementRules | None:
    """The `[enforcement]` table: the ladder, the suspension length, the appeal window."""
    table = check.field(
        data,
        "",
        "enforcement",
        "a table {ladder, suspend_days, appeal_days, by_severity}",
        is_table,
    )
    if table is None:
        return None
    check.keys(table, "enforcement", _ENFORCEMENT_KEYS)
    ladder = _read_enforcement_ladder(table, check)
    suspend_days = check.field(table, "enforcement", "suspend_days", POSITIVE_INT, is_days)
    appeal_days = check.field(table, "enforcement", "appeal_days", POSITIVE_INT, is_days)
    by_severity = _read_by_severity(table, ladder, check)
    if ladder is None or suspend_days is None or appeal_days is None or by_severity is None:
        return None
    return EnforcementRules(
        ladder=ladder,
        suspend_days=suspend_days,
        appeal_days=appeal_days,
        by_severity=by_severity,
    )


def _read_enforcement_ladder(
    table: Mapping[str, object], check: Check
) -> tuple[EnforcementStep, ...] | None:
    expected = f"a non-empty array of steps, each {_one_of(EnforcementStep)}, mildest first"
    items = check.field(table, "enforcement", "ladder", expected, is_array)
    if items is None:
        return None
    if not items:
        check.add("enforcement.ladder", f"expected {expected}, got an empty array")
        return None
    steps: list[EnforcementStep] = []
    for index, item in enumerate(items):
        path = f"enforcement.ladder[{index}]"
        if not _is_step(item):
            check.add(path, f"expected {_one_of(EnforcementStep)}, got {describe(item)}")
            return None
        step = EnforcementStep(item)
        if steps and step.rank <= steps[-1].rank:
            check.add(
                path,
                f'expected a step graver than "{steps[-1]}" (the ladder escalates: '
                f"{', '.join(EnforcementStep)}), got {describe(item)}",
            )
            return None
        steps.append(step)
    return tuple(steps)


def _read_by_severity(
    table: Mapping[str, object], ladder: tuple[EnforcementStep, ...] | None, check: Check
) -> Mapping[Severity, EnforcementStep] | None:
    path = "enforcement.by_severity"
    mapping = check.optional(
        table, "enforcement", "by_severity", "a table of severity = step", is_table, {}
    )
    if mapping is None:
        return None
    check.keys(mapping, path, _SEVERITY_KEYS)
    on_ladder = "" if ladder is None else f" ({', '.join(ladder)})"
    steps: dict[Severity, EnforcementStep] = {}
    complete = True
    for severity in Severity:  # from the least severe, so each is checked against the last
        if severity not in mapping:
            continue
        value = mapping[severity]
        if not _is_step(value) or (ladder is not None and EnforcementStep(value) not in ladder):
            check.add(
                at(path, severity),
                f"expected a step on the ladder{on_ladder}, got {describe(value)}",
            )
            complete = False
            continue
        step = EnforcementStep(value)
        milder = [(lesser, s) for lesser, s in steps.items() if s.rank > step.rank]
        if milder:
            lesser, graver = milder[-1]
            check.add(
                at(path, severity),
                f'expected a step at least as grave as by_severity.{lesser}\'s ("{graver}"): '
                f"a graver incident never calls for a milder step, got {describe(value)}",
            )
            complete = False
            continue
        steps[severity] = step
    return MappingProxyType(steps) if complete else None


_REPORTING_KEYS: Final = ("authority", "deadline_days", "remind_days")
MAX_AUTHORITY: Final = 200


def read_reporting(data: Mapping[str, object], check: Check) -> ReportingRules | None:
    """The `[reporting]` table, optional: who incidents are reported to, by when."""
    if "reporting" not in data:
        return ReportingRules()
    path = "reporting"
    table = check.field(data, "", path, "a table {authority, deadline_days, remind_days}", is_table)
    if table is None:
        return None
    check.keys(table, path, _REPORTING_KEYS)
    authority = check.optional(
        table, path, "authority", "a name", is_text, ReportingRules.authority
    )
    if authority is not None and len(authority) > MAX_AUTHORITY:
        check.add(at(path, "authority"), f"expected at most {MAX_AUTHORITY} characters")
        authority = None
    remind = check.optional(table, path, "remind_days", NON_NEGATIVE_INT, is_non_negative_days, 1)
    deadlines = _read_deadline_days(table, check)
    if authority is None or remind is None or deadlines is None:
        return None
    if deadlines and remind >= min(deadlines.values()):
        check.add(
            at(path, "remind_days"),
            f"expected fewer days than the shortest deadline ({min(deadlines.values())}), "
            f"got {remind}",
        )
        return None
    return ReportingRules(authority=authority.strip(), deadline_days=deadlines, remind_days=remind)


def _read_deadline_days(table: Mapping[str, object], check: Check) -> Mapping[Severity, int] | None:
    path = "reporting.deadline_days"
    mapping = check.optional(
        table, "reporting", "deadline_days", "a table of severity = days", is_table, {}
    )
    if mapping is None:
        return None
    check.keys(mapping, path, _SEVERITY_KEYS)
    days: dict[Severity, int] = {}
    complete = True
    for severity in Severity:  # from the least severe, so each is checked against the last
        if severity not in mapping:
            continue
        value = check.field(mapping, path, severity, POSITIVE_INT, is_days)
        if value is None:
            complete = False
            continue
        longer = [(lesser, d) for lesser, d in days.items() if d < value]
        if longer:
            lesser, shorter = longer[-1]
            check.add(
                at(path, severity),
                f"expected at most deadline_days.{lesser}'s {shorter} days: a graver incident "
                f"is never given longer to report, got {value}",
            )
            complete = False
            continue
        days[severity] = value
    return MappingProxyType(days) if complete else None


_QUARANTINE_KEYS: Final = ("trusted_reporters", "reports")
_REPORTER: Final = re.compile(r"(?:[^@\s]+@|@)[a-z0-9-]+(?:\.[a-z0-9-]+)+")
MAX_TRUSTED_REPORTERS: Final = 1000


def read_quarantine(data: Mapping[str, object], check: Check) -> QuarantineRules | None:
    """The `[quarantine]` table, optional: the trusted reporters and how many of them
    quarantine a release."""
    if "quarantine" not in data:
        return QuarantineRules()
    path = "quarantine"
    table = check.field(data, "", path, "a table {trusted_reporters, reports}", is_table)
    if table is None:
        return None
    check.keys(table, path, _QUARANTINE_KEYS)
    expected = 'an array of emails or "@domain" entries'
    entries = check.optional(table, path, "trusted_reporters", expected, is_array, [])
    reports = check.optional(table, path, "reports", POSITIVE_INT, is_days, 2)
    if entries is None or reports is None:
        return None
    reporters: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not _REPORTER.fullmatch(entry.strip().lower()):
            check.add(
                f"{path}.trusted_reporters[{index}]",
                f"expected {expected[12:]}, got {describe(entry)}",
            )
            continue
        reporters.append(entry.strip().lower())
    if len(reporters) > MAX_TRUSTED_REPORTERS:
        check.add(
            at(path, "trusted_reporters"), f"expected at most {MAX_TRUSTED_REPORTERS} entries"
        )
        return None
    if len(reporters) != len(entries):
        return None
    return QuarantineRules(trusted_reporters=tuple(dict.fromkeys(reporters)), reports=reports)
