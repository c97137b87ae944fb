# Payloads of evidence about releases and incidents: publishing, stages, recalls,
# decommissioning, attached evidence, incidents and the triggers they fire.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stages.evidence.kinds import EvidenceKind as K
from stages.evidence.payload import Payload
from stages.incidents import IncidentMove
from stages.release import Move


@dataclass(frozen=True)
class ReleasePublished(Payload):
    KIND = K.RELEASE_PUBLISHED
    version: str
    artifacts: int
    total_size: int
    license_sha256: str
    manifest_sha256: str
    signing_key_id: str


@dataclass(frozen=True)
class ReleasePromotionApproved(Payload):
    """An operator's approval of a promotion, recorded whether or not it moved yet."""

    KIND = K.RELEASE_PROMOTION_APPROVED
    target: str
    approvals: tuple[str, ...]
    needed: int


@dataclass(frozen=True)
class ReleaseRecalled(Payload):
    KIND = K.RELEASE_RECALLED
    tier: str | None
    reason: str
    rule: str | None


@dataclass(frozen=True)
class ReleaseYanked(Payload):
    KIND = K.RELEASE_YANKED
    reason: str


@dataclass(frozen=True)
class ReleaseUnyanked(Payload):
    KIND = K.RELEASE_UNYANKED
    reason: str  # the reason it had been yanked for


@dataclass(frozen=True)
class ReinstatementApprovals(Payload):
    tier: str | None
    approvals: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseReinstatementApproved(ReinstatementApprovals):
    """An approval of lifting a recall that is not yet enough to lift it."""

    KIND = K.RELEASE_REINSTATEMENT_APPROVED


@dataclass(frozen=True)
class ReleaseReinstated(ReinstatementApprovals):
    KIND = K.RELEASE_REINSTATED


@dataclass(frozen=True)
class ReleaseDecommissionAnnounced(Payload):
    KIND = K.RELEASE_DECOMMISSION_ANNOUNCED
    effective_at: datetime
    reason: str
    successor: str | None
    license_sha256: str | None
    reminders: tuple[datetime, ...]
    grantees_notified: int


@dataclass(frozen=True)
class ReleaseDecommissioned(Payload):
    KIND = K.RELEASE_DECOMMISSIONED
    effective_at: datetime
    reason: str
    successor: str | None
    other_release_open: bool
    grants_ended: int
    grantees_notified: int
    license_sha256: str | None


@dataclass(frozen=True)
class ReleasePurged(Payload):
    KIND = K.RELEASE_PURGED
    objects_deleted: int
    bytes_deleted: int
    objects_kept: int


@dataclass(frozen=True)
class GateResult:
    gate: str
    met: bool
    actual: object
    required: object


@dataclass(frozen=True)
class StagePromoted(Payload):
    KIND = K.STAGE_PROMOTED
    from_: str
    to: str
    approvals: tuple[str, ...] = ()
    gates: tuple[GateResult, ...] = ()
    override: bool = False
    override_reason: str | None = None
    unmet: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageMoved(Payload):
    """A move of the stage machine other than a promotion through the gates."""

    from_: str
    to: str
    reason: str | None


@dataclass(frozen=True)
class StageRolledBack(StageMoved):
    KIND = K.STAGE_ROLLED_BACK


@dataclass(frozen=True)
class StageRecalled(StageMoved):
    KIND = K.STAGE_RECALLED


@dataclass(frozen=True)
class StageReinstated(StageMoved):
    KIND = K.STAGE_REINSTATED


@dataclass(frozen=True)
class StageDecommissioned(StageMoved):
    KIND = K.STAGE_DECOMMISSIONED


@dataclass(frozen=True)
class EvidenceAttached(Payload):
    KIND = K.EVIDENCE_ATTACHED
    kind: str
    name: str
    result: str
    file_sha256: str | None
    file_name: str | None


@dataclass(frozen=True)
class IncidentReported(Payload):
    KIND = K.INCIDENT_REPORTED
    incident: str
    category: str
    links: int


@dataclass(frozen=True)
class ReleaseQuarantined(Payload):
    """Quarantined by an operator, or by the trusted reporters' incidents it names."""

    KIND = K.RELEASE_QUARANTINED
    reason: str
    incidents: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseQuarantineLifted(Payload):
    KIND = K.RELEASE_QUARANTINE_LIFTED
    reason: str


@dataclass(frozen=True)
class IncidentNoteAdded(Payload):
    """A note added; its text stays out of the evidence, which is kept for good."""

    KIND = K.INCIDENT_NOTE_ADDED
    incident: str
    status: str


@dataclass(frozen=True)
class IncidentAuthorityReported(Payload):
    """A report to an authority, made outside the gateway and recorded here: to whom,
    their reference, and whether it met the policy's deadline (None: it had none)."""

    KIND = K.INCIDENT_AUTHORITY_REPORTED
    incident: str
    authority: str
    reference: str | None
    severity: str | None
    deadline: str | None
    on_time: bool | None


@dataclass(frozen=True)
class IncidentAccountLinked(Payload):
    KIND = K.INCIDENT_ACCOUNT_LINKED
    incident: str
    status: str


@dataclass(frozen=True)
class IncidentMoved(Payload):
    incident: str
    from_: str
    to: str
    severity: str | None
    assignee: str | None
    resolution: str | None


@dataclass(frozen=True)
class IncidentTriaged(IncidentMoved):
    KIND = K.INCIDENT_TRIAGED


@dataclass(frozen=True)
class IncidentConfirmed(IncidentMoved):
    KIND = K.INCIDENT_CONFIRMED


@dataclass(frozen=True)
class IncidentDismissed(IncidentMoved):
    KIND = K.INCIDENT_DISMISSED


@dataclass(frozen=True)
class IncidentResolved(IncidentMoved):
    KIND = K.INCIDENT_RESOLVED


@dataclass(frozen=True)
class TriggerFired(Payload):
    KIND = K.TRIGGER_FIRED
    incident: str
    rule: str
    action: str
    tier: str | None
    account: str | None
    severity: str
    outcome: str


@dataclass(frozen=True)
class TransparencyReportPublished(Payload):
    """A report was published: its period, scope ("" for the whole gateway), the log's
    size it was computed from and the SHA-256 of its canonical JSON."""

    KIND = K.TRANSPARENCY_REPORT_PUBLISHED
    report: str
    period: str
    scope: str
    tree_size: int
    sha256: str


INCIDENT_MOVES: Mapping[IncidentMove, type[IncidentMoved]] = {
    IncidentMove.TRIAGE: IncidentTriaged,
    IncidentMove.CONFIRM: IncidentConfirmed,
    IncidentMove.DISMISS: IncidentDismissed,
    IncidentMove.RESOLVE: IncidentResolved,
}
_STAGE_MOVES: Mapping[Move, type[StageMoved]] = {
    Move.ROLLBACK: StageRolledBack,
    Move.RECALL: StageRecalled,
    Move.REINSTATE: StageReinstated,
    Move.DECOMMISSION: StageDecommissioned,
}


def stage_moved(
    move: Move, *, from_: str, to: str, reason: str | None
) -> StageMoved | StagePromoted:
    """The evidence of one move of the stage machine made directly (not through gates)."""
    if move is Move.PROMOTE:
        return StagePromoted(from_, to, override_reason=reason)
    return _STAGE_MOVES[move](from_, to, reason)
