"""Approval routes, cooldowns after a denial, and the review and response clocks."""

from datetime import UTC, datetime, timedelta

import pytest

from policies import (
    ApplicationRules,
    Approval,
    AutoApprove,
    CoolingDown,
    MayApply,
    NeedsReview,
    ResponseClock,
    ReviewClock,
    RouteCode,
    approval_route,
    cooldown,
    response_clock,
    review_clock,
)
from policies.applications import domain_matches, email_domain


def rules(
    approval: Approval = Approval.EMAIL_DOMAIN,
    domains: tuple[str, ...] = ("uni.example", "*.edu", "*.ac.uk"),
) -> ApplicationRules:
    return ApplicationRules(
        approval=approval,
        allowed_domains=domains if approval is Approval.EMAIL_DOMAIN else (),
        cooldown_days=30,
        review_days=14,
        response_days=21,
        fields=(),
    )


DOMAIN_RULES = rules()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_on_acceptance_approves_whatever_the_email() -> None:
    route = approval_route(
        rules(Approval.ON_ACCEPTANCE), email="someone@example.com", email_verified=False
    )
    assert route == AutoApprove(
        "approved automatically on license acceptance", RouteCode.ON_ACCEPTANCE
    )
    assert route.automatic


def test_manual_reviews_even_an_allowed_domain() -> None:
    route = approval_route(rules(Approval.MANUAL), email="a@uni.edu", email_verified=True)
    assert route == NeedsReview(
        "needs review: this tier is reviewed by hand", RouteCode.MANUAL_TIER
    )
    assert not route.automatic


@pytest.mark.parametrize(
    ("email", "domain", "pattern"),
    [
        ("ada@uni.example", "uni.example", "uni.example"),
        ("ada@uni.edu", "uni.edu", "*.edu"),
        ("ada@cs.uni.edu", "cs.uni.edu", "*.edu"),
        ("ada@lab.cs.uni.edu", "lab.cs.uni.edu", "*.edu"),
        ("ada@ox.ac.uk", "ox.ac.uk", "*.ac.uk"),
        ("Ada@UNI.Example", "uni.example", "uni.example"),
        ("ADA@CS.UNI.EDU", "cs.uni.edu", "*.edu"),
        ("  ada@uni.edu  ", "uni.edu", "*.edu"),
        ("ada@uni.edu.", "uni.edu", "*.edu"),
        ('"odd@local"@uni.edu', "uni.edu", "*.edu"),
    ],
)
def test_verified_email_at_an_allowed_domain_is_approved(
    email: str, domain: str, pattern: str
) -> None:
    assert approval_route(DOMAIN_RULES, email=email, email_verified=True) == AutoApprove(
        f"approved automatically: verified email at {domain} matches {pattern}",
        RouteCode.DOMAIN_ALLOWED,
    )


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("ada@notedu", None),  # one label: no usable domain at all
        ("ada@edu", None),
        ("ada@uni.notedu", "uni.notedu"),  # ends with the letters "edu", not the label
        ("ada@notedu.com", "notedu.com"),
        ("ada@uni.edu.evil.com", "uni.edu.evil.com"),
        ("ada@sub.uni.example", "sub.uni.example"),  # exact patterns do not take subdomains
        ("ada@uni.example.com", "uni.example.com"),
        ("ada@xuni.example", "xuni.example"),
        ("ada@ac.uk", "ac.uk"),  # "*.ac.uk" is below ac.uk, not ac.uk itself
        ("ada@gmail.com", "gmail.com"),
    ],
)
def test_other_domains_need_review(email: str, domain: str | None) -> None:
    route = approval_route(DOMAIN_RULES, email=email, email_verified=True)
    if domain is None:
        assert route.code is RouteCode.EMAIL_UNREADABLE
    else:
        assert route == NeedsReview(
            f"needs review: {domain} is not an allowed domain", RouteCode.DOMAIN_NOT_ALLOWED
        )


def test_a_lookalike_suffix_is_not_a_subdomain() -> None:
    narrow = rules(domains=("*.uni.edu",))
    assert approval_route(narrow, email="x@cs.uni.edu", email_verified=True).automatic
    for email in ("x@evil-uni.edu", "x@uni.edu", "x@notuni.edu"):
        route = approval_route(narrow, email=email, email_verified=True)
        assert route.code is RouteCode.DOMAIN_NOT_ALLOWED, email


