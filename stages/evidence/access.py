# Payloads of evidence about access: applications, licenses, grants, close-outs, API keys
# and downloads.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stages.applications import ApplicationMove
from stages.evidence.kinds import EvidenceKind as K
from stages.evidence.payload import Payload
from stages.grants import GrantMove


@dataclass(frozen=True)
class ApplicationSubmitted(Payload):
    KIND = K.APPLICATION_SUBMITTED
    application: str
    tier: str
    renewal_of: str | None


@dataclass(frozen=True)
class ApplicationMoved(Payload):
    application: str
    tier: str
    from_: str
    to: str
    reason: str | None
    grant: str | None


@dataclass(frozen=True)
class ApplicationReviewStarted(ApplicationMoved):
    KIND = K.APPLICATION_REVIEW_STARTED


@dataclass(frozen=True)
class ApplicationChangesRequested(ApplicationMoved):
    KIND = K.APPLICATION_CHANGES_REQUESTED


@dataclass(frozen=True)
class ApplicationResubmitted(ApplicationMoved):
    KIND = K.APPLICATION_RESUBMITTED


@dataclass(frozen=True)
class ApplicationApproved(ApplicationMoved):
    KIND = K.APPLICATION_APPROVED


@dataclass(frozen=True)
class ApplicationDenied(ApplicationMoved):
    KIND = K.APPLICATION_DENIED


@dataclass(frozen=True)
class ApplicationWithdrawn(ApplicationMoved):
    KIND = K.APPLICATION_WITHDRAWN


@dataclass(frozen=True)
class ApplicationExpired(ApplicationMoved):
    KIND = K.APPLICATION_EXPIRED


@dataclass(frozen=True)
class PublicListingConsented(Payload):
    """The applicant agreed, when applying, to list the use publicly once approved."""

    KIND = K.PUBLIC_LISTING_CONSENTED
    application: str


@dataclass(frozen=True)
class PublicListingWithdrawn(Payload):
    KIND = K.PUBLIC_LISTING_WITHDRAWN
    application: str


@dataclass(frozen=True)
class LicenseAccepted(Payload):
    KIND = K.LICENSE_ACCEPTED
    license_sha256: str
    application: str
    client_address: str | None


@dataclass(frozen=True)
class LicenseChanged(Payload):
    KIND = K.LICENSE_CHANGED
    from_sha256: str
    to_sha256: str
    cause: str


@dataclass(frozen=True)
class GrantIssued(Payload):
    KIND = K.GRANT_ISSUED
    grant: str
    tier: str
    expires_at: datetime
    application: str | None


@dataclass(frozen=True)
class GrantRenewed(Payload):
    KIND = K.GRANT_RENEWED
    grant: str
    expires_at: datetime
    application: str


@dataclass(frozen=True)
class GrantMoved(Payload):
    """An operator's move on a grant."""

    grant: str
    from_: str
    to: str
    reason: str


@dataclass(frozen=True)
class GrantSuspended(GrantMoved):
    KIND = K.GRANT_SUSPENDED


@dataclass(frozen=True)
class GrantReinstated(GrantMoved):
    KIND = K.GRANT_REINSTATED


@dataclass(frozen=True)
class GrantRevoked(GrantMoved):
    KIND = K.GRANT_REVOKED


@dataclass(frozen=True)
class GrantExpired(Payload):
    """A grant ended: its window ran out (no reason), its release was decommissioned, or
    an operator expired it."""

    KIND = K.GRANT_EXPIRED
    grant: str
    reason: str | None = None
    release: str | None = None  # the release decommissioned, as org/name:version
    from_: str | None = None  # the status it ended from, where the writer knew it


@dataclass(frozen=True)
class CloseoutRequested(Payload):
    KIND = K.CLOSEOUT_REQUESTED
    grant: str
    closeout: str


@dataclass(frozen=True)
class CloseoutAttested(Payload):
    KIND = K.CLOSEOUT_ATTESTED
    grant: str
    closeout: str
    client_address: str | None


@dataclass(frozen=True)
class KeyCreated(Payload):
    KIND = K.KEY_CREATED
    key: str
    scopes: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True)
class KeyRevoked(Payload):
    """A key revoked: by its owner or an operator, or (`found`) because someone reported
    finding it, with where (`found_at`, as they said) and, from a secret scanner, in what
    kind of content (`source`, e.g. `commit`; None in rows written before it existed)."""

    KIND = K.KEY_REVOKED
    key: str
    found: bool = False
    found_at: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class PersonalDataErased(Payload):
    """The personal fields of evidence older than the policy's period were erased; the
    evidence log still verifies, as its leaves hold only a salted hash of them."""

    KIND = K.PERSONAL_DATA_ERASED
    rows: int
    before: datetime


@dataclass(frozen=True)
class SigningKeyRotated(Payload):
    """Download URLs are signed by a new key from now on; the retired ones still verify."""

    KIND = K.SIGNING_KEY_ROTATED
    kid: str
    retired: tuple[str, ...]


@dataclass(frozen=True)
class UrlIssued(Payload):
    KIND = K.URL_ISSUED
    grant: str
    artifact: int
    path: str
    tier: str
    download: str
    expires_at: datetime
    key: str
    client_address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class DownloadManifestRefused(Payload):
    KIND = K.DOWNLOAD_MANIFEST_REFUSED
    reason: str
    key: str
    client_address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class DownloadRequested(Payload):
    KIND = K.DOWNLOAD_REQUESTED
    grant: str
    artifact: int
    path: str
    tier: str
    download: str
    key: str
    method: str
    range: str | None
    outcome: str
    new_download: bool
    client_address: str | None
    user_agent: str | None


APPLICATION_MOVES: Mapping[ApplicationMove, type[ApplicationMoved]] = {
    ApplicationMove.START_REVIEW: ApplicationReviewStarted,
    ApplicationMove.REQUEST_CHANGES: ApplicationChangesRequested,
    ApplicationMove.RESUBMIT: ApplicationResubmitted,
    ApplicationMove.APPROVE: ApplicationApproved,
    ApplicationMove.DENY: ApplicationDenied,
    ApplicationMove.WITHDRAW: ApplicationWithdrawn,
    ApplicationMove.EXPIRE: ApplicationExpired,
}


def grant_moved(
    move: GrantMove, *, grant: str, from_: str, to: str, reason: str
) -> GrantMoved | GrantExpired:
    """The evidence of an operator's move on a grant."""
    if move is GrantMove.EXPIRE:
        return GrantExpired(grant, reason=reason, from_=from_)
    moved: dict[GrantMove, type[GrantMoved]] = {
        GrantMove.SUSPEND: GrantSuspended,
        GrantMove.REINSTATE: GrantReinstated,
        GrantMove.REVOKE: GrantRevoked,
    }
    return moved[move](grant, from_, to, reason)
