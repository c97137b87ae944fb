# Payloads of evidence about accounts: signing up and in, enforcement and appeals.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stages.enforcement import AccountMove, AppealMove, EnforcementStep
from stages.evidence.kinds import EvidenceKind as K
from stages.evidence.payload import Payload


@dataclass(frozen=True)
class AccountCreated(Payload):
    KIND = K.ACCOUNT_CREATED
    email: str
    operator: bool


@dataclass(frozen=True)
class AccountSignedUp(Payload):
    KIND = K.ACCOUNT_SIGNED_UP
    email: str
    client_address: str | None
    method: str = "password"


@dataclass(frozen=True)
class AccountSignUpAttempted(Payload):
    KIND = K.ACCOUNT_SIGN_UP_ATTEMPTED
    client_address: str | None


@dataclass(frozen=True)
class AccountEmailVerified(Payload):
    KIND = K.ACCOUNT_EMAIL_VERIFIED
    email: str


@dataclass(frozen=True)
class AccountSignedIn(Payload):
    KIND = K.ACCOUNT_SIGNED_IN
    method: str
    client_address: str | None
    issuer: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class AccountPasswordReset(Payload):
    KIND = K.ACCOUNT_PASSWORD_RESET
    sessions_ended: int


@dataclass(frozen=True)
class AccountOperatorSetUp(Payload):
    KIND = K.ACCOUNT_OPERATOR_SET_UP
    email: str


@dataclass(frozen=True)
class AccountOidcLinked(Payload):
    KIND = K.ACCOUNT_OIDC_LINKED
    provider: str
    issuer: str
    subject: str
    email: str | None
    password_removed: bool


# Enforcement and appeals.
@dataclass(frozen=True)
class EnforcementTaken(Payload):
    """An enforcement step on an account (a warning, a suspension, a termination)."""

    action: str
    from_: str
    to: str
    reason: str
    incident: str | None
    ends_at: datetime | None
    appeal_until: datetime
    suggested: str | None


@dataclass(frozen=True)
class AccountWarned(EnforcementTaken):
    KIND = K.ACCOUNT_WARNED


@dataclass(frozen=True)
class AccountSuspended(EnforcementTaken):
    KIND = K.ACCOUNT_SUSPENDED


@dataclass(frozen=True)
class AccountTerminated(EnforcementTaken):
    KIND = K.ACCOUNT_TERMINATED


@dataclass(frozen=True)
class EnforcementUndone(Payload):
    """A suspension lifted or a termination undone: by its end, an operator or an appeal."""

    action: str | None
    from_: str
    to: str
    reason: str
    appeal: str | None = None


@dataclass(frozen=True)
class AccountSuspensionLifted(EnforcementUndone):
    KIND = K.ACCOUNT_SUSPENSION_LIFTED


@dataclass(frozen=True)
class AccountRestored(EnforcementUndone):
    KIND = K.ACCOUNT_RESTORED


@dataclass(frozen=True)
class AppealSubmitted(Payload):
    KIND = K.APPEAL_SUBMITTED
    appeal: str
    action: str
    step: str
    client_address: str | None


@dataclass(frozen=True)
class AppealDecided(Payload):
    appeal: str
    action: str
    step: str
    reason: str
    account_move: str | None


@dataclass(frozen=True)
class AppealUpheld(AppealDecided):
    KIND = K.APPEAL_UPHELD


@dataclass(frozen=True)
class AppealOverturned(AppealDecided):
    KIND = K.APPEAL_OVERTURNED


ENFORCEMENT_STEPS: Mapping[EnforcementStep, type[EnforcementTaken]] = {
    EnforcementStep.WARN: AccountWarned,
    EnforcementStep.SUSPEND: AccountSuspended,
    EnforcementStep.TERMINATE: AccountTerminated,
}
UNDOING_MOVES: Mapping[AccountMove, type[EnforcementUndone]] = {
    AccountMove.LIFT: AccountSuspensionLifted,
    AccountMove.RESTORE: AccountRestored,
}
APPEAL_DECISIONS: Mapping[AppealMove, type[AppealDecided]] = {
    AppealMove.UPHOLD: AppealUpheld,
    AppealMove.OVERTURN: AppealOverturned,
}
