# The one decision: may this account, through this grant, fetch this artifact now?
#
# Rules:
# - Pure: every fact, the clock included, comes in as a value; nothing is looked up.
# - The answer is Allow or Deny(reason, message), never a bare bool. Every reason has a
#   stable code (for programs and exit codes) and a sentence a person understands.
# - Checks run from the caller outward: the credential, the account, the grant, the
#   release, the tier, then the quota. The first failure is the answer, so a person is
#   told the most fundamental thing to fix first.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from stages.release import StageError, StageMachine


class Reason(StrEnum):
    KEY_INVALID = "key_invalid"
    KEY_EXPIRED = "key_expired"
    KEY_REVOKED = "key_revoked"
    KEY_SCOPE_MISSING = "key_scope_missing"
    ACCOUNT_SUSPENDED = "account_suspended"
    ACCOUNT_TERMINATED = "account_terminated"
    NO_GRANT = "no_grant"
    GRANT_NOT_STARTED = "grant_not_started"
    GRANT_EXPIRED = "grant_expired"
    GRANT_SUSPENDED = "grant_suspended"
    GRANT_REVOKED = "grant_revoked"
    RELEASE_RECALLED = "release_recalled"
    RELEASE_DECOMMISSIONED = "release_decommissioned"
    TIER_NOT_OPEN = "tier_not_open"
    COMPONENT_NOT_IN_TIER = "component_not_in_tier"
    QUOTA_EXHAUSTED = "quota_exhausted"
    URL_EXPIRED = "url_expired"
    URL_INVALID = "url_invalid"
    # Added later: a reason's place is its exit code (gateway/client/exit_codes.py).
    TIER_API_ONLY = "tier_api_only"
    API_NOT_IN_TIER = "api_not_in_tier"
    RATE_LIMITED = "rate_limited"
    CREDITS_EXHAUSTED = "credits_exhausted"
    RELEASE_QUARANTINED = "release_quarantined"


@dataclass(frozen=True)
class Allow:
    allowed = True


@dataclass(frozen=True)
class Deny:
    reason: Reason
    message: str
    allowed = False


Decision = Allow | Deny


@dataclass(frozen=True)
class KeyFacts:
    scopes: frozenset[str]
    expires_at: datetime
    revoked: bool


@dataclass(frozen=True)
class GrantFacts:
    status: str  # active | suspended | revoked | expired
    tier: str
    starts_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AccessFacts:
    now: datetime
    account_status: str  # active | suspended | terminated
    grant: GrantFacts | None
    release_ref: str
    release_stage: str
    release_status: str  # active | recalled | decommissioned
    component: str | None  # None: asking about the release, not one artifact
    tier_components: frozenset[str]
    key: KeyFacts | None = None  # None: not through an API key (a signed URL, the portal)
    required_scope: str = "download"  # "": any live key will do
    # True: the model's API is asked for (a service verifying a grantee's key), not files.
    api_use: bool = False
    tier_api_only: bool = False  # the grant's tier gives API access only
    tier_has_api: bool = False  # the grant's tier has API terms
    quota_left: int | None = None  # None: the quota is not in question for this request
    recalled_tiers: frozenset[str] = frozenset()  # tiers of the release under a tier recall
    # Quarantined (PEP 792): nothing new is given out (a manifest, API use); a URL already
    # issued for one artifact still serves.
    release_quarantined: bool = False


def decide(facts: AccessFacts, machine: StageMachine) -> Decision:
    """Allow, or the first reason to deny, with a sentence for the person asking."""
    for check in _CHECKS:
        denied = check(facts, machine)
        if denied is not None:
            return denied
    return Allow()


def check_key(key: KeyFacts, now: datetime, required_scope: str) -> Decision:
    """The credential alone: for calls that involve no grant (managing keys, applying)."""
    denied = _key_denial(
        AccessFacts(
            now=now,
            account_status="active",
            grant=None,
            release_ref="",
            release_stage="draft",
            release_status="active",
            component=None,
            tier_components=frozenset(),
            key=key,
            required_scope=required_scope,
        ),
        None,
    )
    return denied or Allow()


def _key_denial(facts: AccessFacts, _machine: StageMachine | None) -> Deny | None:
    key = facts.key
    if key is None:
        return None
    if key.revoked:
        return Deny(Reason.KEY_REVOKED, "this API key was revoked; create a new one")
    if facts.now >= key.expires_at:
        return Deny(
            Reason.KEY_EXPIRED,
            f"this API key expired on {key.expires_at:%Y-%m-%d %H:%M} UTC; create a new one",
        )
    if facts.required_scope and facts.required_scope not in key.scopes:
        return Deny(
            Reason.KEY_SCOPE_MISSING,
            f"this API key lacks the {facts.required_scope!r} scope "
            f"(it has: {', '.join(sorted(key.scopes)) or 'none'})",
        )
    return None


