# The names of evidence kinds, and the older names rows may still carry.
#
# Rules:
# - A kind is named `noun.past_participle`: the thing, then what happened to it
#   (`grant.expired`, `account.signed_in`, `release.reinstatement_approved`).
# - Evidence is append-only and never rewritten, so rows written under older names keep
#   them. `LEGACY_KINDS` maps each older name to its kind; readers go through
#   `kind_of_stored` (one row) and `stored_names` (a filter matching old and new rows).

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class EvidenceKind(StrEnum):
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_SIGNED_UP = "account.signed_up"
    ACCOUNT_SIGN_UP_ATTEMPTED = "account.sign_up_attempted"
    ACCOUNT_EMAIL_VERIFIED = "account.email_verified"
    ACCOUNT_SIGNED_IN = "account.signed_in"
    ACCOUNT_PASSWORD_RESET = "account.password_reset"  # noqa: S105 - a kind, not a secret
    ACCOUNT_OPERATOR_SET_UP = "account.operator_set_up"
    ACCOUNT_OIDC_LINKED = "account.oidc_linked"
    ACCOUNT_WARNED = "account.warned"
    ACCOUNT_SUSPENDED = "account.suspended"
    ACCOUNT_TERMINATED = "account.terminated"
    ACCOUNT_SUSPENSION_LIFTED = "account.suspension_lifted"
    ACCOUNT_RESTORED = "account.restored"
    APPEAL_SUBMITTED = "appeal.submitted"
    APPEAL_UPHELD = "appeal.upheld"
    APPEAL_OVERTURNED = "appeal.overturned"
    APPLICATION_SUBMITTED = "application.submitted"
    APPLICATION_REVIEW_STARTED = "application.review_started"
    APPLICATION_CHANGES_REQUESTED = "application.changes_requested"
    APPLICATION_RESUBMITTED = "application.resubmitted"
    APPLICATION_APPROVED = "application.approved"
    APPLICATION_DENIED = "application.denied"
    APPLICATION_WITHDRAWN = "application.withdrawn"
    APPLICATION_EXPIRED = "application.expired"
    PUBLIC_LISTING_CONSENTED = "public_listing.consented"
    PUBLIC_LISTING_WITHDRAWN = "public_listing.withdrawn"
    LICENSE_ACCEPTED = "license.accepted"
    LICENSE_CHANGED = "license.changed"
    GRANT_ISSUED = "grant.issued"
    GRANT_RENEWED = "grant.renewed"
    GRANT_SUSPENDED = "grant.suspended"
    GRANT_REINSTATED = "grant.reinstated"
    GRANT_REVOKED = "grant.revoked"
    GRANT_EXPIRED = "grant.expired"
    CLOSEOUT_REQUESTED = "closeout.requested"
    CLOSEOUT_ATTESTED = "closeout.attested"
    KEY_CREATED = "key.created"
    SERVICE_ACCOUNT_CREATED = "service_account.created"
    API_USE_REPORTED = "api_use.reported"
    KEY_REVOKED = "key.revoked"
    SIGNING_KEY_ROTATED = "signing_key.rotated"
    PERSONAL_DATA_ERASED = "personal_data.erased"
    URL_ISSUED = "url.issued"
    DOWNLOAD_MANIFEST_REFUSED = "download.manifest_refused"
    DOWNLOAD_REQUESTED = "download.requested"
    RELEASE_PUBLISHED = "release.published"
    RELEASE_PROMOTION_APPROVED = "release.promotion_approved"
    RELEASE_RECALLED = "release.recalled"
    RELEASE_REINSTATEMENT_APPROVED = "release.reinstatement_approved"
    RELEASE_REINSTATED = "release.reinstated"
    RELEASE_YANKED = "release.yanked"
    RELEASE_UNYANKED = "release.unyanked"
    RELEASE_QUARANTINED = "release.quarantined"
    RELEASE_QUARANTINE_LIFTED = "release.quarantine_lifted"
    RELEASE_DECOMMISSION_ANNOUNCED = "release.decommission_announced"
    RELEASE_DECOMMISSIONED = "release.decommissioned"
    RELEASE_PURGED = "release.purged"
    STAGE_PROMOTED = "stage.promoted"
    STAGE_ROLLED_BACK = "stage.rolled_back"
    STAGE_RECALLED = "stage.recalled"
    STAGE_REINSTATED = "stage.reinstated"
    STAGE_DECOMMISSIONED = "stage.decommissioned"
    EVIDENCE_ATTACHED = "evidence.attached"
    INCIDENT_REPORTED = "incident.reported"
    INCIDENT_NOTE_ADDED = "incident.note_added"
    INCIDENT_ACCOUNT_LINKED = "incident.account_linked"
    INCIDENT_TRIAGED = "incident.triaged"
    INCIDENT_CONFIRMED = "incident.confirmed"
    INCIDENT_DISMISSED = "incident.dismissed"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_AUTHORITY_REPORTED = "incident.authority_reported"
    TRIGGER_FIRED = "trigger.fired"
    TRANSPARENCY_REPORT_PUBLISHED = "transparency_report.published"


