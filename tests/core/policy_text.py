"""A small valid policy file, and helpers that break one line of it at a time."""

import pytest

from policies import PolicyError, load_policy

# Each bad-field test changes one line of this; every line a test edits occurs once.
# [publish] comes last, so tests can cut the file inside it.
BASE = """\
schema_version = 1

[tiers.partner]
order = 1
title = "Partners"
components = ["weights", "code"]
grant_days = 90
url_ttl_seconds = 600
download_quota = 3
quota_period_days = 30

[tiers.partner.application]
approval = "email_domain"
allowed_domains = ["uni.example", "*.edu"]
cooldown_days = 14
review_days = 5
response_days = 21

[[tiers.partner.application.fields]]
name = "affiliation"
label = "Affiliation"
kind = "text"
required = true

[[tiers.partner.application.fields]]
name = "country"
label = "Country"
kind = "country"
required = true
help = "Where you work."

[[tiers.partner.application.fields]]
name = "use"
label = "Use"
kind = "select"
required = false
options = ["research", "teaching"]

[[tiers.partner.application.fields]]
name = "plan"
label = "Plan"
kind = "long_text"
required = false
max_length = 800

[tiers.everyone]
order = 2
title = "Everyone"
components = ["code"]
grant_days = 30
url_ttl_seconds = 300
download_quota = 1
quota_period_days = 7

[tiers.everyone.application]
approval = "on_acceptance"
cooldown_days = 0
review_days = 3
response_days = 2
fields = []

[lifecycle]
expiry_warning_days = [7, 30]
renewal_opens_days = 14
closeout_days = 10

[api_keys]
default_days = 30
max_days = 90

[publish]
default_component = "code"

[[publish.components]]
glob = "*.safetensors"
component = "weights"
"""


def edited(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"{old!r} must occur once in BASE"
    return BASE.replace(old, new)


def problems_of(text: str, source: str = "site.toml") -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(text, source)
    error = caught.value
    assert error.source == source
    assert str(error) == "\n".join(f"{source}: {problem}" for problem in error.problems)
    return error.problems
