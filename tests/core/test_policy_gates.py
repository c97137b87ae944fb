"""Loading promotion gates and the reinstatement rule: shipped values and every refusal."""

from importlib import resources
from types import MappingProxyType

import pytest

from policies import EvidenceRequirement, GateRules, ReinstateRules, load_policy
from stages.incidents import Severity
from stages.tiers import UnknownTier
from tests.core.policy_text import BASE, edited, problems_of

LABEL = 'a lower-case label such as "red-team" ([a-z0-9][a-z0-9._-]*)'
FIRST_TIER = (
    "expected 0 in the gate of the first tier (nothing can be downloaded before the "
    "first tier opens)"
)
NO_GATE_DEMANDS = GateRules(
    min_days_in_stage=0,
    min_grantees_downloaded=0,
    min_organisations_downloaded=0,
    max_open_incidents=MappingProxyType({}),
    required_evidence=(),
    approvals=1,
    no_recall_in_force=True,
)


def shipped_text() -> str:
    return resources.files("policies").joinpath("default.toml").read_text()


def test_shipped_gates() -> None:
    policy = load_policy(shipped_text(), "default.toml")
    assert list(policy.gates) == ["api_preview", "trusted_partner", "researcher", "public"]
    assert policy.gates["api_preview"] == GateRules(
        min_days_in_stage=0,
        min_grantees_downloaded=0,
        min_organisations_downloaded=0,
        max_open_incidents={},
        required_evidence=(EvidenceRequirement("evaluation", "internal-safety", "pass"),),
        approvals=1,
        no_recall_in_force=True,
    )
    # The weights open to partners only after the API preview served real use.
    assert policy.gates["trusted_partner"] == GateRules(
        min_days_in_stage=7,
        min_grantees_downloaded=0,
        min_organisations_downloaded=0,
        max_open_incidents={Severity.HIGH: 0, Severity.CRITICAL: 0},
        required_evidence=(),
        approvals=1,
        no_recall_in_force=True,
        min_api_requests=1000,
        min_api_users=5,
        max_flagged_share=0.01,
    )
    assert policy.gates["researcher"] == GateRules(
        min_days_in_stage=14,
        min_grantees_downloaded=3,
        min_organisations_downloaded=2,
        max_open_incidents={Severity.MEDIUM: 2, Severity.HIGH: 0, Severity.CRITICAL: 0},
        required_evidence=(),
        approvals=2,
        no_recall_in_force=True,
    )
    assert policy.gates["public"] == GateRules(
        min_days_in_stage=30,
        min_grantees_downloaded=10,
        min_organisations_downloaded=5,
        max_open_incidents={Severity.MEDIUM: 0, Severity.HIGH: 0, Severity.CRITICAL: 0},
        required_evidence=(EvidenceRequirement("evaluation", "red-team", "pass"),),
        approvals=2,
        no_recall_in_force=True,
    )
    assert policy.reinstate == ReinstateRules(approvals=2)


def test_base_gates_and_their_defaults() -> None:
    policy = load_policy(BASE, "site.toml")
    # Keys left out demand nothing; no_recall_in_force alone defaults to true.
    assert policy.gates["partner"] == GateRules(
        min_days_in_stage=2,
        min_grantees_downloaded=0,
        min_organisations_downloaded=0,
        max_open_incidents={},
        required_evidence=(EvidenceRequirement("evaluation", "safety-check", "pass"),),
        approvals=1,
        no_recall_in_force=True,
    )
    everyone = policy.gates["everyone"]
    assert everyone.required_evidence == (EvidenceRequirement("evaluation", "red-team", None),)
    assert everyone.max_open_incidents == {Severity.HIGH: 0, Severity.CRITICAL: 1}
    assert (everyone.approvals, everyone.no_recall_in_force) == (2, False)
    assert policy.reinstate == ReinstateRules(approvals=3)


def test_gate_tables_are_read_only_and_policies_still_hash() -> None:
    policy = load_policy(BASE, "site.toml")
    with pytest.raises(TypeError):
        policy.gates["everyone"] = NO_GATE_DEMANDS  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.gates["everyone"].max_open_incidents[Severity.LOW] = 9  # type: ignore[index]
    assert hash(policy) == hash(load_policy(BASE, "site.toml"))


