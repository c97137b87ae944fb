"""Loading triggers, the decommission notice, the enforcement ladder and the reporting
deadlines, and every refusal."""

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from policies import (
    DecommissionRules,
    EnforcementRules,
    Reaction,
    Trigger,
    TriggerEvent,
    load_policy,
)
from stages.enforcement import EnforcementStep
from stages.incidents import Severity
from tests.core.policy_text import BASE, edited, problems_of

WARN, SUSPEND, TERMINATE = EnforcementStep
CONFIRMED = TriggerEvent.INCIDENT_CONFIRMED
SEVERITIES = 'one of "low", "medium", "high", "critical"'
STEPS = 'one of "warn", "suspend", "terminate"'
TIERS = "a tier of the ladder (partner, everyone)"


def shipped_text() -> str:
    return resources.files("policies").joinpath("default.toml").read_text()


def test_shipped_responses() -> None:
    policy = load_policy(shipped_text(), "default.toml")
    assert policy.triggers == (
        Trigger(CONFIRMED, Severity.CRITICAL, Reaction.RECALL, None),
        Trigger(CONFIRMED, Severity.HIGH, Reaction.RECALL_TIER, "public"),
    )
    assert policy.decommission == DecommissionRules(reminder_days=(30, 7), retention_days=90)
    assert policy.enforcement == EnforcementRules(
        ladder=(WARN, SUSPEND, TERMINATE),
        suspend_days=30,
        appeal_days=30,
        by_severity={Severity.HIGH: SUSPEND, Severity.CRITICAL: TERMINATE},
    )


def test_base_responses() -> None:
    policy = load_policy(BASE, "site.toml")
    assert policy.triggers == (
        Trigger(CONFIRMED, Severity.CRITICAL, Reaction.RECALL, None),
        Trigger(CONFIRMED, Severity.HIGH, Reaction.RECALL_TIER, "everyone"),
        Trigger(CONFIRMED, Severity.MEDIUM, Reaction.SUSPEND_ACCOUNTS, None),
    )
    # The earliest reminder first, whatever order the file lists them in.
    assert policy.decommission == DecommissionRules(reminder_days=(60, 14, 3), retention_days=45)
    enforcement = policy.enforcement
    assert (enforcement.suspend_days, enforcement.appeal_days) == (21, 15)
    assert list(enforcement.by_severity.items()) == [
        (Severity.MEDIUM, WARN),
        (Severity.HIGH, SUSPEND),
        (Severity.CRITICAL, TERMINATE),
    ]
    with pytest.raises(TypeError):
        enforcement.by_severity[Severity.LOW] = WARN  # type: ignore[index]


def _without(start: str, end: str) -> str:
    return BASE[: BASE.index(start)] + BASE[BASE.index(end) :]


def test_triggers_may_be_left_out() -> None:
    assert load_policy(_without("[[triggers]]", "[decommission]"), "site.toml").triggers == ()


def test_by_severity_may_be_left_out() -> None:
    text = _without("[enforcement.by_severity]", "[publish]")
    assert load_policy(text, "site.toml").enforcement.by_severity == {}


@pytest.mark.parametrize(
    ("ladder", "steps"),
    [
        ('["terminate"]', (TERMINATE,)),
        ('["suspend", "terminate"]', (SUSPEND, TERMINATE)),
        ('["warn", "terminate"]', (WARN, TERMINATE)),
    ],
)
def test_shorter_ladders(ladder: str, steps: tuple[EnforcementStep, ...]) -> None:
    text = _without("[enforcement.by_severity]", "[publish]").replace(
        'ladder = ["warn", "suspend", "terminate"]', f"ladder = {ladder}"
    )
    assert load_policy(text, "site.toml").enforcement.ladder == steps


def test_empty_reminders_and_zero_retention_are_allowed() -> None:
    text = edited("reminder_days = [14, 60, 3]", "reminder_days = []").replace(
        "retention_days = 45", "retention_days = 0"
    )
    assert load_policy(text, "site.toml").decommission == DecommissionRules((), 0)


