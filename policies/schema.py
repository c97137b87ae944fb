# The policy as plain values, after the loader has validated the file.
#
# Rules: frozen values only; nothing here reads a file or knows TOML. The loader is the
# one place that turns text into these.

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from stages.enforcement import EnforcementStep
from stages.incidents import Severity
from stages.tiers import TierLadder, UnknownTier


@dataclass(frozen=True)
class ComponentRule:
    """Files matching `glob` belong to `component`."""

    glob: str
    component: str


@dataclass(frozen=True)
class PublishRules:
    """How published files are sorted into components; the first matching rule wins."""

    rules: tuple[ComponentRule, ...]
    default_component: str


@dataclass(frozen=True)
class KeyRules:
    """API key lifetimes: a key always expires; `default_days` unless asked, at most `max_days`."""

    default_days: int
    max_days: int


class Approval(StrEnum):
    """How an application for a tier is approved."""

    ON_ACCEPTANCE = "on_acceptance"  # automatically, once the license is accepted
    EMAIL_DOMAIN = "email_domain"  # automatically for a verified email at an allowed domain
    MANUAL = "manual"  # always by an operator


class FieldKind(StrEnum):
    """What a form field asks for, and so what an answer must be."""

    TEXT = "text"  # one line of text
    LONG_TEXT = "long_text"  # several paragraphs
    SELECT = "select"  # one of the field's options
    CHECKBOX = "checkbox"  # true or false; a required one must be ticked
    COUNTRY = "country"  # an ISO 3166-1 alpha-2 code


# Kinds whose answers are free text, with the longest answer taken when the file says none.
DEFAULT_MAX_LENGTH: Mapping[FieldKind, int] = {FieldKind.TEXT: 200, FieldKind.LONG_TEXT: 5000}


@dataclass(frozen=True)
class FormField:
    """One question of a tier's application form.

    `options` is non-empty for select fields and empty for every other kind.
    `max_length` limits free-text answers (text, long_text); it is 0 for the other kinds,
    whose answers are checked against their options or code lists instead.
    """

    name: str
    label: str
    kind: FieldKind
    required: bool
    options: tuple[str, ...]
    help: str
    max_length: int


@dataclass(frozen=True)
class ApplicationRules:
    """How applications for one tier are asked, approved and timed.

    `allowed_domains` holds lower-case patterns ("uni.example", "*.edu"), non-empty
    exactly when approval is email_domain.
    """

    approval: Approval
    allowed_domains: tuple[str, ...]
    cooldown_days: int
    review_days: int
    response_days: int
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class LifecycleRules:
    """The clock of a grant's end: warnings, renewal and the deletion attestation.

    `expiry_warning_days` is sorted from the earliest warning to the last (30, 7).
    """

    expiry_warning_days: tuple[int, ...]
    renewal_opens_days: int
    closeout_days: int


@dataclass(frozen=True)
class EvidenceRequirement:
    """A record of evidence a promotion needs: `kind`/`name`, with `result` (None: any)."""

    kind: str
    name: str
    result: str | None


@dataclass(frozen=True)
class GateRules:
    """What must hold before a release is promoted INTO a tier.

    Zeros, an empty `max_open_incidents` (a severity left out has no limit), an empty
    `required_evidence` and no `max_flagged_share` demand nothing; `approvals` counts
    distinct operators, the one who runs the promotion included. The API gates count
    what inference services reported in the current stage: requests served, distinct
    accounts served, and the share of requests their safety filter flagged.
    """

    min_days_in_stage: int
    min_grantees_downloaded: int
    min_organisations_downloaded: int
    # Read-only (a MappingProxyType); left out of the hash, as a mapping does not hash.
    max_open_incidents: Mapping[Severity, int] = field(hash=False)
    required_evidence: tuple[EvidenceRequirement, ...]
    approvals: int
    no_recall_in_force: bool
    min_api_requests: int = 0
    min_api_users: int = 0
    max_flagged_share: float | None = None


@dataclass(frozen=True)
class ReinstateRules:
    """Lifting a recall needs `approvals` distinct operators."""

    approvals: int


@dataclass(frozen=True)
class DecommissionRules:
    """Notice before hosting ends, and how long the stored files are kept after.

    `reminder_days` is sorted from the earliest reminder to the last (30, 7).
    """

    reminder_days: tuple[int, ...]
    retention_days: int