K = EvidenceKind
# Names older versions wrote (a move's verb where a past participle belongs), as kinds.
LEGACY_KINDS: Final[Mapping[str, EvidenceKind]] = {
    "grant.renew": K.GRANT_RENEWED,
    "account.operator_setup": K.ACCOUNT_OPERATOR_SET_UP,
    "account.warn": K.ACCOUNT_WARNED,
    "account.suspend": K.ACCOUNT_SUSPENDED,
    "account.terminate": K.ACCOUNT_TERMINATED,
    "account.lift": K.ACCOUNT_SUSPENSION_LIFTED,
    "account.restore": K.ACCOUNT_RESTORED,
    "appeal.uphold": K.APPEAL_UPHELD,
    "appeal.overturn": K.APPEAL_OVERTURNED,
    "application.start_review": K.APPLICATION_REVIEW_STARTED,
    "application.request_changes": K.APPLICATION_CHANGES_REQUESTED,
    "application.resubmit": K.APPLICATION_RESUBMITTED,
    "application.approve": K.APPLICATION_APPROVED,
    "application.deny": K.APPLICATION_DENIED,
    "application.withdraw": K.APPLICATION_WITHDRAWN,
    "application.expire": K.APPLICATION_EXPIRED,
    "grant.suspend": K.GRANT_SUSPENDED,
    "grant.reinstate": K.GRANT_REINSTATED,
    "grant.revoke": K.GRANT_REVOKED,
    "grant.expire": K.GRANT_EXPIRED,
    "stage.approval": K.RELEASE_PROMOTION_APPROVED,
    "release.recall": K.RELEASE_RECALLED,
    "release.reinstate_approval": K.RELEASE_REINSTATEMENT_APPROVED,
    "release.reinstate": K.RELEASE_REINSTATED,
    "stage.promote": K.STAGE_PROMOTED,
    "stage.rollback": K.STAGE_ROLLED_BACK,
    "stage.recall": K.STAGE_RECALLED,
    "stage.reinstate": K.STAGE_REINSTATED,
    "stage.decommission": K.STAGE_DECOMMISSIONED,
    "incident.note": K.INCIDENT_NOTE_ADDED,
    "incident.triage": K.INCIDENT_TRIAGED,
    "incident.confirm": K.INCIDENT_CONFIRMED,
    "incident.dismiss": K.INCIDENT_DISMISSED,
    "incident.resolve": K.INCIDENT_RESOLVED,
}


def kind_of_stored(name: str) -> EvidenceKind | None:
    """The kind of a stored row's name, old or new; None for a name no version wrote."""
    if name in EvidenceKind._value2member_map_:
        return EvidenceKind(name)
    return LEGACY_KINDS.get(name)


def stored_names(kind: EvidenceKind) -> frozenset[str]:
    """Every name rows of `kind` may carry: for `Evidence.kind.in_(...)` filters."""
    return frozenset({kind.value, *(old for old, new in LEGACY_KINDS.items() if new is kind)})
