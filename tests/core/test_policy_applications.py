"""Loading each tier's application rules and the grant lifecycle, and every refusal."""

import pytest

from policies import (
    ApplicationRules,
    Approval,
    FieldKind,
    FormField,
    LifecycleRules,
    load_policy,
)
from stages.tiers import UnknownTier
from tests.core.policy_text import BASE, edited, problems_of

APP = "tiers.partner.application"
FIELDS = f"{APP}.fields"
APPROVALS = '"on_acceptance", "email_domain", "manual"'
KINDS = '"text", "long_text", "select", "checkbox", "country"'
PATTERN = 'a domain pattern such as "uni.example" or "*.edu"'
PATTERNS = 'a non-empty array of domain patterns such as "uni.example" or "*.edu"'
OPTIONS = "a non-empty array of distinct non-empty strings for a select field"
LIFECYCLE_KEYS = "expiry_warning_days, renewal_opens_days, closeout_days"
EVERYONE_APPLICATION = """\
[tiers.everyone.application]
approval = "on_acceptance"
cooldown_days = 0
review_days = 3
response_days = 2
fields = []
"""


def test_base_application_rules_are_read() -> None:
    policy = load_policy(BASE, "site.toml")
    assert list(policy.applications) == ["partner", "everyone"]
    assert policy.application_rules("partner") == ApplicationRules(
        approval=Approval.EMAIL_DOMAIN,
        allowed_domains=("uni.example", "*.edu"),
        cooldown_days=14,
        review_days=5,
        response_days=21,
        fields=(
            FormField("affiliation", "Affiliation", FieldKind.TEXT, True, (), "", 200),
            FormField("country", "Country", FieldKind.COUNTRY, True, (), "Where you work.", 0),
            FormField("use", "Use", FieldKind.SELECT, False, ("research", "teaching"), "", 0),
            FormField("plan", "Plan", FieldKind.LONG_TEXT, False, (), "", 800),
        ),
    )
    assert policy.application_rules("everyone") == ApplicationRules(
        approval=Approval.ON_ACCEPTANCE,
        allowed_domains=(),
        cooldown_days=0,
        review_days=3,
        response_days=2,
        fields=(),
    )


def test_lifecycle_is_read_with_warnings_earliest_first() -> None:
    # The file says [7, 30]; the rules list the 30-day warning first, as it comes first.
    assert load_policy(BASE, "site.toml").lifecycle == LifecycleRules(
        expiry_warning_days=(30, 7), renewal_opens_days=14, closeout_days=10
    )


def test_application_rules_of_an_unknown_tier() -> None:
    policy = load_policy(BASE, "site.toml")
    with pytest.raises(UnknownTier, match="unknown tier 'public'; known tiers: partner, everyone"):
        policy.application_rules("public")


def test_applications_are_read_only_and_the_policy_still_hashes() -> None:
    policy = load_policy(BASE, "site.toml")
    with pytest.raises(TypeError):
        policy.applications["everyone"] = policy.applications["partner"]  # type: ignore[index]
    assert hash(policy) == hash(load_policy(BASE, "site.toml"))


def test_domains_are_kept_in_lower_case() -> None:
    text = edited('["uni.example", "*.edu"]', '["Uni.Example", "*.EDU"]')
    rules = load_policy(text, "site.toml").application_rules("partner")
    assert rules.allowed_domains == ("uni.example", "*.edu")


@pytest.mark.parametrize("domains", ["allowed_domains = []\n", ""])
def test_other_approvals_may_give_no_domains(domains: str) -> None:
    text = edited(
        'approval = "email_domain"\nallowed_domains = ["uni.example", "*.edu"]\n',
        f'approval = "manual"\n{domains}',
    )
    rules = load_policy(text, "site.toml").application_rules("partner")
    assert (rules.approval, rules.allowed_domains) == (Approval.MANUAL, ())


def test_optional_field_keys_take_their_defaults() -> None:
    text = edited("max_length = 800\n", "")
    plan = load_policy(text, "site.toml").application_rules("partner").fields[3]
    assert (plan.help, plan.options, plan.max_length) == ("", (), 5000)