def test_a_tier_recall_of_the_first_tier_is_allowed() -> None:
    text = edited('tier = "everyone"', 'tier = "partner"')
    assert load_policy(text, "site.toml").triggers[1].tier == "partner"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'min_severity = "critical"',
            'min_severity = "severe"',
            f'triggers[0].min_severity: expected {SEVERITIES}, got "severe"',
        ),
        (
            'min_severity = "critical"',
            "",
            f"triggers[0].min_severity: missing; expected {SEVERITIES}",
        ),
        (
            'on = "incident_confirmed"\nmin_severity = "medium"',
            'on = "incident_reported"\nmin_severity = "medium"',
            'triggers[2].on: expected one of "incident_confirmed", got "incident_reported"',
        ),
        (
            'on = "incident_confirmed"\nmin_severity = "medium"',
            'min_severity = "medium"',
            'triggers[2].on: missing; expected one of "incident_confirmed"',
        ),
        (
            'action = "recall"\n',
            'action = "burn"\n',
            'triggers[0].action: expected one of "recall", "recall_tier", "suspend_accounts", '
            'got "burn"',
        ),
        (
            'action = "recall"\n',
            'action = "recall"\ntier = "everyone"\n',
            'triggers[0].tier: expected no tier for action "recall" (only "recall_tier" names '
            'one), got "everyone"',
        ),
        (
            'action = "suspend_accounts"',
            'action = "suspend_accounts"\ntier = "partner"',
            'triggers[2].tier: expected no tier for action "suspend_accounts" (only '
            '"recall_tier" names one), got "partner"',
        ),
        (
            'tier = "everyone"\n',
            "",
            f'triggers[1].tier: missing; expected {TIERS} for action "recall_tier"',
        ),
        (
            'tier = "everyone"\n',
            'tier = "everybody"\n',
            f'triggers[1].tier: expected {TIERS} for action "recall_tier", got "everybody"',
        ),
        (
            'tier = "everyone"\n',
            "tier = 3\n",
            f'triggers[1].tier: expected {TIERS} for action "recall_tier", got 3',
        ),
        (
            'action = "suspend_accounts"',
            'action = "suspend_accounts"\nwhen = "now"',
            "triggers[2].when: unknown key; allowed keys: on, min_severity, action, tier",
        ),
        (
            'min_severity = "medium"\naction = "suspend_accounts"',
            'min_severity = "critical"\naction = "recall"',
            "triggers[2]: expected no repeats, got the same trigger as triggers[0]",
        ),
        (
            "reminder_days = [14, 60, 3]",
            "reminder_days = 14",
            "decommission.reminder_days: expected an array of distinct positive integers (days "
            "before the decommission date), got 14",
        ),
        (
            "reminder_days = [14, 60, 3]",
            "reminder_days = [14, 14]",
            "decommission.reminder_days[1]: expected no repeats, got 14 again",
        ),
        (
            "reminder_days = [14, 60, 3]",
            "reminder_days = [0]",
            "decommission.reminder_days[0]: expected a positive integer, got 0",
        ),
        (
            "reminder_days = [14, 60, 3]",
            "",
            "decommission.reminder_days: missing; expected an array of distinct positive "
            "integers (days before the decommission date)",
        ),
        (
            "retention_days = 45",
            "retention_days = -1",
            "decommission.retention_days: expected a non-negative integer, got -1",
        ),
        (
            "retention_days = 45",
            "",
            "decommission.retention_days: missing; expected a non-negative integer",
        ),
        (
            "retention_days = 45",
            "retention_days = 45\npurge = true",
            "decommission.purge: unknown key; allowed keys: reminder_days, retention_days",
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            "ladder = []",
            f"enforcement.ladder: expected a non-empty array of steps, each {STEPS}, mildest "
            "first, got an empty array",
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            'ladder = "warn"',
            f"enforcement.ladder: expected a non-empty array of steps, each {STEPS}, mildest "
            'first, got "warn"',
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            'ladder = ["warn", "ban"]',
            f'enforcement.ladder[1]: expected {STEPS}, got "ban"',
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            'ladder = ["suspend", "warn", "terminate"]',
            'enforcement.ladder[1]: expected a step graver than "suspend" (the ladder '
            'escalates: warn, suspend, terminate), got "warn"',
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            'ladder = ["warn", "warn", "terminate"]',
            'enforcement.ladder[1]: expected a step graver than "warn" (the ladder escalates: '
            'warn, suspend, terminate), got "warn"',
        ),
        (
            'ladder = ["warn", "suspend", "terminate"]',
            'ladder = ["warn", "suspend"]',
            "enforcement.by_severity.critical: expected a step on the ladder (warn, suspend), "
            'got "terminate"',
        ),
        (
            "suspend_days = 21",
            "suspend_days = 0",
            "enforcement.suspend_days: expected a positive integer, got 0",
        ),
        ("suspend_days = 21", "", "enforcement.suspend_days: missing; expected a positive integer"),
        (
            "appeal_days = 15",
            "appeal_days = 0",
            "enforcement.appeal_days: expected a positive integer, got 0",
        ),
        ("appeal_days = 15", "", "enforcement.appeal_days: missing; expected a positive integer"),
        (
            "appeal_days = 15",
            "appeal_days = 15\nwarn_days = 3",
            "enforcement.warn_days: unknown key; allowed keys: ladder, suspend_days, appeal_days, "
            "by_severity",
        ),
        (
            'critical = "terminate"',
            'critical = "ban"',
            "enforcement.by_severity.critical: expected a step on the ladder (warn, suspend, "
            'terminate), got "ban"',
        ),
        (
            'critical = "terminate"',
            'critical = "warn"',
            "enforcement.by_severity.critical: expected a step at least as grave as "
            'by_severity.high\'s ("suspend"): a graver incident never calls for a milder step, '
            'got "warn"',
        ),
        (
            'critical = "terminate"',
            'severe = "terminate"',
            "enforcement.by_severity.severe: unknown key; allowed keys: low, medium, high, "
            "critical",
        ),
        (
            "[enforcement.by_severity]",
            "[enforcement.by_severit]",
            "enforcement.by_severit: unknown key; allowed keys: ladder, suspend_days, "
            "appeal_days, by_severity",
        ),
    ],
)
def test_bad_response_field_is_reported_with_its_dotted_path(
    old: str, new: str, problem: str
) -> None:
    assert problems_of(edited(old, new)) == [problem]


