"""Every integer of a policy is bounded, and no TOML, however deep or long, escapes as
anything but a PolicyError: nothing downstream ever overflows a date or a column."""

import pytest

from policies import PolicyError, load_policy
from policies.reading import MAX_DAYS, MAX_INT
from policies.toml_text import MAX_DEPTH, TomlRefused, nesting_depth_over, read_toml
from tests.core.policy_text import BASE, edited, problems_of

DAYS = f"of at most {MAX_DAYS} (100 years)"

# (line of BASE, its replacement, the one problem expected)
OUT_OF_BOUNDS = [
    (
        "grant_days = 90",
        "grant_days = 1000000000",
        f"tiers.partner.grant_days: expected a positive integer {DAYS}, got 1000000000",
    ),
    (
        "quota_period_days = 30",
        f"quota_period_days = {MAX_DAYS + 1}",
        f"tiers.partner.quota_period_days: expected a positive integer {DAYS}, got {MAX_DAYS + 1}",
    ),
    (
        "download_quota = 3",
        "download_quota = 9223372036854775807",
        f"tiers.partner.download_quota: expected a positive integer of at most {MAX_INT}, "
        "got 9223372036854775807",
    ),
    (
        "order = 1",
        "order = -99999999999",
        f"tiers.partner.order: expected an integer of at least {-MAX_INT}, got -99999999999",
    ),
    (
        "cooldown_days = 14",
        "cooldown_days = 40000",
        "tiers.partner.application.cooldown_days: expected a non-negative integer "
        f"{DAYS}, got 40000",
    ),
    (
        "max_length = 800",
        f"max_length = {10**40}",
        "tiers.partner.application.fields[3].max_length: expected a positive integer of at "
        f"most {MAX_INT}, got an integer of about 41 digits",
    ),
    (
        "expiry_warning_days = [7, 30]",
        "expiry_warning_days = [7, 99999]",
        f"lifecycle.expiry_warning_days[1]: expected a positive integer {DAYS}, got 99999",
    ),
    (
        "renewal_opens_days = 14",
        "renewal_opens_days = 36501",
        f"lifecycle.renewal_opens_days: expected a positive integer {DAYS}, got 36501",
    ),
    (
        "max_days = 90",
        "max_days = 3000000",
        f"api_keys.max_days: expected a positive integer {DAYS}, got 3000000",
    ),
    (
        "min_days_in_stage = 10",
        "min_days_in_stage = 2932897",
        f"gates.everyone.min_days_in_stage: expected a non-negative integer {DAYS}, got 2932897",
    ),
    (
        "min_grantees_downloaded = 4",
        "min_grantees_downloaded = 1000000001",
        "gates.everyone.min_grantees_downloaded: expected a non-negative integer of at most "
        f"{MAX_INT}, got 1000000001",
    ),
    (
        "approvals = 3",
        "approvals = 5000000000",
        f"reinstate.approvals: expected a positive integer of at most {MAX_INT}, got 5000000000",
    ),
    (
        "retention_days = 45",
        "retention_days = 100000",
        f"decommission.retention_days: expected a non-negative integer {DAYS}, got 100000",
    ),
    (
        "suspend_days = 21",
        "suspend_days = 999999999",
        f"enforcement.suspend_days: expected a positive integer {DAYS}, got 999999999",
    ),
]


@pytest.mark.parametrize(("old", "new", "problem"), OUT_OF_BOUNDS)
def test_an_integer_beyond_its_bound_is_refused_with_the_bound(
    old: str, new: str, problem: str
) -> None:
    assert problems_of(edited(old, new)) == [problem]


def test_every_day_count_at_its_bound_loads() -> None:
    text = BASE
    for old, key in (
        ("grant_days = 90", "grant_days"),
        ("closeout_days = 10", "closeout_days"),
        ("default_days = 30", "default_days"),
        ("max_days = 90", "max_days"),
        ("download_quota = 3", "download_quota"),
    ):
        bound = MAX_INT if key == "download_quota" else MAX_DAYS
        text = text.replace(old, f"{key} = {bound}")
    policy = load_policy(text, "site.toml")
    partner = next(tier for tier in policy.ladder if tier.name == "partner")
    assert (partner.grant_days, partner.download_quota) == (MAX_DAYS, MAX_INT)
    assert policy.api_keys.max_days == MAX_DAYS
    assert policy.lifecycle.closeout_days == MAX_DAYS


def test_an_integer_of_thousands_of_digits_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as refused:
        load_policy(edited("grant_days = 90", "grant_days = " + "9" * 5000), "site.toml")
    assert refused.value.problems == [refused.value.problems[0]]
    assert refused.value.problems[0].startswith("invalid TOML: a number too long to read")
    assert str(refused.value).startswith("site.toml: ")


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 100_000 + "]" * 100_000,
        "[" * 100_000,
        "{ a = " * 5_000 + "1" + " }" * 5_000,
        "[" * 1_000 + "1" + "]" * 1_000,
    ],
    ids=["deep-arrays", "unterminated-arrays", "deep-tables", "a-thousand-levels"],
)
def test_toml_nested_beyond_the_parser_is_a_policy_error(nested: str) -> None:
    with pytest.raises(PolicyError) as refused:
        load_policy(BASE + f"\nextra = {nested}\n", "site.toml")
    (problem,) = refused.value.problems
    assert problem.startswith("invalid TOML")
    assert str(refused.value).startswith("site.toml: invalid TOML")


def test_toml_nested_within_the_parser_is_reported_by_its_path() -> None:
    problems = problems_of(
        BASE.replace("[lifecycle]", "[lifecycle]\nextra = " + "[" * 50 + "]" * 50)
    )
    assert problems == [
        "lifecycle.extra: unknown key; allowed keys: "
        "expiry_warning_days, renewal_opens_days, closeout_days"
    ]


def test_brackets_in_strings_and_comments_are_not_nesting() -> None:
    hidden = "[{" * 200
    text = (
        f'a = "{hidden}"\nb = \'{hidden}\'\nc = """\n{hidden}\n"""\n'
        f"d = '''{hidden}'''\n# {hidden}\ne = \"\\\"{hidden}\"\n"
    )
    assert not nesting_depth_over(text)
    assert read_toml(text)["a"] == hidden


def test_nesting_is_refused_one_level_past_the_limit() -> None:
    assert not nesting_depth_over("x = " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert nesting_depth_over("x = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(TomlRefused, match=f"more than {MAX_DEPTH} levels deep"):
        read_toml("x = " + "{ a = " * (MAX_DEPTH + 1) + "1" + " }" * (MAX_DEPTH + 1))


def test_an_unterminated_string_keeps_the_scan_linear() -> None:
    # A quote that never closes must not make the scan re-read the rest from every quote.
    with pytest.raises(TomlRefused):
        read_toml('x = "' + '\\"' * 200_000)
    with pytest.raises(TomlRefused):
        read_toml("x = '''" + "'" * 200_000)
