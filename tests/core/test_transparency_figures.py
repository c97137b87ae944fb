"""The fold of evidence into a transparency report: periods, percentiles, which rows
count where, and a property test that no suppressed count of a report built from random
evidence can be recovered from its published counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stages.suppression import Shown, suppress
from stages.transparency.figures import Figures, nearest_rank
from stages.transparency.report import cells, counts_of, overlaps, parse_period, published
from tests.core.test_suppression import alternative

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def entry(kind: str, at: datetime, data: dict[str, Any], **where: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "at": at.isoformat(),
        "model_id": where.get("model_id", 1),
        "release_id": where.get("release_id"),
        "account_id": where.get("account_id"),
        "data": data,
    }


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-Q1", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        ("2026-Q4", START, END),
        ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), END),
    ],
)
def test_periods_are_years_quarters_and_months_in_utc(
    text: str, start: datetime, end: datetime
) -> None:
    period = parse_period(text)
    assert (period.name, period.start, period.end) == (text, start, end)


@pytest.mark.parametrize("text", ["", "26", "2026-Q0", "2026-Q5", "2026-13", "2026-1", "9999"])
def test_other_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a period"):
        parse_period(text)


def test_reports_overlap_when_they_count_some_of_the_same_rows() -> None:
    year, q4, q3, november = (parse_period(p) for p in ("2026", "2026-Q4", "2026-Q3", "2026-11"))
    assert overlaps((year, ""), (q4, ""))
    assert overlaps((q4, "acme/llm"), (november, ""))
    assert overlaps((november, "acme/llm"), (q4, "acme/llm"))
    assert not overlaps((q4, "acme/llm"), (november, "acme/other"))
    assert not overlaps((q3, ""), (q4, ""))
    assert not overlaps((q3, ""), (november, "acme/llm"))


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 11))
    assert (nearest_rank(values, 0.5), nearest_rank(values, 0.9)) == (5, 9)
    assert nearest_rank([7], 0.9) == 7
    assert nearest_rank([3, 1, 2], 0.5) == 2


def test_what_counts_where() -> None:
    fold = Figures(START, END, model_id=1)
    before = START - timedelta(days=3)
    during = START + timedelta(days=3)
    rows = [
        entry("application.submitted", before, {"application": "a", "tier": "researcher"}),
        # An older name of application.approved still counts, once.
        entry("application.approve", during, {"application": "a", "tier": "researcher"}),
        entry("application.approved", during, {"application": "a", "tier": "researcher"}),
        entry("application.submitted", during, {"application": "b", "tier": "public"}),
        entry("application.submitted", during, {"application": "c", "tier": "public"}, model_id=2),
        entry("application.submitted", END, {"application": "d", "tier": "public"}),
        entry("grant.issued", before, {"grant": "g1", "tier": "researcher"}),
        entry("grant.issued", during, {"grant": "g2", "tier": "researcher"}),
        entry("grant.revoked", during, {"grant": "g1"}),
        entry("stage.promoted", before, {"to": "researcher"}, release_id=5),
        entry(
            "download.requested",
            during,
            {"outcome": "allowed", "new_download": True},
            release_id=5,
            account_id="x",
        ),
        entry(
            "download.requested",
            during,
            {"outcome": "allowed", "new_download": False},
            release_id=5,
            account_id="x",
        ),
        entry(
            "stage.rolled_back",
            during,
            {"from_": "researcher", "to": "draft", "reason": "r"},
            release_id=5,
        ),
        entry(
            "download.requested",
            during,
            {"outcome": "allowed", "new_download": True},
            release_id=5,
            account_id="y",
        ),
        entry("account.suspended", during, {"action": "a1"}),
        entry("no.such_kind", during, {}),
    ]
    for row in rows:
        fold.add(row)
    counts = counts_of(fold, 3)
    assert counts["applications_received"].value == 1
    assert counts["decisions"].by["outcome"]["approved"].value == 1
    assert fold.review_seconds == [6 * 86400]
    assert counts["active_grants"].value == 1
    assert {k: v.value for k, v in counts["downloads"].by["stage"].items()} == {
        "researcher": 1,
        "draft": 1,
    }
    # A model's report has no enforcement figures (accounts are the gateway's).
    assert "enforcement_actions" not in counts
    assert fold.release_actions == [
        {
            "at": during.isoformat(),
            "release_id": 5,
            "action": "rolled_back",
            "from": "researcher",
            "to": "draft",
            "reason": "r",
        }
    ]


_TIERS = st.sampled_from(["researcher", "public", "trusted_partner"])
_OUTCOMES = st.sampled_from(["approved", "denied", "withdrawn", "expired"])


@st.composite
def evidence(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for n in range(draw(st.integers(0, 40))):
        at = START + timedelta(hours=draw(st.integers(0, 2000)))
        tier = draw(_TIERS)
        rows.append(entry("application.submitted", at, {"application": f"a{n}", "tier": tier}))
        if draw(st.booleans()):
            outcome = draw(_OUTCOMES)
            reason = draw(st.sampled_from(["spam", "not research", "other"]))
            rows.append(
                entry(
                    f"application.{outcome}",
                    at + timedelta(hours=1),
                    {"application": f"a{n}", "tier": tier, "reason": reason},
                )
            )
    for n in range(draw(st.integers(0, 15))):
        at = START + timedelta(hours=draw(st.integers(0, 2000)))
        category = draw(st.sampled_from(["misuse", "safety"]))
        rows.append(entry("incident.reported", at, {"incident": f"i{n}", "category": category}))
    return rows


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(evidence(), st.sampled_from([3, 5]))
def test_no_suppressed_count_of_a_report_can_be_recovered(
    rows: list[dict[str, Any]], min_count: int
) -> None:
    fold = Figures(START, END, model_id=None)
    for row in rows:
        fold.add(row)
    values, relations = cells(counts_of(fold, min_count))
    shown = suppress(values, relations, min_count)
    figures = published(fold, min_count)
    for root in ("applications_received", "decisions", "incidents"):
        names = {n for n in values if n == root or n.startswith(f"{root}/")}
        tree = {n: values[n] for n in names}
        bound = [r for r in relations if r.total in names]
        cap = 2 * max(tree.values()) + 2 * min_count
        for name in sorted(names):
            if shown[name] is not Shown.PUBLISHED:
                found = alternative(name, tree, shown, bound, min_count, cap)
                assert found is not None, f"{name} = {values[name]} is recovered"
        # What a reader sees agrees with the suppression.
        node = figures[root]
        assert (node["count"] is None) == (shown[root] is not Shown.PUBLISHED)


def test_text_a_report_publishes_is_always_utf8() -> None:
    fold = Figures(START, END, model_id=None)
    at = START + timedelta(days=1)
    for n in range(3):
        fold.add(entry("application.denied", at, {"application": f"a{n}", "reason": "No\ud800"}))
    fold.add(entry("stage.rolled_back", at, {"to": "draft", "reason": "bad\udfff"}, release_id=1))
    figures = published(fold, 3)
    denied = figures["decisions"]["by"]["outcome"]["denied"]["by"]["reason"]
    assert list(denied) == ["no\ufffd"]
    assert figures["release_actions"][0]["reason"] == "bad\ufffd"
    assert json.dumps(figures, ensure_ascii=False).encode("utf-8")


def used(account: int, tier: str, requests: int, flagged: int, at: datetime) -> dict[str, Any]:
    data = {"event": f"e{account}-{at:%s}", "grant": f"g{account}", "tier": tier}
    data |= {"used_at": at.isoformat(), "requests": requests, "tokens": 0, "flagged": flagged}
    return entry("api_use.reported", at, data, account_id=f"a{account}", release_id=1)


def test_api_use_is_counted_by_tier_and_suppressed_like_every_count() -> None:
    figures = Figures(START, END, model_id=1)
    assert published(figures, 3)["api_use"] is None  # no service reported anything
    inside = START + timedelta(days=3)
    for account in range(4):
        figures.add(used(account, "api_preview", 100, 1 if account == 0 else 0, inside))
    figures.add(used(9, "public", 2, 0, inside))
    figures.add(used(8, "api_preview", 50, 0, END))  # after the period
    api = published(figures, 3)["api_use"]
    assert api["requests"]["count"] == 402
    # The public tier's 2 requests are below 3, so the API preview's 400 are hidden too:
    # the total minus them would give the 2 away.
    assert api["requests"]["by"]["tier"]["public"]["shown"] == "< 3"
    assert api["requests"]["by"]["tier"]["api_preview"]["shown"] == "suppressed"
    assert api["distinct_users"]["count"] == 5
    assert api["flagged_requests"]["shown"] == "< 3"