@pytest.mark.parametrize(
    ("cut", "top", "problem"),
    [
        (
            ("[[triggers]]", "[decommission]"),
            "triggers = 3",
            "triggers: expected an array of tables {on, min_severity, action}, got 3",
        ),
        (
            ("[[triggers]]", "[decommission]"),
            'triggers = ["recall"]',
            'triggers[0]: expected a table {on, min_severity, action}, got "recall"',
        ),
        (
            ("[decommission]", "[enforcement]"),
            "",
            "decommission: missing; expected a table {reminder_days, retention_days}",
        ),
        (
            ("[enforcement]", "[publish]"),
            "",
            "enforcement: missing; expected a table {ladder, suspend_days, appeal_days, "
            "by_severity}",
        ),
        (
            ("[enforcement]", "[publish]"),
            'enforcement = "strict"',
            "enforcement: expected a table {ladder, suspend_days, appeal_days, by_severity}, "
            'got "strict"',
        ),
    ],
)
def test_bad_response_table(cut: tuple[str, str], top: str, problem: str) -> None:
    # Top-level keys go before the first table, where TOML keeps them top-level.
    text = _without(*cut).replace("schema_version = 1\n", f"schema_version = 1\n{top}\n")
    assert problems_of(text) == [problem]


def test_a_milder_step_is_reported_against_the_nearest_graver_lesser_severity() -> None:
    text = edited('medium = "warn"', 'low = "terminate"\nmedium = "warn"')
    assert problems_of(text) == [
        f"enforcement.by_severity.{severity}: expected a step at least as grave as "
        'by_severity.low\'s ("terminate"): a graver incident never calls for a milder step, '
        f'got "{step}"'
        for severity, step in (("medium", "warn"), ("high", "suspend"))
    ]


