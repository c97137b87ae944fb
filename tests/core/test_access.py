"""The one access decision: each reason, its order, and properties over random facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.access import AccessFacts, Allow, Deny, GrantFacts, KeyFacts, Reason, decide
from stages.release import StageMachine

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MACHINE = StageMachine(("trusted_partner", "researcher", "public"))
GOOD = AccessFacts(
    now=NOW,
    account_status="active",
    grant=GrantFacts(
        status="active",
        tier="researcher",
        starts_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=30),
    ),
    release_ref="acme/llm:1.0",
    release_stage="researcher",
    release_status="active",
    component="weights",
    tier_components=frozenset({"weights", "code"}),
    key=KeyFacts(scopes=frozenset({"download"}), expires_at=NOW + timedelta(days=9), revoked=False),
    quota_left=3,
)


def grant(**changes: object) -> GrantFacts:
    assert GOOD.grant is not None
    return replace(GOOD.grant, **changes)  # type: ignore[arg-type]


def key(**changes: object) -> KeyFacts:
    assert GOOD.key is not None
    return replace(GOOD.key, **changes)  # type: ignore[arg-type]


def test_good_facts_are_allowed() -> None:
    assert decide(GOOD, MACHINE) == Allow()
    # A recall of another tier leaves this grant alone.
    assert decide(replace(GOOD, recalled_tiers=frozenset({"public"})), MACHINE) == Allow()
    assert decide(replace(GOOD, key=None, quota_left=None, component=None), MACHINE) == Allow()
    assert decide(replace(GOOD, release_stage="public"), MACHINE) == Allow()


@pytest.mark.parametrize(
    ("changes", "reason", "words"),
    [
        ({"key": key(revoked=True)}, Reason.KEY_REVOKED, "revoked"),
        ({"key": key(expires_at=NOW)}, Reason.KEY_EXPIRED, "expired on 2026-06-01"),
        ({"key": key(scopes=frozenset({"apply"}))}, Reason.KEY_SCOPE_MISSING, "'download' scope"),
        ({"account_status": "suspended"}, Reason.ACCOUNT_SUSPENDED, "suspended"),
        ({"account_status": "terminated"}, Reason.ACCOUNT_TERMINATED, "terminated"),
        ({"grant": None}, Reason.NO_GRANT, "no access grant for acme/llm:1.0"),
        ({"grant": grant(status="revoked")}, Reason.GRANT_REVOKED, "revoked"),
        ({"grant": grant(status="suspended")}, Reason.GRANT_SUSPENDED, "suspended"),
        ({"grant": grant(status="expired")}, Reason.GRANT_EXPIRED, "renew"),
        ({"grant": grant(expires_at=NOW)}, Reason.GRANT_EXPIRED, "expired on 2026-06-01"),
        ({"grant": grant(starts_at=NOW + timedelta(hours=1))}, Reason.GRANT_NOT_STARTED, "starts"),
        ({"release_status": "recalled"}, Reason.RELEASE_RECALLED, "recalled"),
        (
            {"recalled_tiers": frozenset({"researcher"})},
            Reason.RELEASE_RECALLED,
            "recalled for the researcher tier",
        ),
        ({"release_status": "decommissioned"}, Reason.RELEASE_DECOMMISSIONED, "no longer hosted"),
        ({"release_stage": "trusted_partner"}, Reason.TIER_NOT_OPEN, "not open to the researcher"),
        ({"release_stage": "draft"}, Reason.TIER_NOT_OPEN, "its stage is draft"),
        ({"grant": grant(tier="gone")}, Reason.TIER_NOT_OPEN, "not in the current policy"),
        ({"component": "eval_tools"}, Reason.COMPONENT_NOT_IN_TIER, "eval_tools component"),
        ({"quota_left": 0}, Reason.QUOTA_EXHAUSTED, "quota"),
    ],
)
def test_each_reason(changes: dict[str, object], reason: Reason, words: str) -> None:
    decision = decide(replace(GOOD, **changes), MACHINE)  # type: ignore[arg-type]
    assert isinstance(decision, Deny)
    assert decision.reason is reason
    assert words in decision.message


def test_the_most_fundamental_problem_is_named_first() -> None:
    everything_wrong = replace(
        GOOD,
        key=key(revoked=True),
        account_status="suspended",
        grant=grant(status="revoked"),
        release_status="recalled",
        quota_left=0,
    )
    order = []
    facts = everything_wrong
    for fix in (
        {"key": GOOD.key},
        {"account_status": "active"},
        {"grant": GOOD.grant},
        {"release_status": "active"},
        {"quota_left": 1},
    ):
        decision = decide(facts, MACHINE)
        assert isinstance(decision, Deny)
        order.append(decision.reason)
        facts = replace(facts, **fix)  # type: ignore[arg-type]
    assert order == [
        Reason.KEY_REVOKED,
        Reason.ACCOUNT_SUSPENDED,
        Reason.GRANT_REVOKED,
        Reason.RELEASE_RECALLED,
        Reason.QUOTA_EXHAUSTED,
    ]
    assert decide(facts, MACHINE) == Allow()


stages = st.sampled_from(MACHINE.stages)
statuses = st.sampled_from(["active", "recalled", "decommissioned"])
tiers = st.sampled_from(["trusted_partner", "researcher", "public"])


@given(
    stage=stages,
    status=statuses,
    tier=tiers,
    account=st.sampled_from(["active", "suspended", "terminated"]),
    grant_status=st.sampled_from(["active", "suspended", "revoked", "expired"]),
    offset_hours=st.integers(-1000, 1000),
    quota=st.none() | st.integers(-2, 5),
)
def test_allowed_only_when_every_condition_holds(
    stage: str,
    status: str,
    tier: str,
    account: str,
    grant_status: str,
    offset_hours: int,
    quota: int | None,
) -> None:
    facts = replace(
        GOOD,
        release_stage=stage,
        release_status=status,
        account_status=account,
        grant=grant(status=grant_status, tier=tier, expires_at=NOW + timedelta(hours=offset_hours)),
        quota_left=quota,
    )
    decision = decide(facts, MACHINE)
    should_allow = (
        account == "active"
        and grant_status == "active"
        and offset_hours > 0
        and status == "active"
        and stage != "draft"
        and MACHINE.reaches(stage, tier)
        and (quota is None or quota > 0)
    )
    assert isinstance(decision, Allow) is should_allow
    if isinstance(decision, Deny):
        assert decision.message
        assert decision.reason.value == decision.reason