def test_empty_warning_list_means_no_warnings() -> None:
    text = edited("expiry_warning_days = [7, 30]", "expiry_warning_days = []")
    assert load_policy(text, "site.toml").lifecycle.expiry_warning_days == ()


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            EVERYONE_APPLICATION,
            "",
            "tiers.everyone.application: missing; expected a table "
            "{approval, cooldown_days, review_days, response_days, fields}",
        ),
        (
            "review_days = 5",
            "review_days = 5\nreviewers = 2",
            f"{APP}.reviewers: unknown key; allowed keys: approval, allowed_domains, "
            "cooldown_days, review_days, response_days, fields",
        ),
        (
            'approval = "email_domain"',
            'approval = "auto"',
            f'{APP}.approval: expected one of {APPROVALS}, got "auto"',
        ),
        (
            'approval = "email_domain"',
            'approval = "Manual"',
            f'{APP}.approval: expected one of {APPROVALS}, got "Manual"',
        ),
        (
            'approval = "email_domain"\n',
            "",
            f"{APP}.approval: missing; expected one of {APPROVALS}",
        ),
        (
            'approval = "email_domain"',
            'approval = "manual"',
            f'{APP}.allowed_domains: expected no domains when approval is "manual" '
            '(they are only used with "email_domain"), got an array',
        ),
        (
            'approval = "email_domain"',
            'approval = "on_acceptance"',
            f'{APP}.allowed_domains: expected no domains when approval is "on_acceptance" '
            '(they are only used with "email_domain"), got an array',
        ),
        (
            'allowed_domains = ["uni.example", "*.edu"]\n',
            "",
            f'{APP}.allowed_domains: missing; expected {PATTERNS} when approval is "email_domain"',
        ),
        (
            'allowed_domains = ["uni.example", "*.edu"]',
            "allowed_domains = []",
            f"{APP}.allowed_domains: expected {PATTERNS}, got an empty array",
        ),
        (
            'allowed_domains = ["uni.example", "*.edu"]',
            'allowed_domains = "*.edu"',
            f'{APP}.allowed_domains: expected {PATTERNS}, got "*.edu"',
        ),
        (
            'allowed_domains = ["uni.example", "*.edu"]',
            'allowed_domains = ["uni.example", "*.EDU", "*.edu"]',
            f'{APP}.allowed_domains[2]: expected no repeats, got "*.edu" again',
        ),
        (
            "cooldown_days = 14",
            "cooldown_days = -1",
            f"{APP}.cooldown_days: expected a non-negative integer, got -1",
        ),
        (
            "cooldown_days = 14",
            "cooldown_days = 1.5",
            f"{APP}.cooldown_days: expected a non-negative integer, got 1.5",
        ),
        (
            "cooldown_days = 14\n",
            "",
            f"{APP}.cooldown_days: missing; expected a non-negative integer",
        ),
        (
            "review_days = 5",
            "review_days = 0",
            f"{APP}.review_days: expected a positive integer, got 0",
        ),
        (
            "review_days = 5",
            "review_days = true",
            f"{APP}.review_days: expected a positive integer, got true",
        ),
        (
            "response_days = 21",
            'response_days = "21"',
            f'{APP}.response_days: expected a positive integer, got "21"',
        ),
        (
            "response_days = 2\n",
            "",
            "tiers.everyone.application.response_days: missing; expected a positive integer",
        ),
    ],
)
def test_bad_application_rule_is_reported_with_its_dotted_path(
    old: str, new: str, problem: str
) -> None:
    assert problems_of(edited(old, new)) == [problem]


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "*.",
        "uni.*",
        "*.*.edu",
        "**.edu",
        "*edu",
        ".edu",
        "edu.",
        "@uni.edu",
        "user@uni.edu",
        "uni..edu",
        "-uni.edu",
        "uni-.edu",
        "uni_lab.edu",
        "uni edu",
        "https://uni.edu",
        "",
        "a" * 64 + ".edu",
    ],
)
def test_bad_domain_patterns_are_refused(pattern: str) -> None:
    text = edited('["uni.example", "*.edu"]', f'["uni.example", "{pattern}"]')
    assert problems_of(text) == [f'{APP}.allowed_domains[1]: expected {PATTERN}, got "{pattern}"']


def test_a_domain_pattern_must_be_a_string() -> None:
    text = edited('["uni.example", "*.edu"]', '["uni.example", 7]')
    assert problems_of(text) == [f"{APP}.allowed_domains[1]: expected {PATTERN}, got 7"]


