"""Loading the policy file: the shipped default, its golden copy, and every refusal."""

from importlib import resources
from pathlib import Path

import pytest

from policies import (
    MAX_URL_TTL_SECONDS,
    Approval,
    ComponentRule,
    FieldKind,
    LifecycleRules,
    PolicyError,
    load_policy,
)
from policies.schema import EvidenceRules, TransparencyRules
from stages.tiers import Access, ApiTerms, Tier
from tests.core.policy_text import BASE, edited, problems_of

GOLDEN = Path(__file__).parent / "golden" / "default_policy.toml"


def shipped_bytes() -> bytes:
    return resources.files("policies").joinpath("default.toml").read_bytes()


def test_default_policy_loads_with_the_expected_tiers() -> None:
    policy = load_policy(shipped_bytes().decode(), "default.toml")
    assert policy.schema_version == 1
    assert list(policy.ladder) == [
        Tier(
            name="api_preview",
            rank=1,
            title="API preview",
            components=frozenset(),
            grant_days=90,
            url_ttl_seconds=0,
            download_quota=0,
            quota_period_days=0,
            access=Access.API,
            api=ApiTerms(requests_per_minute=60, credits_per_month=100_000),
        ),
        Tier(
            name="trusted_partner",
            rank=2,
            title="Trusted partners",
            components=frozenset(
                {"weights", "code", "model_card", "eval_tools", "data_manifest", "config", "other"}
            ),
            grant_days=365,
            url_ttl_seconds=3600,
            download_quota=20,
            quota_period_days=30,
            evaluators=True,
        ),
        Tier(
            name="researcher",
            rank=3,
            title="Researchers",
            components=frozenset(
                {"weights", "code", "model_card", "eval_tools", "config", "other"}
            ),
            grant_days=180,
            url_ttl_seconds=1800,
            download_quota=10,
            quota_period_days=30,
        ),
        Tier(
            name="public",
            rank=4,
            title="Public",
            components=frozenset({"weights", "code", "model_card", "config", "other"}),
            grant_days=365,
            url_ttl_seconds=900,
            download_quota=5,
            quota_period_days=30,
        ),
    ]
    assert policy.publish.default_component == "other"
    assert ComponentRule("*.safetensors", "weights") in policy.publish.rules


def test_default_policy_has_the_expected_application_rules() -> None:
    policy = load_policy(shipped_bytes().decode(), "default.toml")
    assert list(policy.applications) == ["api_preview", "trusted_partner", "researcher", "public"]
    assert policy.lifecycle == LifecycleRules(
        expiry_warning_days=(30, 7), renewal_opens_days=30, closeout_days=30
    )

    preview = policy.application_rules("api_preview")
    assert (preview.approval, preview.cooldown_days, preview.review_days) == (
        Approval.MANUAL,
        30,
        7,
    )
    assert [f.name for f in preview.fields] == ["organisation", "intended_use"]

    partner = policy.application_rules("trusted_partner")
    assert (partner.approval, partner.allowed_domains) == (Approval.MANUAL, ())
    assert (partner.cooldown_days, partner.review_days) == (90, 10)
    assert [(f.name, f.kind, f.required) for f in partner.fields] == [
        ("organisation", FieldKind.TEXT, True),
        ("contact_role", FieldKind.TEXT, False),
        ("intended_use", FieldKind.LONG_TEXT, True),
        ("security_contact", FieldKind.TEXT, False),
    ]

    researcher = policy.application_rules("researcher")
    assert researcher.approval is Approval.EMAIL_DOMAIN
    assert researcher.allowed_domains == ("*.edu", "*.ac.uk", "*.ac.jp", "*.edu.au")
    assert (researcher.cooldown_days, researcher.review_days) == (30, 14)
    assert [(f.name, f.kind, f.required) for f in researcher.fields] == [
        ("affiliation", FieldKind.TEXT, True),
        ("country", FieldKind.COUNTRY, True),
        ("research_purpose", FieldKind.LONG_TEXT, True),
        ("publications", FieldKind.LONG_TEXT, False),
        ("agree_no_redistribution", FieldKind.CHECKBOX, True),
    ]
    assert [f.max_length for f in researcher.fields] == [200, 0, 5000, 5000, 0]

    public = policy.application_rules("public")
    assert (public.approval, public.allowed_domains) == (Approval.ON_ACCEPTANCE, ())
    assert (public.cooldown_days, public.review_days) == (7, 7)
    assert [(f.name, f.kind, f.required) for f in public.fields] == [
        ("intended_use", FieldKind.SELECT, True),
        ("agree_acceptable_use", FieldKind.CHECKBOX, True),
    ]
    assert public.fields[0].options == ("research", "education", "commercial", "personal", "other")
    assert all(f.label.strip() for rules in policy.applications.values() for f in rules.fields)


