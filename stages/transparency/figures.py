# The figures of a transparency report, folded from evidence entries.
#
# Rules:
# - The fold reads entries in leaf order, each in the form of the log's entries (and of
#   `gateway audit export`): index, at, kind, model_id, release_id, account_id, data.
#   The gateway builds a report by feeding it the log's rows; an auditor recomputes it
#   by feeding it an export. Nothing else goes in, so both give the same figures.
# - Downloads may instead arrive already counted (`add_downloads`), from the daily
#   rollups that count the same rows the same way: a download is a `download.requested`
#   row whose outcome is "allowed" and that started a new download, at the stage its
#   release had at that leaf (the last stage move before it, "draft" before any).
# - Each figure counts one population once, and counts of different figures are never
#   bound by a sum the report does not state (see stages/suppression.py): applications
#   received (submitted in the period) by tier; decisions made in the period by outcome,
#   each outcome by tier and denials by grouped reason; grants active at the period's
#   end by tier and organisation type; downloads by stage; incidents reported in the
#   period by category, severity and status at the period's end; enforcement actions by
#   type; appeals submitted in the period by outcome at its end.
# - Distinct grantees are counted per stage with no total (one grantee may download at
#   several stages), and durations (review, triage, resolution) as a median and 90th
#   percentile of whole seconds, nearest rank.
# - Free text is never a figure's label unless at least `min_count` rows share it:
#   denial reasons used fewer times are counted together as "other reasons".

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from stages.evidence.kinds import EvidenceKind as K
from stages.evidence.kinds import kind_of_stored
from stages.release import DRAFT

_STAGE_MOVES: Final = frozenset(
    {
        K.STAGE_PROMOTED,
        K.STAGE_ROLLED_BACK,
        K.STAGE_RECALLED,
        K.STAGE_REINSTATED,
        K.STAGE_DECOMMISSIONED,
    }
)
_RELEASE_ACTIONS: Final = {
    K.STAGE_ROLLED_BACK: "rolled_back",
    K.STAGE_RECALLED: "recalled",
    K.STAGE_DECOMMISSIONED: "decommissioned",
}
_DECISIONS: Final = {
    K.APPLICATION_APPROVED: "approved",
    K.APPLICATION_DENIED: "denied",
    K.APPLICATION_WITHDRAWN: "withdrawn",
    K.APPLICATION_EXPIRED: "expired",
}
_REVIEWED: Final = frozenset({K.APPLICATION_APPROVED, K.APPLICATION_DENIED})
_GRANT_STATUS: Final = {
    K.GRANT_ISSUED: "active",
    K.GRANT_RENEWED: "active",
    K.GRANT_REINSTATED: "active",
    K.GRANT_SUSPENDED: "suspended",
    K.GRANT_REVOKED: "ended",
    K.GRANT_EXPIRED: "ended",
}
_ENFORCEMENT: Final = {
    K.ACCOUNT_WARNED: "warning",
    K.ACCOUNT_SUSPENDED: "suspension",
    K.ACCOUNT_TERMINATED: "termination",
}
_APPEAL_OUTCOMES: Final = {K.APPEAL_UPHELD: "upheld", K.APPEAL_OVERTURNED: "overturned"}
_INCIDENT_MOVES: Final = frozenset(
    {K.INCIDENT_TRIAGED, K.INCIDENT_CONFIRMED, K.INCIDENT_DISMISSED, K.INCIDENT_RESOLVED}
)
_INCIDENT_CLOSED: Final = frozenset({K.INCIDENT_DISMISSED, K.INCIDENT_RESOLVED})
NOT_ASSESSED: Final = "not assessed"
OTHER_REASONS: Final = "other reasons"
UNCLASSIFIED: Final = "unclassified"
_REASON_CHARS: Final = 200
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


@dataclass
class Count:
    """A count and its breakdowns: name -> label -> count; each breakdown sums to it."""

    value: int = 0
    by: dict[str, dict[str, Count]] = field(default_factory=dict)

    def add(self, n: int = 1, **labels: str) -> None:
        """Add `n` here and under each `breakdown=label` given."""
        self.value += n
        for breakdown, label in labels.items():
            self.by.setdefault(breakdown, {}).setdefault(label, Count()).value += n

    def part(self, breakdown: str, label: str) -> Count:
        return self.by.setdefault(breakdown, {}).setdefault(label, Count())