@pytest.mark.parametrize(
    "pattern", ["edu", "uni.example", "*.edu", "*.ac.uk", "*.xn--80ao21a", "cs-dept.uni.edu"]
)
def test_good_domain_patterns_are_accepted(pattern: str) -> None:
    text = edited('["uni.example", "*.edu"]', f'["{pattern}"]')
    assert load_policy(text, "site.toml").application_rules("partner").allowed_domains == (pattern,)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "fields = []\n",
            "",
            "tiers.everyone.application.fields: missing; expected an array of tables "
            "{name, label, kind, required}",
        ),
        (
            "fields = []",
            "fields = 3",
            "tiers.everyone.application.fields: expected an array of tables "
            "{name, label, kind, required}, got 3",
        ),
        (
            "fields = []",
            'fields = ["name"]',
            "tiers.everyone.application.fields[0]: expected a table "
            '{name, label, kind, required}, got "name"',
        ),
        (
            'options = ["research", "teaching"]',
            'options = ["research", "teaching"]\nplaceholder = "choose"',
            f"{FIELDS}[2].placeholder: unknown key; allowed keys: name, label, kind, required, "
            "options, help, max_length",
        ),
        (
            'name = "use"',
            'name = "Use"',
            f'{FIELDS}[2].name: expected a field name matching [a-z][a-z0-9_]*, got "Use"',
        ),
        (
            'name = "use"',
            'name = "intended use"',
            f'{FIELDS}[2].name: expected a field name matching [a-z][a-z0-9_]*, got "intended use"',
        ),
        (
            'name = "use"\n',
            "",
            f"{FIELDS}[2].name: missing; expected a field name matching [a-z][a-z0-9_]*",
        ),
        (
            'name = "use"',
            'name = "affiliation"',
            f'{FIELDS}[2].name: expected a name no other field uses, got "affiliation" '
            "(also fields[0]'s)",
        ),
        (
            'label = "Use"',
            'label = "  "',
            f'{FIELDS}[2].label: expected a non-empty string, got "  "',
        ),
        ('label = "Use"\n', "", f"{FIELDS}[2].label: missing; expected a non-empty string"),
        (
            'kind = "country"',
            'kind = "nation"',
            f'{FIELDS}[1].kind: expected one of {KINDS}, got "nation"',
        ),
        ('kind = "country"\n', "", f"{FIELDS}[1].kind: missing; expected one of {KINDS}"),
        (
            'required = false\noptions = ["research", "teaching"]',
            'required = "no"\noptions = ["research", "teaching"]',
            f'{FIELDS}[2].required: expected true or false, got "no"',
        ),
        (
            'required = false\noptions = ["research", "teaching"]',
            'options = ["research", "teaching"]',
            f"{FIELDS}[2].required: missing; expected true or false",
        ),
        (
            'options = ["research", "teaching"]\n',
            "",
            f"{FIELDS}[2].options: missing; expected {OPTIONS}",
        ),
        (
            'options = ["research", "teaching"]',
            "options = []",
            f"{FIELDS}[2].options: expected {OPTIONS}, got an empty array",
        ),
        (
            'options = ["research", "teaching"]',
            'options = "research"',
            f'{FIELDS}[2].options: expected {OPTIONS}, got "research"',
        ),
        (
            'options = ["research", "teaching"]',
            'options = ["research", ""]',
            f'{FIELDS}[2].options[1]: expected a non-empty string, got ""',
        ),
        (
            'options = ["research", "teaching"]',
            'options = ["research", 3]',
            f"{FIELDS}[2].options[1]: expected a non-empty string, got 3",
        ),
        (
            'options = ["research", "teaching"]',
            'options = ["research", "teaching", "research"]',
            f'{FIELDS}[2].options[2]: expected no repeats, got "research" again',
        ),
        (
            'help = "Where you work."',
            'help = "Where you work."\noptions = ["GB", "JP"]',
            f"{FIELDS}[1].options: expected no options for a country field "
            "(only select fields have them), got an array",
        ),
        (
            "max_length = 800",
            'max_length = 800\noptions = ["short", "long"]',
            f"{FIELDS}[3].options: expected no options for a long_text field "
            "(only select fields have them), got an array",
        ),
        ('help = "Where you work."', "help = 3", f"{FIELDS}[1].help: expected a string, got 3"),
        (
            "max_length = 800",
            "max_length = 0",
            f"{FIELDS}[3].max_length: expected a positive integer, got 0",
        ),
        (
            "max_length = 800",
            'max_length = "800"',
            f'{FIELDS}[3].max_length: expected a positive integer, got "800"',
        ),
        (
            'options = ["research", "teaching"]',
            'options = ["research", "teaching"]\nmax_length = 50',
            f"{FIELDS}[2].max_length: expected no max_length for a select field "
            "(only text and long_text answers have one), got 50",
        ),
        (
            'help = "Where you work."',
            'help = "Where you work."\nmax_length = 2',
            f"{FIELDS}[1].max_length: expected no max_length for a country field "
            "(only text and long_text answers have one), got 2",
        ),
        (
            'kind = "country"',
            'kind = "nation"\noptions = ["GB"]\nmax_length = 2',
            f'{FIELDS}[1].kind: expected one of {KINDS}, got "nation"',
        ),
    ],
)
def test_bad_form_field_is_reported_with_its_dotted_path(old: str, new: str, problem: str) -> None:
    assert problems_of(edited(old, new)) == [problem]