@dataclass(frozen=True)
class EvidenceRules:
    """How long evidence keeps personal data (client addresses, user agents, emails):
    after `personal_data_days` it is erased; the evidence log still verifies, its
    leaves holding only a salted hash of those fields."""

    personal_data_days: int = 365


@dataclass(frozen=True)
class ReportingRules:
    """When an incident must be reported to an authority: `deadline_days` after its
    report reached the lab, by severity (a severity left out has no deadline), with a
    reminder to the operators `remind_days` before."""

    authority: str = "the competent authority"
    deadline_days: Mapping[Severity, int] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    remind_days: int = 1

    def deadline(self, severity: str | None, since: datetime) -> datetime | None:
        """The deadline of an incident of `severity` the lab learnt of at `since`."""
        if severity is None:
            return None
        days = self.deadline_days.get(Severity(severity))
        return None if days is None else since + timedelta(days=days)

    def reminder(self, deadline: datetime) -> datetime:
        return deadline - timedelta(days=self.remind_days)


@dataclass(frozen=True)
class QuarantineRules:
    """Trusted reporters (PEP 792): accounts by email, or every account of a domain
    ("@lab.example"). When `reports` distinct trusted reporters have open incidents about
    one release, it is quarantined until an operator decides."""

    trusted_reporters: tuple[str, ...] = ()
    reports: int = 2

    def trusts(self, email: str) -> bool:
        address = email.strip().lower()
        domain = address.rpartition("@")[2]
        return any(
            address == entry or (entry.startswith("@") and domain == entry[1:])
            for entry in self.trusted_reporters
        )


@dataclass(frozen=True)
class TransparencyRules:
    """What transparency reports publish: any count under `min_count` shows as
    "< min_count", with complementary suppression so no sum gives it away."""

    min_count: int = 10


class TriggerEvent(StrEnum):
    """What a trigger listens for."""

    INCIDENT_CONFIRMED = "incident_confirmed"


class Reaction(StrEnum):
    """What a trigger does when it fires."""

    RECALL = "recall"  # recall the whole release: every tier, at once
    RECALL_TIER = "recall_tier"  # withdraw the release from one tier and every wider one
    SUSPEND_ACCOUNTS = "suspend_accounts"  # suspend the accounts linked to the incident


@dataclass(frozen=True)
class Trigger:
    """Fire `action` on `on` for incidents of `min_severity` or worse.

    `tier` is set exactly when the action is recall_tier.
    """

    on: TriggerEvent
    min_severity: Severity
    action: Reaction
    tier: str | None


@dataclass(frozen=True)
class EnforcementRules:
    """The enforcement ladder and its clocks.

    `ladder` escalates (each step graver than the one before). `by_severity` maps an
    incident severity to the least step it calls for; every step in it is on the ladder,
    and a graver severity never calls for a milder step.
    """

    ladder: tuple[EnforcementStep, ...]
    suspend_days: int
    appeal_days: int
    # Read-only (a MappingProxyType); left out of the hash, as a mapping does not hash.
    by_severity: Mapping[Severity, EnforcementStep] = field(hash=False)


@dataclass(frozen=True)
class Policy:
    schema_version: int
    ladder: TierLadder
    publish: PublishRules
    api_keys: KeyRules
    # Read-only (a MappingProxyType), one entry per tier of the ladder. A mapping does not
    # hash, so it is left out of the policy's hash.
    applications: Mapping[str, ApplicationRules] = field(hash=False)
    lifecycle: LifecycleRules
    # Read-only, ladder order; only the tiers with a [gates.<tier>] table have an entry.
    gates: Mapping[str, GateRules] = field(hash=False)
    reinstate: ReinstateRules
    decommission: DecommissionRules
    triggers: tuple[Trigger, ...]
    enforcement: EnforcementRules
    evidence: EvidenceRules = EvidenceRules()
    transparency: TransparencyRules = TransparencyRules()
    reporting: ReportingRules = ReportingRules()
    quarantine: QuarantineRules = QuarantineRules()

    def application_rules(self, tier: str) -> ApplicationRules:
        """The application rules of `tier`; UnknownTier if it is not on the ladder."""
        try:
            return self.applications[tier]
        except KeyError:
            raise UnknownTier(tier, self.ladder.names) from None

    def gate_rules(self, tier: str) -> GateRules | None:
        """The gate of promotion into `tier` (None: no gate); UnknownTier if not on the ladder."""
        if tier not in self.ladder:
            raise UnknownTier(tier, self.ladder.names)
        return self.gates.get(tier)