def test_shipped_policy_matches_its_golden_copy() -> None:
    # A change to the shipped policy must be deliberate: update the golden copy with it.
    assert shipped_bytes() == GOLDEN.read_bytes()


def test_base_policy_is_valid() -> None:
    policy = load_policy(BASE, "site.toml")
    assert policy.ladder.names == ("partner", "everyone")
    assert policy.publish.rules == (ComponentRule("*.safetensors", "weights"),)


def test_message_names_source_path_expectation_and_value() -> None:
    text = edited("url_ttl_seconds = 600", 'url_ttl_seconds = "ten"')
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "default.toml")
    assert str(caught.value) == (
        "default.toml: tiers.partner.url_ttl_seconds: expected a positive integer "
        f'of at most {MAX_URL_TTL_SECONDS} (7 days), got "ten"'
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("schema_version = 1", "schema_version = 2", "schema_version: expected 1, got 2"),
        ("schema_version = 1", 'schema_version = "1"', 'schema_version: expected 1, got "1"'),
        ("schema_version = 1", "", "schema_version: missing; expected 1"),
        ("order = 1", "order = 1.5", "tiers.partner.order: expected an integer, got 1.5"),
        ("order = 1", "order = true", "tiers.partner.order: expected an integer, got true"),
        (
            "order = 2",
            "order = 1",
            "tiers.everyone.order: expected an order no other tier uses, got 1 (also partner's)",
        ),
        (
            'title = "Partners"',
            'title = " "',
            'tiers.partner.title: expected a non-empty string, got " "',
        ),
        ('title = "Partners"', "", "tiers.partner.title: missing; expected a non-empty string"),
        (
            'components = ["weights", "code"]',
            "components = []",
            "tiers.partner.components: expected a non-empty array of component names "
            "matching [a-z][a-z0-9_]*, got an empty array",
        ),
        (
            'components = ["weights", "code"]',
            'components = "weights"',
            "tiers.partner.components: expected a non-empty array of component names "
            'matching [a-z][a-z0-9_]*, got "weights"',
        ),
        (
            'components = ["weights", "code"]',
            'components = ["weights", "Code"]',
            "tiers.partner.components[1]: expected a component name matching [a-z][a-z0-9_]*, "
            'got "Code"',
        ),
        (
            'components = ["weights", "code"]',
            'components = ["weights", 7]',
            "tiers.partner.components[1]: expected a component name matching [a-z][a-z0-9_]*, "
            "got 7",
        ),
        (
            'components = ["weights", "code"]',
            'components = ["weights", "weights", "code"]',
            'tiers.partner.components[1]: expected no repeats, got "weights" again',
        ),
        (
            "grant_days = 90",
            "grant_days = 0",
            "tiers.partner.grant_days: expected a positive integer, got 0",
        ),
        (
            "grant_days = 90",
            "grant_days = -5",
            "tiers.partner.grant_days: expected a positive integer, got -5",
        ),
        (
            "url_ttl_seconds = 600",
            "url_ttl_seconds = 604801",
            "tiers.partner.url_ttl_seconds: expected a positive integer of at most 604800 "
            "(7 days), got 604801",
        ),
        (
            "download_quota = 3",
            "download_quota = [3]",
            "tiers.partner.download_quota: expected a positive integer, got an array",
        ),
        (
            "quota_period_days = 30",
            "quota_period_days = 2024-01-01",
            "tiers.partner.quota_period_days: expected a positive integer, "
            "got a date/time (2024-01-01)",
        ),
        (
            "quota_period_days = 7",
            "",
            "tiers.everyone.quota_period_days: missing; expected a positive integer",
        ),
        (
            'default_component = "code"',
            'default_component = "Other"',
            "publish.default_component: expected a component name matching [a-z][a-z0-9_]*, "
            'got "Other"',
        ),
        (
            'default_component = "code"',
            'default_component = "other"',
            "publish.default_component: expected a component some tier sees (code, weights), "
            'got "other"',
        ),
        (
            'component = "weights"',
            'component = "weigths"',
            "publish.components[0].component: expected a component some tier sees "
            '(code, weights), got "weigths"',
        ),
        (
            'glob = "*.safetensors"',
            'glob = ""',
            'publish.components[0].glob: expected a glob relative to the release root, got ""',
        ),
        (
            'glob = "*.safetensors"',
            'glob = "/weights/*"',
            "publish.components[0].glob: expected a glob relative to the release root, "
            'got "/weights/*"',
        ),
        (
            'glob = "*.safetensors"\n',
            "",
            "publish.components[0].glob: missing; expected a glob relative to the release root",
        ),
    ],
)
def test_bad_field_is_reported_with_its_dotted_path(old: str, new: str, problem: str) -> None:
    assert problems_of(edited(old, new)) == [problem]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Partner", 'tiers.Partner: expected a tier name matching [a-z][a-z0-9_]*, got "Partner"'),
        (
            "draft",
            'tiers.draft: expected a tier name other than "draft", the stage before any tier',
        ),
    ],
)
def test_bad_tier_name(name: str, problem: str) -> None:
    # The tier's application tables move with it, so only the name is wrong.
    assert problems_of(BASE.replace("tiers.partner", f"tiers.{name}")) == [problem]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("schema_version = 1\n[publish]\n", "tiers: missing; expected a table of tiers"),
        ("schema_version = 1\ntiers = 3\n", "tiers: expected a table of tiers, got 3"),
        ("schema_version = 1\n[tiers]\n", "tiers: expected at least one tier, got none"),
        ('schema_version = 1\ntiers.partner = "x"\n', 'tiers.partner: expected a table, got "x"'),
    ],
)
def test_bad_tiers_table(text: str, problem: str) -> None:
    assert problem in problems_of(text)


