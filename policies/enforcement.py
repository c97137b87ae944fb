# The enforcement ladder as policy: which step comes next for an account, how long a
# suspension lasts, and until when an action may be appealed.
#
# Rules:
# - Pure: the clock and every fact come in as arguments; datetimes are aware, in UTC.
# - Answers carry a reason a person can read, never a bare value.
# - The ladder: the first step for an account with no standing action; after that, the
#   first step of the ladder graver than the gravest standing one; at the top of the
#   ladder, its top step again. Overturned actions do not stand. A terminated account
#   has no next step.
# - An incident's severity may skip steps: it calls for at least the step
#   enforcement.by_severity gives it, or, if it has none, the nearest lesser severity's.
# - An action may be appealed once, up to and including `appeal_days` after it.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.schema import EnforcementRules
from stages.enforcement import EnforcementStep
from stages.incidents import Severity


@dataclass(frozen=True)
class PastAction:
    """An enforcement step already taken against the account."""

    step: EnforcementStep
    overturned: bool = False


@dataclass(frozen=True)
class Suggestion:
    """The step the ladder suggests next (None: nothing further), and why."""

    step: EnforcementStep | None
    reason: str


def next_step(
    rules: EnforcementRules, history: Sequence[PastAction], severity: Severity | None
) -> Suggestion:
    """The step the policy suggests for an account with `history`, for an incident of `severity`."""
    standing = [EnforcementStep(action.step) for action in history if not action.overturned]
    if EnforcementStep.TERMINATE in standing:
        return Suggestion(None, "the account is already terminated; there is no further step")
    gravest = max(standing, key=lambda step: step.rank, default=None)
    ladder_step, reason = _ladder_step(rules.ladder, gravest)
    floor = _severity_floor(rules, severity)
    if floor is not None and floor[1].rank > ladder_step.rank:
        mapped_from, step = floor
        assert severity is not None
        via = "" if mapped_from is severity else f", as for {mapped_from}"
        return Suggestion(
            step,
            f"a {severity} incident calls for at least {step} "
            f"(enforcement.by_severity.{mapped_from}{via})",
        )
    return Suggestion(ladder_step, reason)


def _ladder_step(
    ladder: tuple[EnforcementStep, ...], gravest: EnforcementStep | None
) -> tuple[EnforcementStep, str]:
    if gravest is None:
        return ladder[0], f"no standing action: the ladder starts with {ladder[0]}"
    for step in ladder:
        if step.rank > gravest.rank:
            return step, f"after a {gravest} comes {step}"
    return ladder[-1], f"{gravest} is the top of the ladder: {ladder[-1]} again"


def _severity_floor(
    rules: EnforcementRules, severity: Severity | None
) -> tuple[Severity, EnforcementStep] | None:
    """The least step `severity` calls for, and the severity whose mapping says so."""
    if severity is None:
        return None
    severity = Severity(severity)
    mapped = [(s, step) for s, step in rules.by_severity.items() if s <= severity]
    return max(mapped, key=lambda pair: pair[0].rank, default=None)


def suspension_until(
    rules: EnforcementRules, starts_at: datetime, days: int | None = None
) -> datetime:
    """When a suspension from `starts_at` ends: after `days`, or the policy's suspend_days."""
    length = rules.suspend_days if days is None else days
    if length <= 0:
        raise ValueError(f"a suspension lasts at least a day, got {length} days")
    return starts_at + timedelta(days=length)


@dataclass(frozen=True)
class AppealOpen:
    """The action may be appealed until `closes_at` (inclusive)."""

    closes_at: datetime
    may_appeal = True


@dataclass(frozen=True)
class AppealClosed:
    """The action may not be appealed, and why."""

    closes_at: datetime
    reason: str
    may_appeal = False


AppealWindow = AppealOpen | AppealClosed


def appeal_window(
    rules: EnforcementRules, action_at: datetime, now: datetime, *, already_appealed: bool
) -> AppealWindow:
    """Whether an action taken at `action_at` may be appealed now."""
    closes_at = action_at + timedelta(days=rules.appeal_days)
    if already_appealed:
        return AppealClosed(closes_at, "this action was already appealed; one appeal per action")
    if now > closes_at:
        return AppealClosed(
            closes_at,
            f"the appeal window closed on {closes_at:%Y-%m-%d %H:%M} UTC, "
            f"{rules.appeal_days} days after the action",
        )
    return AppealOpen(closes_at)