def test_incident_limits_are_kept_in_order_of_severity() -> None:
    text = edited(
        "max_open_incidents = { high = 0, critical = 1 }",
        "max_open_incidents = { critical = 0, low = 5, high = 1 }",
    )
    limits = load_policy(text, "site.toml").gates["everyone"].max_open_incidents
    assert list(limits.items()) == [(Severity.LOW, 5), (Severity.HIGH, 1), (Severity.CRITICAL, 0)]


def test_gates_are_optional_per_tier_and_altogether() -> None:
    no_partner_gate = BASE.replace(
        '[gates.partner]\nmin_days_in_stage = 2\nrequired_evidence = [{ kind = "evaluation", '
        'name = "safety-check", result = "pass" }]\n',
        "",
    )
    assert no_partner_gate != BASE
    policy = load_policy(no_partner_gate, "site.toml")
    assert list(policy.gates) == ["everyone"]
    assert policy.gate_rules("partner") is None

    start, end = BASE.index("[gates.partner]"), BASE.index("[reinstate]")
    assert load_policy(BASE[:start] + BASE[end:], "site.toml").gates == {}


def test_an_empty_gate_table_demands_nothing_but_no_recall() -> None:
    text = BASE.replace("[gates.partner]\nmin_days_in_stage = 2\n", "[gates.partner]\n").replace(
        'required_evidence = [{ kind = "evaluation", name = "safety-check", result = "pass" }]\n',
        "",
    )
    assert load_policy(text, "site.toml").gates["partner"] == NO_GATE_DEMANDS


def test_gate_rules_by_tier() -> None:
    policy = load_policy(BASE, "site.toml")
    assert policy.gate_rules("everyone") is policy.gates["everyone"]
    with pytest.raises(UnknownTier, match="known tiers: partner, everyone"):
        policy.gate_rules("public")