def test_an_unverified_email_needs_review_even_at_an_allowed_domain() -> None:
    assert approval_route(DOMAIN_RULES, email="ada@uni.edu", email_verified=False) == NeedsReview(
        "needs review: email not verified", RouteCode.EMAIL_NOT_VERIFIED
    )


@pytest.mark.parametrize(
    "email", ["", "uni.edu", "@uni.edu", "ada@", "ada@uni..edu", "ada@-uni.edu", "ada@uni edu"]
)
def test_an_unreadable_email_needs_review(email: str) -> None:
    assert approval_route(DOMAIN_RULES, email=email, email_verified=True) == NeedsReview(
        f"needs review: cannot read a domain in the email address {email.strip()!r}",
        RouteCode.EMAIL_UNREADABLE,
    )


def test_internationalised_domains_compare_in_punycode() -> None:
    assert email_domain("ana@Universität.example") == "xn--universitt-y5a.example"
    idn = rules(domains=("*.xn--universitt-y5a.example",))
    route = approval_route(idn, email="ana@physik.universität.example", email_verified=True)
    assert route.automatic


def test_patterns_in_rules_built_by_hand_match_without_regard_to_case() -> None:
    assert domain_matches("cs.uni.edu", "*.EDU")
    assert domain_matches("uni.example", "Uni.Example")
    assert not domain_matches("edu", "*.edu")


def test_no_denial_means_one_may_apply() -> None:
    assert cooldown(DOMAIN_RULES, None, T0) == MayApply()
    assert MayApply().may_apply


@pytest.mark.parametrize(
    ("elapsed", "may_apply"),
    [
        (timedelta(0), False),
        (timedelta(days=29, hours=23, minutes=59, seconds=59), False),
        (timedelta(days=30), True),
        (timedelta(days=30, microseconds=1), True),
        (timedelta(days=400), True),
    ],
)
def test_cooldown_ends_exactly_cooldown_days_after_the_denial(
    elapsed: timedelta, may_apply: bool
) -> None:
    answer = cooldown(DOMAIN_RULES, T0, T0 + elapsed)
    assert answer.may_apply is may_apply
    if may_apply:
        assert answer == MayApply()
    else:
        assert answer == CoolingDown(
            until=T0 + timedelta(days=30),
            message="your last application for this tier was denied; "
            "you may apply again from 2026-03-31 12:00 UTC",
        )


def test_a_zero_day_cooldown_lets_one_apply_at_once() -> None:
    no_wait = ApplicationRules(Approval.MANUAL, (), 0, 14, 21, ())
    assert cooldown(no_wait, T0, T0) == MayApply()


@pytest.mark.parametrize(
    ("elapsed", "overdue", "days_waiting"),
    [
        (timedelta(0), False, 0),
        (timedelta(days=1) - timedelta(seconds=1), False, 0),
        (timedelta(days=1), False, 1),
        (timedelta(days=14), False, 14),  # the deadline itself is still on time
        (timedelta(days=14, seconds=1), True, 14),
        (timedelta(days=20, hours=5), True, 20),
        (-timedelta(hours=1), False, 0),  # a clock a little behind never shows negative days
    ],
)
def test_review_clock(elapsed: timedelta, overdue: bool, days_waiting: int) -> None:
    assert review_clock(DOMAIN_RULES, T0, T0 + elapsed) == ReviewClock(
        due_at=T0 + timedelta(days=14), overdue=overdue, days_waiting=days_waiting
    )


@pytest.mark.parametrize(
    ("elapsed", "expired"),
    [
        (timedelta(0), False),
        (timedelta(days=21), False),
        (timedelta(days=21, microseconds=1), True),
        (timedelta(days=60), True),
    ],
)
def test_response_clock(elapsed: timedelta, expired: bool) -> None:
    assert response_clock(DOMAIN_RULES, T0, T0 + elapsed) == ResponseClock(
        due_at=T0 + timedelta(days=21), expired=expired
    )