REPORTING = """
[reporting]
authority = "the AI Office"
deadline_days = { medium = 15, high = 10, critical = 2 }
remind_days = 1
"""


def with_reporting(table: str) -> str:
    return BASE.replace("[decommission]", f"{table}\n[decommission]", 1)


def test_the_shipped_reporting_deadlines_follow_article_73() -> None:
    rules = load_policy(shipped_text(), "default.toml").reporting
    assert dict(rules.deadline_days) == {
        Severity.MEDIUM: 15,
        Severity.HIGH: 10,
        Severity.CRITICAL: 2,
    }
    assert (rules.authority, rules.remind_days) == ("the market surveillance authority", 1)
    since = datetime(2030, 1, 1, tzinfo=UTC)
    assert rules.deadline("critical", since) == since + timedelta(days=2)
    assert rules.deadline("low", since) is None
    assert rules.deadline(None, since) is None


def test_without_a_reporting_table_no_incident_has_a_deadline() -> None:
    rules = load_policy(BASE, "site.toml").reporting
    assert dict(rules.deadline_days) == {}
    assert load_policy(with_reporting(REPORTING), "site.toml").reporting.authority == (
        "the AI Office"
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "medium = 15, high = 10",
            "medium = 5, high = 10",
            "reporting.deadline_days.high: expected at most deadline_days.medium's 5 days: "
            "a graver incident is never given longer to report, got 10",
        ),
        (
            "critical = 2",
            "critical = 0",
            "reporting.deadline_days.critical: expected a positive integer, got 0",
        ),
        (
            "critical = 2",
            "severe = 2",
            "reporting.deadline_days.severe: unknown key; allowed keys: low, medium, high, "
            "critical",
        ),
        (
            "remind_days = 1",
            "remind_days = 2",
            "reporting.remind_days: expected fewer days than the shortest deadline (2), got 2",
        ),
        ('"the AI Office"', '""', 'reporting.authority: expected a name, got ""'),
        (
            "remind_days = 1",
            "remind_days = 1\nclock = 3",
            "reporting.clock: unknown key; allowed keys: authority, deadline_days, remind_days",
        ),
    ],
)
def test_bad_reporting_deadlines_are_refused(old: str, new: str, problem: str) -> None:
    assert problems_of(with_reporting(REPORTING.replace(old, new))) == [problem]


def test_trusted_reporters_by_address_and_by_domain() -> None:
    text = with_reporting(
        '[quarantine]\ntrusted_reporters = ["CSIRT@partner.example", "@institute.example"]\n'
        "reports = 3\n"
    )
    rules = load_policy(text, "site.toml").quarantine
    assert rules.reports == 3
    assert rules.trusts("csirt@partner.example")
    assert rules.trusts("Anyone@Institute.example")
    assert not rules.trusts("other@partner.example")
    assert not rules.trusts("x@sub.institute.example")
    assert load_policy(BASE, "site.toml").quarantine.trusted_reporters == ()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            'trusted_reporters = ["not an address"]',
            'quarantine.trusted_reporters[0]: expected emails or "@domain" entries, '
            'got "not an address"',
        ),
        (
            "trusted_reporters = [3]",
            'quarantine.trusted_reporters[0]: expected emails or "@domain" entries, got 3',
        ),
        ("reports = 0", "quarantine.reports: expected a positive integer, got 0"),
        (
            "threshold = 2",
            "quarantine.threshold: unknown key; allowed keys: trusted_reporters, reports",
        ),
    ],
)
def test_bad_quarantine_rules_are_refused(table: str, problem: str) -> None:
    assert problems_of(with_reporting(f"[quarantine]\n{table}\n")) == [problem]