def test_gates_follow_the_ladder_order_not_the_file_order() -> None:
    start, end = BASE.index("[gates.partner]"), BASE.index("[gates.everyone]")
    partner_gate = BASE[start:end]
    moved = BASE[:start] + BASE[end:].replace("[reinstate]", partner_gate + "[reinstate]")
    assert moved.index("[gates.everyone]") < moved.index("[gates.partner]")
    assert list(load_policy(moved, "site.toml").gates) == ["partner", "everyone"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "min_days_in_stage = 10",
            "min_days_in_stage = -1",
            "gates.everyone.min_days_in_stage: expected a non-negative integer, got -1",
        ),
        (
            "min_days_in_stage = 2",
            'min_days_in_stage = "2"',
            'gates.partner.min_days_in_stage: expected a non-negative integer, got "2"',
        ),
        (
            "min_grantees_downloaded = 4",
            "min_grantees_downloaded = true",
            "gates.everyone.min_grantees_downloaded: expected a non-negative integer, got true",
        ),
        (
            "min_organisations_downloaded = 3",
            "min_organisations_downloaded = 2.5",
            "gates.everyone.min_organisations_downloaded: expected a non-negative integer, got 2.5",
        ),
        (
            "min_days_in_stage = 2",
            "min_days_in_stage = 2\nmin_grantees_downloaded = 1",
            f"gates.partner.min_grantees_downloaded: {FIRST_TIER}, got 1",
        ),
        (
            "min_days_in_stage = 2",
            "min_days_in_stage = 2\nmin_organisations_downloaded = 1",
            f"gates.partner.min_organisations_downloaded: {FIRST_TIER}, got 1",
        ),
        (
            "max_open_incidents = { high = 0, critical = 1 }",
            "max_open_incidents = 0",
            "gates.everyone.max_open_incidents: expected a table of severity = most open "
            "incidents allowed, got 0",
        ),
        (
            "max_open_incidents = { high = 0, critical = 1 }",
            "max_open_incidents = { severe = 0 }",
            "gates.everyone.max_open_incidents.severe: unknown key; allowed keys: low, medium, "
            "high, critical",
        ),
        (
            "max_open_incidents = { high = 0, critical = 1 }",
            "max_open_incidents = { high = -1 }",
            "gates.everyone.max_open_incidents.high: expected a non-negative integer, got -1",
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = { kind = "evaluation", name = "red-team" }',
            "gates.everyone.required_evidence: expected an array of tables {kind, name, result}, "
            "got a table",
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = ["red-team"]',
            "gates.everyone.required_evidence[0]: expected a table {kind, name, result}, "
            'got "red-team"',
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "evaluation" }]',
            f"gates.everyone.required_evidence[0].name: missing; expected {LABEL}",
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ name = "red-team" }]',
            f"gates.everyone.required_evidence[0].kind: missing; expected {LABEL}",
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "Evaluation", name = "red-team" }]',
            f'gates.everyone.required_evidence[0].kind: expected {LABEL}, got "Evaluation"',
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "evaluation", name = "red team" }]',
            f'gates.everyone.required_evidence[0].name: expected {LABEL}, got "red team"',
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "evaluation", name = "red-team", result = "" }]',
            f'gates.everyone.required_evidence[0].result: expected {LABEL}, got ""',
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "evaluation", name = "red-team", score = 3 }]',
            "gates.everyone.required_evidence[0].score: unknown key; allowed keys: kind, name, "
            "result",
        ),
        (
            'required_evidence = [{ kind = "evaluation", name = "red-team" }]',
            'required_evidence = [{ kind = "evaluation", name = "red-team" }, '
            '{ kind = "evaluation", name = "red-team" }]',
            "gates.everyone.required_evidence[1]: expected no repeats, got the same evidence as "
            "required_evidence[0]",
        ),
        (
            "approvals = 2",
            "approvals = 0",
            "gates.everyone.approvals: expected a positive integer, got 0",
        ),
        (
            "no_recall_in_force = false",
            'no_recall_in_force = "no"',
            'gates.everyone.no_recall_in_force: expected true or false, got "no"',
        ),
        (
            "no_recall_in_force = false",
            "no_recall = false",
            "gates.everyone.no_recall: unknown key; allowed keys: min_days_in_stage, "
            "min_grantees_downloaded, min_organisations_downloaded, max_open_incidents, "
            "required_evidence, approvals, no_recall_in_force, "
            "min_api_requests, min_api_users, max_flagged_share",
        ),
        (
            "[gates.partner]",
            "[gates.partners]",
            "gates.partners: expected a tier of the ladder (partner, everyone)",
        ),
        (
            "approvals = 3",
            "approvals = 0",
            "reinstate.approvals: expected a positive integer, got 0",
        ),
        ("approvals = 3", "", "reinstate.approvals: missing; expected a positive integer"),
        (
            "approvals = 3",
            "approvals = 3\nquorum = 2",
            "reinstate.quorum: unknown key; allowed keys: approvals",
        ),
        ("[reinstate]\napprovals = 3\n", "", "reinstate: missing; expected a table {approvals}"),
    ],
)
def test_bad_gate_field_is_reported_with_its_dotted_path(old: str, new: str, problem: str) -> None:
    assert problems_of(edited(old, new)) == [problem]


@pytest.mark.parametrize(
    ("cut", "top", "problem"),
    [
        (
            ("[gates.partner]", "[reinstate]"),
            "gates = 3",
            "gates: expected a table of gates by tier, got 3",
        ),
        (
            ("[gates.partner]", "[reinstate]"),
            "[gates]\neveryone = 3",
            "gates.everyone: expected a table, got 3",
        ),
        (
            ("[reinstate]", "[[triggers]]"),
            "reinstate = 3",
            "reinstate: expected a table {approvals}, got 3",
        ),
    ],
)
def test_bad_gates_or_reinstate_table(cut: tuple[str, str], top: str, problem: str) -> None:
    start, end = BASE.index(cut[0]), BASE.index(cut[1])
    # Top-level keys go before the first table, where TOML keeps them top-level.
    text = (BASE[:start] + BASE[end:]).replace(
        "schema_version = 1\n", f"schema_version = 1\n{top}\n"
    )
    assert problems_of(text) == [problem]


def test_every_gate_problem_is_reported_together() -> None:
    text = edited("approvals = 2", "approvals = 0").replace(
        "min_days_in_stage = 2", "min_days_in_stage = -2"
    )
    assert problems_of(text) == [
        "gates.partner.min_days_in_stage: expected a non-negative integer, got -2",
        "gates.everyone.approvals: expected a positive integer, got 0",
    ]
