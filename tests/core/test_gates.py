"""Evaluating promotion gates: every gate met and unmet with its numbers, and properties."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    EvidenceFact,
    EvidenceRequirement,
    GateReport,
    GateResult,
    GateRules,
    PromotionFacts,
    ReinstateRules,
    approvals_gate,
    evaluate_gates,
    evaluate_reinstatement,
    unmet,
)
from stages.incidents import Severity

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RED_TEAM = EvidenceRequirement("evaluation", "red-team", "pass")
ANY_SAFETY = EvidenceRequirement("evaluation", "internal-safety", None)

# The shipped public gate, plus one evidence requirement that takes any result.
RULES = GateRules(
    min_days_in_stage=30,
    min_grantees_downloaded=10,
    min_organisations_downloaded=5,
    max_open_incidents=MappingProxyType(
        {Severity.MEDIUM: 2, Severity.HIGH: 0, Severity.CRITICAL: 0}
    ),
    required_evidence=(RED_TEAM, ANY_SAFETY),
    approvals=2,
    no_recall_in_force=True,
)
# Facts that meet every gate of RULES.
MET = PromotionFacts(
    stage_entered_at=NOW - 30 * DAY,
    grantees_downloaded=10,
    organisations_downloaded=5,
    open_incidents={Severity.LOW: 7, Severity.MEDIUM: 2},
    evidence=(
        EvidenceFact("evaluation", "red-team", "pass"),
        EvidenceFact("evaluation", "internal-safety", "conditional"),
    ),
    approvals=frozenset({"op-alice", "op-bob"}),
    recall_in_force=False,
)


def _gate(report: GateReport, name: str) -> GateResult:
    (gate,) = (gate for gate in report.gates if gate.name == name)
    return gate


def test_all_gates_met_with_their_numbers() -> None:
    report = evaluate_gates(RULES, MET, NOW)
    assert report.all_met
    assert (report.approvals_needed, report.approvals_have) == (2, 2)
    assert [(g.name, g.met, g.actual, g.required, g.detail) for g in report.gates] == [
        ("no_recall_in_force", True, "none", "none", "recall in force: none"),
        ("min_days_in_stage", True, "30", "30", "days in stage: 30 of 30"),
        ("min_grantees_downloaded", True, "10", "10", "grantees who downloaded: 10 of 10"),
        (
            "min_organisations_downloaded",
            True,
            "5",
            "5",
            "organisations that downloaded: 5 of 5",
        ),
        (
            "max_open_incidents.medium",
            True,
            "2",
            "at most 2",
            "open medium incidents: 2, at most 2",
        ),
        ("max_open_incidents.high", True, "0", "at most 0", "open high incidents: 0, at most 0"),
        (
            "max_open_incidents.critical",
            True,
            "0",
            "at most 0",
            "open critical incidents: 0, at most 0",
        ),
        (
            "required_evidence[0]",
            True,
            "pass",
            "pass",
            "evidence evaluation/red-team = pass: present",
        ),
        (
            "required_evidence[1]",
            True,
            "conditional",
            "any result",
            "evidence evaluation/internal-safety: present (conditional)",
        ),
        ("approvals", True, "2", "2", "approvals: 2 of 2"),
    ]
    assert unmet(report) == []


@pytest.mark.parametrize(
    ("change", "name", "actual", "detail"),
    [
        (
            {"recall_in_force": True},
            "no_recall_in_force",
            "a recall",
            "recall in force: yes, must be none",
        ),
        (
            {"stage_entered_at": NOW - 3 * DAY},
            "min_days_in_stage",
            "3",
            "days in stage: 3 of 30",
        ),
        # Whole days, counted down: a second short of 30 days is 29.
        (
            {"stage_entered_at": NOW - 30 * DAY + timedelta(seconds=1)},
            "min_days_in_stage",
            "29",
            "days in stage: 29 of 30",
        ),
        # A stage entered in the future (a skewed clock) counts as no days, never negative.
        ({"stage_entered_at": NOW + DAY}, "min_days_in_stage", "0", "days in stage: 0 of 30"),
        (
            {"grantees_downloaded": 1},
            "min_grantees_downloaded",
            "1",
            "grantees who downloaded: 1 of 10",
        ),
        (
            {"organisations_downloaded": 4},
            "min_organisations_downloaded",
            "4",
            "organisations that downloaded: 4 of 5",
        ),
        (
            {"open_incidents": {Severity.MEDIUM: 3}},
            "max_open_incidents.medium",
            "3",
            "open medium incidents: 3, at most 2",
        ),
        (
            {"open_incidents": {Severity.HIGH: 1}},
            "max_open_incidents.high",
            "1",
            "open high incidents: 1, at most 0",
        ),
        (
            {"open_incidents": {Severity.CRITICAL: 2}},
            "max_open_incidents.critical",
            "2",
            "open critical incidents: 2, at most 0",
        ),
        (
            {"evidence": (EvidenceFact("evaluation", "internal-safety", "pass"),)},
            "required_evidence[0]",
            "missing",
            "evidence evaluation/red-team = pass: missing",
        ),
        (
            {
                "evidence": (
                    EvidenceFact("evaluation", "red-team", "fail"),
                    EvidenceFact("evaluation", "red-team", "inconclusive"),
                    EvidenceFact("evaluation", "internal-safety", "pass"),
                )
            },
            "required_evidence[0]",
            "fail, inconclusive",
            "evidence evaluation/red-team = pass: missing (found fail, inconclusive)",
        ),
        (
            # The kind must match too, not only the name.
            {
                "evidence": (
                    EvidenceFact("evaluation", "red-team", "pass"),
                    EvidenceFact("audit", "internal-safety", "pass"),
                )
            },
            "required_evidence[1]",
            "missing",
            "evidence evaluation/internal-safety: missing",
        ),
        ({"approvals": frozenset({"op-alice"})}, "approvals", "1", "approvals: 1 of 2"),
        ({"approvals": frozenset()}, "approvals", "0", "approvals: 0 of 2"),
    ],
)
def test_each_gate_unmet_with_its_numbers(
    change: dict[str, object], name: str, actual: str, detail: str
) -> None:
    report = evaluate_gates(RULES, replace(MET, **change), NOW)  # type: ignore[arg-type]
    assert not report.all_met
    gate = _gate(report, name)
    assert (gate.met, gate.actual, gate.detail) == (False, actual, detail)
    assert unmet(report) == [detail]


def test_unmet_lists_every_failure_in_report_order() -> None:
    facts = replace(
        MET,
        stage_entered_at=NOW - 3 * DAY,
        grantees_downloaded=1,
        open_incidents={Severity.HIGH: 1},
        evidence=(),
        approvals=frozenset({"op-alice"}),
    )
    report = evaluate_gates(RULES, facts, NOW)
    assert unmet(report) == [
        "days in stage: 3 of 30",
        "grantees who downloaded: 1 of 10",
        "open high incidents: 1, at most 0",
        "evidence evaluation/red-team = pass: missing",
        "evidence evaluation/internal-safety: missing",
        "approvals: 1 of 2",
    ]
    assert (report.approvals_needed, report.approvals_have) == (2, 1)


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_an_incident_limit_is_inclusive(limit: int) -> None:
    rules = replace(RULES, max_open_incidents=MappingProxyType({Severity.LOW: limit}))
    at_limit = evaluate_gates(rules, replace(MET, open_incidents={Severity.LOW: limit}), NOW)
    assert _gate(at_limit, "max_open_incidents.low").met
    over = evaluate_gates(rules, replace(MET, open_incidents={Severity.LOW: limit + 1}), NOW)
    assert unmet(over) == [f"open low incidents: {limit + 1}, at most {limit}"]


def test_gates_that_demand_nothing_are_left_out() -> None:
    rules = GateRules(
        min_days_in_stage=0,
        min_grantees_downloaded=0,
        min_organisations_downloaded=0,
        max_open_incidents=MappingProxyType({}),
        required_evidence=(),
        approvals=1,
        no_recall_in_force=False,
    )
    # Even with a recall in force and incidents open, only the approvals gate is asked.
    facts = replace(MET, recall_in_force=True, open_incidents={Severity.CRITICAL: 9})
    report = evaluate_gates(rules, facts, NOW)
    assert [gate.name for gate in report.gates] == ["approvals"]
    assert report.all_met


def test_a_severity_without_limit_is_not_a_gate() -> None:
    report = evaluate_gates(RULES, replace(MET, open_incidents={Severity.LOW: 100}), NOW)
    assert "max_open_incidents.low" not in {gate.name for gate in report.gates}
    assert report.all_met


def test_no_gate_means_nothing_to_meet() -> None:
    facts = replace(MET, recall_in_force=True, approvals=frozenset({"op-alice"}))
    assert evaluate_gates(None, facts, NOW) == GateReport(
        gates=(), approvals_needed=0, approvals_have=1
    )
    assert evaluate_gates(None, facts, NOW).all_met


def test_one_approval_is_the_operator_who_runs_the_promotion() -> None:
    rules = replace(RULES, approvals=1)
    report = evaluate_gates(rules, replace(MET, approvals=frozenset({"op-alice"})), NOW)
    assert _gate(report, "approvals").detail == "approvals: 1 of 1"
    assert report.all_met


def test_reinstatement_counts_distinct_operators() -> None:
    rules = ReinstateRules(approvals=2)
    one = evaluate_reinstatement(rules, frozenset({"op-alice"}))
    assert (one.all_met, unmet(one)) == (False, ["approvals: 1 of 2"])
    two = evaluate_reinstatement(rules, frozenset({"op-alice", "op-bob"}))
    assert (two.all_met, two.approvals_needed, two.approvals_have) == (True, 2, 2)


def test_approvals_gate() -> None:
    assert approvals_gate(3, frozenset({"a", "b"})) == GateResult(
        name="approvals", met=False, actual="2", required="3", detail="approvals: 2 of 3"
    )


def test_all_met_cannot_be_set_by_hand() -> None:
    failing = GateResult("approvals", False, "0", "1", "approvals: 0 of 1")
    report = GateReport(gates=(failing,), approvals_needed=1, approvals_have=0)
    assert not report.all_met
    with pytest.raises(TypeError):
        GateReport(gates=(), approvals_needed=0, approvals_have=0, all_met=False)  # type: ignore[call-arg]


# Property tests: random rules and facts, and facts made better one way or another.

# Few labels, so that evidence and requirements match (and fail to) often.
KINDS = st.sampled_from(["evaluation", "audit"])
NAMES = st.sampled_from(["red-team", "internal-safety"])
RESULTS = st.sampled_from(["pass", "fail"])
EVIDENCE = st.builds(EvidenceFact, KINDS, NAMES, RESULTS)
SEVERITY_COUNTS = st.dictionaries(st.sampled_from(list(Severity)), st.integers(0, 5))
APPROVERS = st.frozensets(st.sampled_from(["op-a", "op-b", "op-c", "op-d"]))

RULES_ST = st.builds(
    GateRules,
    min_days_in_stage=st.integers(0, 60),
    min_grantees_downloaded=st.integers(0, 20),
    min_organisations_downloaded=st.integers(0, 10),
    max_open_incidents=SEVERITY_COUNTS.map(MappingProxyType),
    required_evidence=st.lists(
        st.builds(EvidenceRequirement, KINDS, NAMES, st.none() | RESULTS), unique=True, max_size=4
    ).map(tuple),
    approvals=st.integers(1, 4),
    no_recall_in_force=st.booleans(),
)
FACTS_ST = st.builds(
    PromotionFacts,
    stage_entered_at=st.timedeltas(min_value=-5 * DAY, max_value=90 * DAY).map(
        lambda ago: NOW - ago
    ),
    grantees_downloaded=st.integers(0, 25),
    organisations_downloaded=st.integers(0, 12),
    open_incidents=SEVERITY_COUNTS,
    evidence=st.lists(EVIDENCE, max_size=5).map(tuple),
    approvals=APPROVERS,
    recall_in_force=st.booleans(),
)


@st.composite
def better_facts(draw: st.DrawFn, facts: PromotionFacts) -> PromotionFacts:
    """`facts` with more time, downloads, evidence and approvals, fewer incidents and recalls."""
    return replace(
        facts,
        stage_entered_at=facts.stage_entered_at - draw(st.timedeltas(timedelta(0), 40 * DAY)),
        grantees_downloaded=facts.grantees_downloaded + draw(st.integers(0, 10)),
        organisations_downloaded=facts.organisations_downloaded + draw(st.integers(0, 5)),
        open_incidents={
            severity: count - draw(st.integers(0, count))
            for severity, count in facts.open_incidents.items()
        },
        evidence=facts.evidence + tuple(draw(st.lists(EVIDENCE, max_size=4))),
        approvals=facts.approvals | draw(APPROVERS),
        recall_in_force=facts.recall_in_force and draw(st.booleans()),
    )


@given(rules=RULES_ST, facts=FACTS_ST)
def test_all_met_iff_every_gate_met(rules: GateRules, facts: PromotionFacts) -> None:
    report = evaluate_gates(rules, facts, NOW)
    assert report.all_met == all(gate.met for gate in report.gates)
    assert report.all_met == (unmet(report) == [])
    assert len(unmet(report)) == sum(not gate.met for gate in report.gates)
    assert report.approvals_needed == rules.approvals
    assert report.approvals_have == len(facts.approvals)
    assert report.gates[-1].name == "approvals"


@given(rules=RULES_ST, facts=FACTS_ST, other=FACTS_ST)
def test_which_gates_appear_depends_on_the_rules_alone(
    rules: GateRules, facts: PromotionFacts, other: PromotionFacts
) -> None:
    names = [gate.name for gate in evaluate_gates(rules, facts, NOW).gates]
    assert names == [gate.name for gate in evaluate_gates(rules, other, NOW).gates]
    assert len(names) == len(set(names))


@given(data=st.data(), rules=RULES_ST, facts=FACTS_ST)
def test_better_facts_never_unmeet_a_gate(
    data: st.DataObject, rules: GateRules, facts: PromotionFacts
) -> None:
    better = data.draw(better_facts(facts))
    before = evaluate_gates(rules, facts, NOW)
    after = evaluate_gates(rules, better, NOW)
    for old, new in zip(before.gates, after.gates, strict=True):
        assert old.name == new.name
        assert new.met or not old.met, (old, new)
    assert after.all_met or not before.all_met


@given(rules=RULES_ST, facts=FACTS_ST, extra=st.lists(EVIDENCE, min_size=1, max_size=5))
def test_more_evidence_never_unmeets_a_gate(
    rules: GateRules, facts: PromotionFacts, extra: list[EvidenceFact]
) -> None:
    before = evaluate_gates(rules, facts, NOW)
    after = evaluate_gates(rules, replace(facts, evidence=facts.evidence + tuple(extra)), NOW)
    for old, new in zip(before.gates, after.gates, strict=True):
        assert new.met or not old.met


@given(rules=RULES_ST, facts=FACTS_ST, later=st.timedeltas(timedelta(0), 100 * DAY))
def test_waiting_never_unmeets_a_gate(
    rules: GateRules, facts: PromotionFacts, later: timedelta
) -> None:
    before = evaluate_gates(rules, facts, NOW)
    after = evaluate_gates(rules, facts, NOW + later)
    for old, new in zip(before.gates, after.gates, strict=True):
        assert new.met or not old.met