# BASE up to its first publish rule: still inside the [publish] table.
PUBLISH_HEAD = BASE[: BASE.index("[[publish.components]]")]


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        ("", "publish.components: missing; expected an array of tables {glob, component}"),
        (
            "components = 5",
            "publish.components: expected an array of tables {glob, component}, got 5",
        ),
        (
            'components = ["*.py"]',
            'publish.components[0]: expected a table {glob, component}, got "*.py"',
        ),
    ],
)
def test_bad_publish_rules(tail: str, problem: str) -> None:
    assert problems_of(PUBLISH_HEAD + tail) == [problem]


def test_publish_rules_may_be_an_empty_array() -> None:
    assert load_policy(PUBLISH_HEAD + "components = []", "site.toml").publish.rules == ()


def test_api_keys_are_validated() -> None:
    policy = load_policy(BASE, "site.toml")
    assert (policy.api_keys.default_days, policy.api_keys.max_days) == (30, 90)
    assert problems_of(edited("default_days = 30", "default_days = 120")) == [
        "api_keys.default_days: expected at most api_keys.max_days (90), got 120"
    ]
    assert problems_of(edited("max_days = 90", "max_days = 0")) == [
        "api_keys.max_days: expected a positive integer, got 0"
    ]
    assert problems_of(edited("max_days = 90", "max_days = 90\nforever = true")) == [
        "api_keys.forever: unknown key; allowed keys: default_days, max_days"
    ]


def test_publish_table_is_required() -> None:
    text = BASE[: BASE.index("[publish]")]
    assert problems_of(text) == ["publish: missing; expected a table"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "schema_version = 1\n",
            "schema_version = 1\ntier_order = 1\n",
            "tier_order: unknown key; allowed keys: schema_version, tiers, publish, api_keys, "
            "lifecycle, gates, reinstate, triggers, decommission, enforcement, evidence, "
            "transparency, reporting, quarantine",
        ),
        (
            "grant_days = 90",
            "grant_days = 90\ngrant_day = 90",
            "tiers.partner.grant_day: unknown key; allowed keys: order, title, components, "
            "grant_days, url_ttl_seconds, download_quota, quota_period_days, access, api, "
            "application, evaluators",
        ),
        (
            'default_component = "code"',
            'default_component = "code"\ndefault = "code"',
            "publish.default: unknown key; allowed keys: components, default_component",
        ),
        (
            'component = "weights"',
            'component = "weights"\ntier = "public"',
            "publish.components[0].tier: unknown key; allowed keys: glob, component",
        ),
    ],
)
def test_unknown_keys_are_refused(old: str, new: str, problem: str) -> None:
    assert problems_of(edited(old, new)) == [problem]