def test_a_checkbox_takes_no_options_either() -> None:
    text = edited(
        "fields = []",
        'fields = [{name = "agree", label = "I agree", kind = "checkbox", required = true, '
        'options = ["yes"]}]',
    )
    assert problems_of(text) == [
        "tiers.everyone.application.fields[0].options: expected no options for a checkbox "
        "field (only select fields have them), got an array"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "[lifecycle]\nexpiry_warning_days = [7, 30]\nrenewal_opens_days = 14\n"
            "closeout_days = 10\n",
            "",
            f"lifecycle: missing; expected a table {{{LIFECYCLE_KEYS}}}",
        ),
        (
            "closeout_days = 10",
            "closeout_days = 10\ngrace_days = 3",
            f"lifecycle.grace_days: unknown key; allowed keys: {LIFECYCLE_KEYS}",
        ),
        (
            "expiry_warning_days = [7, 30]",
            "expiry_warning_days = 7",
            "lifecycle.expiry_warning_days: expected an array of distinct positive integers "
            "(days before a grant ends), got 7",
        ),
        (
            "expiry_warning_days = [7, 30]\n",
            "",
            "lifecycle.expiry_warning_days: missing; expected an array of distinct positive "
            "integers (days before a grant ends)",
        ),
        (
            "expiry_warning_days = [7, 30]",
            "expiry_warning_days = [7, 0]",
            "lifecycle.expiry_warning_days[1]: expected a positive integer, got 0",
        ),
        (
            "expiry_warning_days = [7, 30]",
            "expiry_warning_days = [true, 30]",
            "lifecycle.expiry_warning_days[0]: expected a positive integer, got true",
        ),
        (
            "expiry_warning_days = [7, 30]",
            "expiry_warning_days = [7, 30, 7]",
            "lifecycle.expiry_warning_days[2]: expected no repeats, got 7 again",
        ),
        (
            "renewal_opens_days = 14",
            "renewal_opens_days = 0",
            "lifecycle.renewal_opens_days: expected a positive integer, got 0",
        ),
        (
            "renewal_opens_days = 14\n",
            "",
            "lifecycle.renewal_opens_days: missing; expected a positive integer",
        ),
        (
            "closeout_days = 10",
            "closeout_days = -3",
            "lifecycle.closeout_days: expected a positive integer, got -3",
        ),
    ],
)
def test_bad_lifecycle_is_reported_with_its_dotted_path(old: str, new: str, problem: str) -> None:
    assert problems_of(edited(old, new)) == [problem]


def test_lifecycle_must_be_a_table() -> None:
    text = BASE.replace("[lifecycle]\n", "").replace(
        "schema_version = 1\n", 'schema_version = 1\nlifecycle = "yearly"\n'
    )
    assert "lifecycle: expected a table {" + LIFECYCLE_KEYS + '}, got "yearly"' in problems_of(text)


def test_application_must_be_a_table() -> None:
    text = edited(EVERYONE_APPLICATION, "").replace(
        "quota_period_days = 7\n", 'quota_period_days = 7\napplication = "open"\n'
    )
    assert problems_of(text) == [
        "tiers.everyone.application: expected a table "
        '{approval, cooldown_days, review_days, response_days, fields}, got "open"'
    ]


def test_all_application_problems_are_reported_together() -> None:
    text = (
        edited('approval = "email_domain"', 'approval = "auto"')
        .replace('kind = "country"', 'kind = "nation"')
        .replace("closeout_days = 10", "closeout_days = 0")
        .replace("review_days = 3", "review_days = 0")
    )
    assert problems_of(text) == [
        f'{APP}.approval: expected one of {APPROVALS}, got "auto"',
        f'{FIELDS}[1].kind: expected one of {KINDS}, got "nation"',
        "tiers.everyone.application.review_days: expected a positive integer, got 0",
        "lifecycle.closeout_days: expected a positive integer, got 0",
    ]
