# Evaluating a promotion gate against the facts of a release.
#
# Rules:
# - Pure: the clock and every fact come in as arguments; datetimes are aware, in UTC.
# - The answer is a report of every gate the rules demand, each with its numbers, never
#   a bare bool. A gate whose rule demands nothing (a zero minimum, a severity with no
#   limit) is left out, so the report lists only what an operator has to care about;
#   approvals always appear, as the promotion always needs someone to approve it.
# - Gates appear in a fixed order: recall, time, downloads, API use, incidents (by severity),
#   evidence (in policy order), approvals. Which gates appear depends on the rules
#   alone, never on the facts.
# - More of a good fact (days, downloads, evidence, approvals) never un-meets a gate and
#   fewer incidents never do: evidence is met when ANY record matches, so a caller who
#   wants only the latest result per kind and name passes only that.
# - Days in the stage are whole days, counted down: 13 days and 23 hours is 13.
# - A flagged share over no requests at all is not met: a safety filter that saw nothing
#   says nothing.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from policies.schema import EvidenceRequirement, GateRules, ReinstateRules
from stages.incidents import Severity


@dataclass(frozen=True)
class EvidenceFact:
    """A recorded piece of evidence about the release, such as an evaluation's result."""

    kind: str
    name: str
    result: str


@dataclass(frozen=True)
class PromotionFacts:
    """What is known about a release in its current stage, for the gate of the next one.

    `open_incidents` counts the release's open incidents by severity (a severity left out
    is 0). `approvals` holds the ids of the distinct operators who approved this
    promotion, the one running it included.
    """

    stage_entered_at: datetime
    grantees_downloaded: int
    organisations_downloaded: int
    # Left out of the hash, as a mapping does not hash.
    open_incidents: Mapping[Severity, int] = field(hash=False)
    evidence: tuple[EvidenceFact, ...]
    approvals: frozenset[str]
    recall_in_force: bool
    # What inference services reported in this stage: requests served, distinct accounts
    # served, and requests their safety filter flagged.
    api_requests: int = 0
    api_users: int = 0
    api_flagged: int = 0


@dataclass(frozen=True)
class GateResult:
    """One gate: `name` is its policy key, `detail` the sentence a person reads."""

    name: str
    met: bool
    actual: str
    required: str
    detail: str


@dataclass(frozen=True)
class GateReport:
    """Every gate and whether it is met; `all_met` is true exactly when each one is."""

    gates: tuple[GateResult, ...]
    approvals_needed: int
    approvals_have: int
    all_met: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "all_met", all(gate.met for gate in self.gates))