def test_all_problems_are_reported_together() -> None:
    text = edited("grant_days = 90", "grant_days = 0").replace(
        "download_quota = 1", 'download_quota = "one"'
    )
    assert problems_of(text) == [
        "tiers.partner.grant_days: expected a positive integer, got 0",
        'tiers.everyone.download_quota: expected a positive integer, got "one"',
    ]


def test_other_schema_versions_stop_at_the_version() -> None:
    # Fields of a future schema would all look wrong; only the version is worth saying.
    text = edited("schema_version = 1", "schema_version = 2\nrecall = {}")
    assert problems_of(text) == ["schema_version: expected 1, got 2"]


def test_order_sorts_tiers_and_ranks_are_positions() -> None:
    # everyone becomes the first tier, whose gate may not ask for downloads.
    text = (
        edited("order = 1", "order = 50")
        .replace("order = 2", "order = 10")
        .replace("min_grantees_downloaded = 4\nmin_organisations_downloaded = 3\n", "")
    )
    ladder = load_policy(text, "site.toml").ladder
    assert ladder.names == ("everyone", "partner")
    assert [tier.rank for tier in ladder] == [1, 2]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("schema_version = 1\n[tiers\n", "(at line 2, column "),
        ("schema_version = 1\nschema_version = 1\n", "(at line 2, column "),
        ('schema_version = 1\n\ntitle = "open\n', "(at line 3, column "),
    ],
)
def test_toml_syntax_errors_become_policy_errors_with_the_line(text: str, where: str) -> None:
    (problem,) = problems_of(text, "broken.toml")
    assert problem.startswith("invalid TOML: ")
    # The column is tomllib's business; the line is what a reader needs.
    assert where in problem


def test_the_evidence_table_is_optional_and_its_days_are_checked() -> None:
    assert load_policy(BASE, "site.toml").evidence.personal_data_days == 365
    shipped = load_policy(shipped_bytes().decode(), "default.toml")
    assert shipped.evidence.personal_data_days == 365
    assert load_policy(BASE + "\n[evidence]\npersonal_data_days = 30\n", "site.toml").evidence == (
        EvidenceRules(personal_data_days=30)
    )
    assert problems_of(BASE + "\n[evidence]\npersonal_data_days = 0\n") == [
        "evidence.personal_data_days: expected a positive integer, got 0"
    ]
    assert problems_of(BASE + "\n[evidence]\nkeep = 1\n") == [
        "evidence.keep: unknown key; allowed keys: personal_data_days"
    ]
    assert problems_of(edited("schema_version = 1\n", 'schema_version = 1\nevidence = "x"\n')) == [
        'evidence: expected a table {personal_data_days}, got "x"'
    ]


def test_the_transparency_table_is_optional_and_its_min_count_is_bounded() -> None:
    assert load_policy(BASE, "site.toml").transparency == TransparencyRules(min_count=10)
    assert load_policy(shipped_bytes().decode(), "default.toml").transparency.min_count == 10
    assert load_policy(BASE + "\n[transparency]\nmin_count = 5\n", "site.toml").transparency == (
        TransparencyRules(min_count=5)
    )
    assert problems_of(BASE + "\n[transparency]\nmin_count = 2\n") == [
        "transparency.min_count: expected an integer of at least 3, got 2"
    ]
    assert problems_of(BASE + "\n[transparency]\nthreshold = 5\n") == [
        "transparency.threshold: unknown key; allowed keys: min_count"
    ]


def test_a_tier_may_make_its_grantees_external_evaluators() -> None:
    policy = load_policy(
        edited('title = "Partners"\n', 'title = "Partners"\nevaluators = true\n'), "s"
    )
    assert policy.ladder.get("partner").evaluators is True
    assert load_policy(BASE, "s").ladder.get("partner").evaluators is False
    assert problems_of(
        edited('title = "Partners"\n', 'title = "Partners"\nevaluators = "yes"\n')
    ) == ['tiers.partner.evaluators: expected true or false, got "yes"']
