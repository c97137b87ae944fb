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

[gates.partner]
min_days_in_stage = 2
required_evidence = [{ kind = "evaluation", name = "safety-check", result = "pass" }]

[gates.everyone]
min_days_in_stage = 10
min_grantees_downloaded = 4
min_organisations_downloaded = 3
max_open_incidents = { high = 0, critical = 1 }
required_evidence = [{ kind = "evaluation", name = "red-team" }]
approvals = 2
no_recall_in_force = false

[reinstate]
approvals = 3

[[triggers]]
on = "incident_confirmed"
min_severity = "critical"
action = "recall"

[[triggers]]
on = "incident_confirmed"
min_severity = "high"
action = "recall_tier"
tier = "everyone"

[[triggers]]
on = "incident_confirmed"
min_severity = "medium"
action = "suspend_accounts"

[decommission]
reminder_days = [14, 60, 3]
retention_days = 45

[enforcement]
ladder = ["warn", "suspend", "terminate"]
suspend_days = 21
appeal_days = 15

[enforcement.by_severity]
medium = "warn"
high = "suspend"
critical = "terminate"

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