def evaluate_gates(rules: GateRules | None, facts: PromotionFacts, now: datetime) -> GateReport:
    """The report of the gate `rules` (None: no gate, so nothing to meet) against `facts`."""
    if rules is None:
        return GateReport(gates=(), approvals_needed=0, approvals_have=len(facts.approvals))
    gates: list[GateResult] = []
    if rules.no_recall_in_force:
        gates.append(_recall_gate(facts.recall_in_force))
    if rules.min_days_in_stage:
        days = max(0, (now - facts.stage_entered_at) // timedelta(days=1))
        gates.append(_at_least("min_days_in_stage", "days in stage", days, rules.min_days_in_stage))
    if rules.min_grantees_downloaded:
        gates.append(
            _at_least(
                "min_grantees_downloaded",
                "grantees who downloaded",
                facts.grantees_downloaded,
                rules.min_grantees_downloaded,
            )
        )
    if rules.min_organisations_downloaded:
        gates.append(
            _at_least(
                "min_organisations_downloaded",
                "organisations that downloaded",
                facts.organisations_downloaded,
                rules.min_organisations_downloaded,
            )
        )
    if rules.min_api_requests:
        gates.append(
            _at_least(
                "min_api_requests",
                "API requests served",
                facts.api_requests,
                rules.min_api_requests,
            )
        )
    if rules.min_api_users:
        gates.append(
            _at_least("min_api_users", "API users served", facts.api_users, rules.min_api_users)
        )
    if rules.max_flagged_share is not None:
        gates.append(_flagged_gate(facts.api_flagged, facts.api_requests, rules.max_flagged_share))
    for severity in Severity:
        limit = rules.max_open_incidents.get(severity)
        if limit is not None:
            gates.append(_incident_gate(severity, facts.open_incidents.get(severity, 0), limit))
    for index, requirement in enumerate(rules.required_evidence):
        gates.append(_evidence_gate(index, requirement, facts.evidence))
    gates.append(approvals_gate(rules.approvals, facts.approvals))
    return GateReport(
        gates=tuple(gates),
        approvals_needed=rules.approvals,
        approvals_have=len(facts.approvals),
    )


def evaluate_reinstatement(rules: ReinstateRules, approvals: frozenset[str]) -> GateReport:
    """Whether enough distinct operators agree to lift a recall."""
    return GateReport(
        gates=(approvals_gate(rules.approvals, approvals),),
        approvals_needed=rules.approvals,
        approvals_have=len(approvals),
    )


def approvals_gate(needed: int, approvals: frozenset[str]) -> GateResult:
    """The gate of `needed` distinct operators, met by the ids in `approvals`."""
    return _at_least("approvals", "approvals", len(approvals), needed)


def unmet(report: GateReport) -> list[str]:
    """The sentences of the gates that are not met, in report order."""
    return [gate.detail for gate in report.gates if not gate.met]


def _at_least(name: str, what: str, actual: int, required: int) -> GateResult:
    return GateResult(
        name=name,
        met=actual >= required,
        actual=str(actual),
        required=str(required),
        detail=f"{what}: {actual} of {required}",
    )


def _recall_gate(recall_in_force: bool) -> GateResult:
    return GateResult(
        name="no_recall_in_force",
        met=not recall_in_force,
        actual="a recall" if recall_in_force else "none",
        required="none",
        detail="recall in force: yes, must be none" if recall_in_force else "recall in force: none",
    )


def _flagged_gate(flagged: int, requests: int, most: float) -> GateResult:
    required = f"at most {most:.2%}"
    if not requests:
        return GateResult(
            name="max_flagged_share",
            met=False,
            actual="no requests",
            required=required,
            detail=f"share of API requests flagged: no requests yet, {required}",
        )
    share = flagged / requests
    return GateResult(
        name="max_flagged_share",
        met=share <= most,
        actual=f"{share:.2%}",
        required=required,
        detail=f"share of API requests flagged: {share:.2%} ({flagged} of {requests}), {required}",
    )


def _incident_gate(severity: Severity, count: int, limit: int) -> GateResult:
    return GateResult(
        name=f"max_open_incidents.{severity}",
        met=count <= limit,
        actual=str(count),
        required=f"at most {limit}",
        detail=f"open {severity} incidents: {count}, at most {limit}",
    )


def _evidence_gate(
    index: int, requirement: EvidenceRequirement, evidence: tuple[EvidenceFact, ...]
) -> GateResult:
    label = f"{requirement.kind}/{requirement.name}"
    wanted = label if requirement.result is None else f"{label} = {requirement.result}"
    results = sorted(
        {
            fact.result
            for fact in evidence
            if (fact.kind, fact.name) == (requirement.kind, requirement.name)
        }
    )
    met = bool(results) and (requirement.result is None or requirement.result in results)
    if met:
        actual = requirement.result if requirement.result is not None else ", ".join(results)
        state = "present" if requirement.result is not None else f"present ({actual})"
    elif results:
        actual = ", ".join(results)
        state = f"missing (found {actual})"
    else:
        actual = "missing"
        state = "missing"
    return GateResult(
        name=f"required_evidence[{index}]",
        met=met,
        actual=actual,
        required=requirement.result if requirement.result is not None else "any result",
        detail=f"evidence {wanted}: {state}",
    )
