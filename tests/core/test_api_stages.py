"""API-only tiers and API gates as plain values: what the policy file may say of them,
how the gates judge reported API use, and what the access decision answers for API use
and for downloads."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType

import pytest

from policies import load_policy
from policies.gates import PromotionFacts, evaluate_gates
from policies.schema import GateRules
from stages.access import Allow, Deny, Reason, decide
from stages.tiers import Access, ApiTerms
from tests.core.policy_text import BASE, edited, problems_of
from tests.core.test_access import GOOD, MACHINE, key

API_ONLY = """[tiers.preview]
order = 0
title = "Preview"
access = "api"
grant_days = 30

[tiers.preview.api]
requests_per_minute = 60
credits_per_month = 1000

[tiers.preview.application]
approval = "manual"
cooldown_days = 0
review_days = 3
response_days = 2
fields = []

"""


def with_preview(text: str = API_ONLY) -> str:
    return BASE.replace("[tiers.partner]\n", text + "[tiers.partner]\n", 1)


def test_an_api_only_tier_has_api_terms_and_no_components() -> None:
    policy = load_policy(with_preview(), "site.toml")
    preview = policy.ladder.get("preview")
    assert policy.ladder.names[0] == "preview"
    assert (preview.access, preview.api_only, preview.components) == (Access.API, True, frozenset())
    assert preview.api == ApiTerms(requests_per_minute=60, credits_per_month=1000)
    partner = policy.ladder.get("partner")
    assert (partner.access, partner.api) == (Access.WEIGHTS, None)


def test_a_weights_tier_may_carry_api_terms() -> None:
    text = edited(
        "quota_period_days = 30\n",
        "quota_period_days = 30\n\n[tiers.partner.api]\nrequests_per_minute = 5\n"
        "credits_per_month = 9\n",
    )
    partner = load_policy(text, "site.toml").ladder.get("partner")
    assert (partner.api_only, partner.api) == (False, ApiTerms(5, 9))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            API_ONLY.replace(
                "[tiers.preview.api]\nrequests_per_minute = 60\ncredits_per_month = 1000\n", ""
            ),
            "tiers.preview.api: expected a table {requests_per_minute, credits_per_month}: an "
            "API-only tier needs its API terms",
        ),
        (
            API_ONLY.replace('access = "api"', 'access = "api"\ncomponents = ["weights"]'),
            "tiers.preview.components: expected no such key in an API-only tier (access = "
            '"api"): its grantees download nothing',
        ),
        (
            API_ONLY.replace('access = "api"', 'access = "both"'),
            'tiers.preview.access: expected "weights" (grantees download components) or "api" '
            '(API only), got "both"',
        ),
        (
            API_ONLY.replace("requests_per_minute = 60", "requests_per_minute = 0"),
            "tiers.preview.api.requests_per_minute: expected a positive integer of at most "
            "1,000,000, got 0",
        ),
        (
            API_ONLY.replace("credits_per_month = 1000", "credits_per_month = 1000\nrefill = 1"),
            "tiers.preview.api.refill: unknown key; allowed keys: requests_per_minute, "
            "credits_per_month",
        ),
    ],
)
def test_bad_api_tiers_are_refused_with_the_field(text: str, problem: str) -> None:
    assert problems_of(with_preview(text)) == [problem]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "min_api_requests = 10",
            "gates.preview.min_api_requests: expected 0 in the gate of the first tier (no API "
            "use is served before the first tier opens), got 10",
        ),
        (
            "max_flagged_share = 0.1",
            "gates.preview.max_flagged_share: expected no flagged-share limit in the gate of the "
            "first tier (no API use is served before the first tier opens)",
        ),
    ],
)
def test_the_first_tiers_gate_cannot_ask_for_api_use(line: str, problem: str) -> None:
    text = with_preview().replace("[gates.partner]", f"[gates.preview]\n{line}\n\n[gates.partner]")
    assert problems_of(text) == [problem]


def test_a_flagged_share_is_a_fraction() -> None:
    text = with_preview().replace("[gates.partner]\n", "[gates.partner]\nmax_flagged_share = 1.5\n")
    assert problems_of(text) == [
        "gates.partner.max_flagged_share: expected a fraction from 0 to 1, such as 0.02, got 1.5"
    ]


RULES = GateRules(
    min_days_in_stage=0,
    min_grantees_downloaded=0,
    min_organisations_downloaded=0,
    max_open_incidents=MappingProxyType({}),
    required_evidence=(),
    approvals=1,
    no_recall_in_force=False,
    min_api_requests=100,
    min_api_users=3,
    max_flagged_share=0.01,
)


def facts(requests: int, users: int, flagged: int) -> PromotionFacts:
    return PromotionFacts(
        stage_entered_at=GOOD.now - timedelta(days=1),
        grantees_downloaded=0,
        organisations_downloaded=0,
        open_incidents={},
        evidence=(),
        approvals=frozenset({"op"}),
        recall_in_force=False,
        api_requests=requests,
        api_users=users,
        api_flagged=flagged,
    )


@pytest.mark.parametrize(
    ("requests", "users", "flagged", "met"),
    [
        (0, 0, 0, {"min_api_requests": False, "min_api_users": False, "max_flagged_share": False}),
        (200, 3, 2, {"min_api_requests": True, "min_api_users": True, "max_flagged_share": True}),
        (200, 2, 3, {"min_api_requests": True, "min_api_users": False, "max_flagged_share": False}),
        (99, 9, 0, {"min_api_requests": False, "min_api_users": True, "max_flagged_share": True}),
    ],
)
def test_api_gates_judge_the_reported_use(
    requests: int, users: int, flagged: int, met: dict[str, bool]
) -> None:
    report = evaluate_gates(RULES, facts(requests, users, flagged), GOOD.now)
    judged = {gate.name: gate.met for gate in report.gates if gate.name in met}
    assert judged == met
    assert report.all_met is all(met.values())


def test_a_flagged_share_over_no_requests_is_not_met_and_says_so() -> None:
    report = evaluate_gates(RULES, facts(0, 0, 0), GOOD.now)
    share = next(gate for gate in report.gates if gate.name == "max_flagged_share")
    assert share.detail == "share of API requests flagged: no requests yet, at most 1.00%"


def test_api_use_and_downloads_are_decided_by_the_tiers_access() -> None:
    api_only = replace(GOOD, component=None, tier_components=frozenset(), tier_api_only=True)
    refused = decide(api_only, MACHINE)
    assert isinstance(refused, Deny)
    assert refused.reason is Reason.TIER_API_ONLY
    served = replace(api_only, api_use=True, tier_has_api=True, required_scope="")
    assert decide(served, MACHINE) == Allow()
    no_api = replace(GOOD, api_use=True, required_scope="")
    denied = decide(no_api, MACHINE)
    assert isinstance(denied, Deny)
    assert denied.reason is Reason.API_NOT_IN_TIER
    # API use needs no scope of the grantee's key, but the key must still be live.
    scoped = replace(served, key=key(scopes=frozenset({"keys"})))
    assert decide(scoped, MACHINE) == Allow()
    revoked = decide(replace(served, key=key(revoked=True)), MACHINE)
    assert isinstance(revoked, Deny)
    assert revoked.reason is Reason.KEY_REVOKED
