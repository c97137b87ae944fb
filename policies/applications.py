# Deciding how an application is handled: approval route, cooldown after a denial, and
# the clocks of review and of an applicant's answer to a request for changes.
#
# Rules:
# - Pure: the clock and every fact come in as arguments; datetimes are aware, in UTC.
# - Answers are frozen values with a reason a person can read, never a bare bool. The
#   approval route also carries a stable code, for evidence and reports.
# - Deadlines are inclusive: at the very moment a deadline falls the application is not
#   yet overdue or expired. A cooldown ends at its `until`: from then on one may apply.
# - Domain patterns: "uni.example" matches that domain only; "*.edu" matches any domain
#   under edu, at any depth, and not "edu" itself. Whole labels are compared, so
#   "evil-uni.edu" is not under "uni.edu". Comparison ignores case, and internationalised
#   domains are compared in their ASCII (punycode) form.

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from policies.schema import ApplicationRules, Approval

_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


class RouteCode(StrEnum):
    """Why an application took its route, for programs; the reason says it for people."""

    ON_ACCEPTANCE = "on_acceptance"
    DOMAIN_ALLOWED = "domain_allowed"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    EMAIL_UNREADABLE = "email_unreadable"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    MANUAL_TIER = "manual_tier"


@dataclass(frozen=True)
class AutoApprove:
    """Approve at once, as the system."""

    reason: str
    code: RouteCode
    automatic = True


@dataclass(frozen=True)
class NeedsReview:
    """Put the application in the operators' queue."""

    reason: str
    code: RouteCode
    automatic = False


Route = AutoApprove | NeedsReview


def approval_route(rules: ApplicationRules, *, email: str, email_verified: bool) -> Route:
    """Whether an application with the license accepted is approved at once or reviewed."""
    if rules.approval is Approval.ON_ACCEPTANCE:
        return AutoApprove("approved automatically on license acceptance", RouteCode.ON_ACCEPTANCE)
    if rules.approval is Approval.MANUAL:
        return NeedsReview("needs review: this tier is reviewed by hand", RouteCode.MANUAL_TIER)
    if not email_verified:
        return NeedsReview("needs review: email not verified", RouteCode.EMAIL_NOT_VERIFIED)
    domain = email_domain(email)
    if domain is None:
        return NeedsReview(
            f"needs review: cannot read a domain in the email address {email.strip()!r}",
            RouteCode.EMAIL_UNREADABLE,
        )
    for pattern in rules.allowed_domains:
        if domain_matches(domain, pattern):
            return AutoApprove(
                f"approved automatically: verified email at {domain} matches {pattern}",
                RouteCode.DOMAIN_ALLOWED,
            )
    return NeedsReview(
        f"needs review: {domain} is not an allowed domain", RouteCode.DOMAIN_NOT_ALLOWED
    )


def email_domain(email: str) -> str | None:
    """The lower-case ASCII domain of `email`, or None if it has no usable one."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return None
    domain = domain.removesuffix(".")  # "uni.edu." is the same domain, fully qualified
    try:
        # The idna codec lower-cases, and turns an internationalised name into punycode.
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return ascii_domain if _DOMAIN.fullmatch(ascii_domain) else None


def domain_matches(domain: str, pattern: str) -> bool:
    """Whether the lower-case `domain` is matched by an allowed-domain `pattern`."""
    pattern = pattern.lower()
    if pattern.startswith("*."):
        # The suffix keeps its dot, so only whole labels match and the bare domain does not.
        return domain.endswith(pattern[1:])
    return domain == pattern


@dataclass(frozen=True)
class MayApply:
    may_apply = True


@dataclass(frozen=True)
class CoolingDown:
    """A recent denial: the account may apply for this tier again from `until`."""

    until: datetime
    message: str
    may_apply = False


Cooldown = MayApply | CoolingDown


def cooldown(rules: ApplicationRules, last_denied_at: datetime | None, now: datetime) -> Cooldown:
    """Whether an account may apply again for a tier of a model, given its last denial there.

    Only denials count: withdrawn and expired applications may be followed at once. A
    terminated account is refused before this is asked.
    """
    if last_denied_at is None:
        return MayApply()
    until = last_denied_at + timedelta(days=rules.cooldown_days)
    if now >= until:
        return MayApply()
    return CoolingDown(
        until=until,
        message=(
            "your last application for this tier was denied; "
            f"you may apply again from {until:%Y-%m-%d %H:%M} UTC"
        ),
    )


@dataclass(frozen=True)
class ReviewClock:
    """How long an application has waited for review, and whether it is overdue."""

    due_at: datetime
    overdue: bool
    days_waiting: int


def review_clock(rules: ApplicationRules, submitted_at: datetime, now: datetime) -> ReviewClock:
    """The review deadline of an application awaiting review.

    `submitted_at` is when it last entered the queue: a resubmission after a request for
    changes starts the clock again, since the wait was the applicant's.
    """
    due_at = submitted_at + timedelta(days=rules.review_days)
    return ReviewClock(
        due_at=due_at,
        overdue=now > due_at,
        days_waiting=max(0, (now - submitted_at).days),
    )


@dataclass(frozen=True)
class ResponseClock:
    """How long an applicant has to answer a request for changes."""

    due_at: datetime
    expired: bool  # true: the system should make the application's `expire` move


def response_clock(
    rules: ApplicationRules, changes_requested_at: datetime, now: datetime
) -> ResponseClock:
    """The deadline of the applicant's answer to a request for changes."""
    due_at = changes_requested_at + timedelta(days=rules.response_days)
    return ResponseClock(due_at=due_at, expired=now > due_at)