def check_account(account_status: str) -> Decision:
    """The account alone: a suspended or terminated account uses none of its credentials."""
    return _status_denial(account_status) or Allow()


def _status_denial(account_status: str) -> Deny | None:
    if account_status == "suspended":
        return Deny(Reason.ACCOUNT_SUSPENDED, "your account is suspended")
    if account_status == "terminated":
        return Deny(Reason.ACCOUNT_TERMINATED, "your account was terminated")
    return None


def _account_denial(facts: AccessFacts, _machine: StageMachine) -> Deny | None:
    return _status_denial(facts.account_status)


def _release_denial(facts: AccessFacts, machine: StageMachine) -> Deny | None:
    grant = facts.grant
    assert grant is not None  # checked before
    withdrawn = _withdrawn(facts, grant)
    if withdrawn is not None:
        return withdrawn
    try:
        open_to_tier = machine.reaches(facts.release_stage, grant.tier)
    except StageError:
        return Deny(
            Reason.TIER_NOT_OPEN,
            f"the {grant.tier} tier of your grant is not in the current policy",
        )
    if not open_to_tier:
        return Deny(
            Reason.TIER_NOT_OPEN,
            f"{facts.release_ref} is not open to the {grant.tier} tier yet "
            f"(its stage is {facts.release_stage})",
        )
    return None


def _withdrawn(facts: AccessFacts, grant: GrantFacts) -> Deny | None:
    """Why the release gives nothing to this grant whatever its stage: recalled,
    decommissioned or quarantined."""
    if facts.release_status == "recalled":
        return Deny(Reason.RELEASE_RECALLED, f"{facts.release_ref} has been recalled")
    if grant.tier in facts.recalled_tiers:
        return Deny(
            Reason.RELEASE_RECALLED,
            f"{facts.release_ref} has been recalled for the {grant.tier} tier",
        )
    if facts.release_status == "decommissioned":
        return Deny(
            Reason.RELEASE_DECOMMISSIONED,
            f"{facts.release_ref} is decommissioned and no longer hosted",
        )
    if facts.release_quarantined and facts.component is None:
        return Deny(
            Reason.RELEASE_QUARANTINED,
            f"{facts.release_ref} is quarantined while reports about it are looked into; "
            "no new download links or API use until an operator decides",
        )
    return None


def _artifact_denial(facts: AccessFacts, _machine: StageMachine) -> Deny | None:
    grant = facts.grant
    assert grant is not None
    if facts.api_use and not facts.tier_has_api:
        return Deny(
            Reason.API_NOT_IN_TIER, f"the {grant.tier} tier gives no access to the model's API"
        )
    if not facts.api_use and facts.tier_api_only:
        return Deny(
            Reason.TIER_API_ONLY,
            f"the {grant.tier} tier is API-only: its grants download nothing; use the "
            "model through its API with your API key",
        )
    if facts.component is not None and facts.component not in facts.tier_components:
        return Deny(
            Reason.COMPONENT_NOT_IN_TIER,
            f"the {facts.component} component is not part of the {grant.tier} tier",
        )
    if facts.quota_left is not None and facts.quota_left <= 0:
        return Deny(
            Reason.QUOTA_EXHAUSTED, "the download quota for this file is used up for this period"
        )
    return None


def _grant_denial(facts: AccessFacts, _machine: StageMachine) -> Deny | None:
    grant, now = facts.grant, facts.now
    if grant is None:
        return Deny(
            Reason.NO_GRANT, f"you have no access grant for {facts.release_ref}; apply for a tier"
        )
    if grant.status == "revoked":
        return Deny(Reason.GRANT_REVOKED, "your access grant was revoked")
    if grant.status == "suspended":
        return Deny(Reason.GRANT_SUSPENDED, "your access grant is suspended")
    if grant.status == "expired" or now >= grant.expires_at:
        return Deny(
            Reason.GRANT_EXPIRED,
            f"your access grant expired on {grant.expires_at:%Y-%m-%d}; renew it to continue",
        )
    if now < grant.starts_at:
        return Deny(
            Reason.GRANT_NOT_STARTED,
            f"your access grant starts on {grant.starts_at:%Y-%m-%d %H:%M} UTC",
        )
    return None


# The order in which problems are reported: the credential first, the quota last.
_CHECKS = (_key_denial, _account_denial, _grant_denial, _release_denial, _artifact_denial)