@dataclass
class _Incident:
    category: str
    reported_at: datetime
    status: str = "reported"
    severity: str | None = None
    triaged_at: datetime | None = None
    closed_at: datetime | None = None


def entry_time(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def printable(text: object) -> str:
    """Stored text as a report may publish it: a lone surrogate (which no UTF-8 holds)
    becomes U+FFFD, so the report's canonical JSON is always valid UTF-8."""
    return _SURROGATE.sub("\ufffd", str(text or ""))


def normalised_reason(text: object) -> str:
    """A denial reason as it is grouped: trimmed, one space between words, lower case."""
    words = " ".join(printable(text).split()).casefold()
    return words[:_REASON_CHARS] or "no reason given"


def nearest_rank(values: list[int], share: float) -> int:
    """The nearest-rank percentile (share 0.5: the lower median) of non-empty `values`."""
    ordered = sorted(values)
    rank = max(1, -(-int(share * 1000) * len(ordered) // 1000))
    return ordered[rank - 1]


class Figures:
    """The fold of a period's evidence into a report's figures (see the module's rules)."""

    def __init__(self, start: datetime, end: datetime, model_id: int | None) -> None:
        self.start, self.end, self.model_id = start, end, model_id
        self.received = Count()
        self.decisions = Count()
        self.denial_reasons: dict[str, int] = {}
        self.review_seconds: list[int] = []
        self.downloads = Count()
        self.grantees: dict[str, set[str]] = {}
        self.enforcement = Count()
        self.appeals: dict[str, str] = {}
        self.release_actions: list[dict[str, Any]] = []
        # API use inference services reported in the period (api_use.reported), by tier.
        self.api_requests = Count()
        self.api_flagged = Count()
        self.api_users: set[str] = set()
        self._stage: dict[int, str] = {}
        self._submitted: dict[str, tuple[datetime, str]] = {}
        self._decided: set[str] = set()
        self._grants: dict[str, tuple[str, str]] = {}
        self._incidents: dict[str, _Incident] = {}

    def add(self, entry: Mapping[str, Any]) -> None:
        """Fold one entry; entries come in leaf order."""
        kind = kind_of_stored(str(entry["kind"]))
        if kind is None:
            return
        if self.model_id is not None and entry.get("model_id") != self.model_id:
            return
        at = entry_time(str(entry["at"]))
        data: Mapping[str, Any] = entry.get("data") or {}
        if kind in _STAGE_MOVES and entry.get("release_id") is not None:
            self._stage_moved(kind, at, int(entry["release_id"]), data)
        if at >= self.end:
            return
        during = at >= self.start
        if kind is K.DOWNLOAD_REQUESTED:
            if during and data.get("outcome") == "allowed" and data.get("new_download"):
                release = entry.get("release_id")
                stage = self._stage.get(int(release), DRAFT) if release is not None else DRAFT
                self.add_downloads(stage, str(entry.get("account_id") or ""), 1)
        elif kind is K.API_USE_REPORTED and during:
            self._api_use(str(entry.get("account_id") or ""), data)
        elif kind.value.startswith(("application.", "grant.")):
            self._access(kind, at, during, data)
        elif kind.value.startswith("incident."):
            self._incident(kind, at, during, data)
        elif kind in _ENFORCEMENT and during and self.model_id is None:
            self.enforcement.add(type=_ENFORCEMENT[kind])
        elif kind is K.APPEAL_SUBMITTED and during and self.model_id is None:
            self.appeals[str(data.get("appeal"))] = "pending"
        elif kind in _APPEAL_OUTCOMES and str(data.get("appeal")) in self.appeals:
            self.appeals[str(data.get("appeal"))] = _APPEAL_OUTCOMES[kind]

    def _api_use(self, account: str, data: Mapping[str, Any]) -> None:
        tier = str(data.get("tier") or "")
        self.api_requests.add(int(data.get("requests") or 0), tier=tier)
        self.api_flagged.add(int(data.get("flagged") or 0), tier=tier)
        self.api_users.add(account)

    def add_downloads(self, stage: str, account: str, count: int) -> None:
        """Downloads started at `stage` by `account` (the rollups' counts, or one row)."""
        self.downloads.add(count, stage=stage)
        self.grantees.setdefault(stage, set()).add(account)

    def _stage_moved(self, kind: K, at: datetime, release: int, data: Mapping[str, Any]) -> None:
        before = self._stage.get(release, DRAFT)
        self._stage[release] = str(data.get("to") or before)
        if kind in _RELEASE_ACTIONS and self.start <= at < self.end:
            self.release_actions.append(
                {
                    "at": at.isoformat(),
                    "release_id": release,
                    "action": _RELEASE_ACTIONS[kind],
                    "from": str(data.get("from_") or before),
                    "to": self._stage[release],
                    "reason": printable(data.get("reason")),
                }
            )

    def _access(self, kind: K, at: datetime, during: bool, data: Mapping[str, Any]) -> None:
        if kind is K.APPLICATION_SUBMITTED:
            tier = str(data.get("tier") or "")
            self._submitted.setdefault(str(data.get("application")), (at, tier))
            if during:
                self.received.add(tier=tier)
        elif kind in _DECISIONS:
            application = str(data.get("application"))
            if not during or application in self._decided:
                return
            self._decided.add(application)
            outcome, tier = _DECISIONS[kind], str(data.get("tier") or "")
            self.decisions.value += 1
            self.decisions.part("outcome", outcome).add(tier=tier)
            if kind is K.APPLICATION_DENIED:
                reason = normalised_reason(data.get("reason"))
                self.denial_reasons[reason] = self.denial_reasons.get(reason, 0) + 1
            submitted = self._submitted.get(application)
            if kind in _REVIEWED and submitted is not None:
                self.review_seconds.append(max(0, int((at - submitted[0]).total_seconds())))
        elif kind in _GRANT_STATUS:
            grant = str(data.get("grant"))
            if kind is K.GRANT_ISSUED:
                self._grants[grant] = (str(data.get("tier") or ""), _GRANT_STATUS[kind])
            elif grant in self._grants:
                self._grants[grant] = (self._grants[grant][0], _GRANT_STATUS[kind])

    def _incident(self, kind: K, at: datetime, during: bool, data: Mapping[str, Any]) -> None:
        incident = str(data.get("incident"))
        if kind is K.INCIDENT_REPORTED:
            if during:
                self._incidents[incident] = _Incident(str(data.get("category") or ""), at)
            return
        found = self._incidents.get(incident)
        if found is None or kind not in _INCIDENT_MOVES:
            return
        found.status = str(data.get("to") or found.status)
        if data.get("severity"):
            found.severity = str(data["severity"])
        if found.triaged_at is None:
            found.triaged_at = at
        if kind in _INCIDENT_CLOSED and found.closed_at is None:
            found.closed_at = at

    # What the fold found, as counts with their breakdowns and durations.

    def active_grants(self) -> Count:
        active = Count()
        for tier, status in self._grants.values():
            if status == "active":
                active.add(tier=tier, organisation_type=UNCLASSIFIED)
        return active

    def denials_by_reason(self, min_count: int) -> dict[str, int]:
        """Denials by reason; reasons fewer than `min_count` denials share are together."""
        grouped: dict[str, int] = {}
        for reason, n in self.denial_reasons.items():
            label = reason if n >= min_count else OTHER_REASONS
            grouped[label] = grouped.get(label, 0) + n
        return grouped

    def incidents(self) -> Count:
        reported = Count()
        for found in self._incidents.values():
            reported.add(
                category=found.category,
                severity=found.severity or NOT_ASSESSED,
                status=found.status,
            )
        return reported

    def appeals_by_outcome(self) -> Count:
        submitted = Count()
        for outcome in self.appeals.values():
            submitted.add(outcome=outcome)
        return submitted

    def triage_seconds(self) -> list[int]:
        return [
            int((f.triaged_at - f.reported_at).total_seconds())
            for f in self._incidents.values()
            if f.triaged_at is not None
        ]

    def resolve_seconds(self) -> list[int]:
        return [
            int((f.closed_at - f.reported_at).total_seconds())
            for f in self._incidents.values()
            if f.closed_at is not None
        ]
