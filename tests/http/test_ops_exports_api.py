"""The operator API's exports: applications, grants and enforcement actions as CSV and
JSON Lines that parse back to the rows, narrowed by their filters, streamed in batches
without losing or repeating a row, with formula cells neutralised, and every bad filter
refused with the error body before a byte of the export is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.applications import deciding
from gateway.enforcement.service import enforce
from gateway.exports import service
from gateway.runtime import Runtime
from stages.applications import ApplicationMove
from stages.enforcement import EnforcementStep
from tests.accounts import create_account
from tests.exports import csv_rows, jsonl_rows, plant_grants
from tests.http.operators import OPS, applies, error_of, key_holder
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
EXPORTS = f"{OPS}/exports"
# A cell a spreadsheet would run as a formula.
FORMULA = '=HYPERLINK("http://evil.example","click")'


async def decided(rt: Runtime, application_id: str, move: ApplicationMove, at: datetime,
                  reason: str | None = None) -> None:  # fmt: skip
    rt.clock = lambda: at
    await within(
        rt,
        lambda uow: deciding.decide(
            uow, application_id, move, operator="cli:ops@host", reason=reason
        ),
    )


async def three_applications(rt: Runtime, tmp_path: Path) -> list[str]:
    """Denied (reviewed after 3 h, decided after a day, the reason a formula), waiting,
    and approved at another tier 12 days after submission (past its 10-day deadline)."""
    await publish(rt, tmp_path)
    denied = await applies(rt, "denied@corp.example", T0)
    await decided(rt, denied, ApplicationMove.START_REVIEW, T0 + timedelta(hours=3))
    await decided(rt, denied, ApplicationMove.DENY, T0 + timedelta(days=1), FORMULA)
    waiting = await applies(rt, "waiting@corp.example", T0 + timedelta(days=2))
    late = await applies(rt, "late@corp.example", T0 + timedelta(days=3))
    await decided(rt, late, ApplicationMove.APPROVE, T0 + timedelta(days=15))
    return [denied, waiting, late]


async def test_applications_export_as_csv_parses_back_to_the_rows(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    denied, waiting, late = await three_applications(runtime, tmp_path)
    holder = await key_holder(runtime)
    answer = await client.get(
        f"{EXPORTS}/applications", params={"format": "csv"}, headers=holder.auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="applications-')
    assert disposition.endswith('.csv"')
    assert answer.content.splitlines()[0].decode() == ",".join(service.APPLICATION_COLUMNS)
    rows = csv_rows(answer.content)
    assert [row["id"] for row in rows] == [denied, waiting, late]
    first = rows[0]
    assert first["applicant"] == "denied@corp.example"
    assert (first["model"], first["tier"], first["status"]) == (
        "acme/sample",
        "trusted_partner",
        "denied",
    )
    assert first["submitted_at"] == T0.isoformat()
    assert first["review_started_at"] == (T0 + timedelta(hours=3)).isoformat()
    assert first["decided_at"] == (T0 + timedelta(days=1)).isoformat()
    assert first["decided_by"] == "cli:ops@host"
    assert (first["seconds_to_review"], first["seconds_to_decision"]) == ("10800", "86400")
    # trusted_partner is reviewed within 10 days in the default policy.
    assert first["review_due_at"] == (T0 + timedelta(days=10)).isoformat()
    assert first["overdue"] == "false"
    # The formula is text again: a quote in front, the rest as the operator wrote it.
    assert first["decision_reason"] == "'" + FORMULA
    second = rows[1]
    assert (second["status"], second["decided_at"], second["seconds_to_review"]) == (
        "submitted",
        "",
        "",
    )
    third = rows[2]
    assert third["review_started_at"] == ""  # approved without a start of review
    assert third["seconds_to_decision"] == str(12 * 86400)
    assert third["overdue"] == "true"


async def test_applications_export_as_json_lines_keeps_types_and_text(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    denied, _, _ = await three_applications(runtime, tmp_path)
    holder = await key_holder(runtime)
    # JSON Lines is the default.
    answer = await client.get(f"{EXPORTS}/applications", headers=holder.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["content-disposition"].endswith('.jsonl"')
    rows = jsonl_rows(answer.content)
    assert len(rows) == 3
    assert all(list(row) == list(service.APPLICATION_COLUMNS) for row in rows)
    first = rows[0]
    assert first["id"] == denied
    assert (first["seconds_to_review"], first["seconds_to_decision"]) == (10800, 86400)
    assert first["overdue"] is False
    assert first["decision_reason"] == FORMULA  # data, not a formula: left as stored
    assert rows[1]["decided_at"] is None
    assert rows[2]["overdue"] is True


async def test_accept_text_csv_gives_csv_unless_the_format_says_otherwise(
    client: Http, runtime: Runtime
) -> None:
    holder = await key_holder(runtime)
    headers = holder.auth | {"accept": "text/csv"}
    as_csv = await client.get(f"{EXPORTS}/enforcement", headers=headers)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    # No rows: the header alone.
    assert as_csv.text == ",".join(service.ENFORCEMENT_COLUMNS) + "\r\n"
    asked = await client.get(f"{EXPORTS}/enforcement", params={"format": "jsonl"}, headers=headers)
    assert asked.headers["content-type"].startswith("application/x-ndjson")
    assert asked.content == b""


async def test_application_filters_narrow_the_export(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    denied, waiting, late = await three_applications(runtime, tmp_path)
    holder = await key_holder(runtime)

    async def ids(**params: str) -> list[str]:
        answer = await client.get(f"{EXPORTS}/applications", params=params, headers=holder.auth)
        assert answer.status_code == 200, answer.text
        return [row["id"] for row in jsonl_rows(answer.content)]

    assert await ids(status="denied") == [denied]
    assert await ids(status="approved", model="acme/sample") == [late]
    assert await ids(model="acme/other") == []
    assert await ids(tier="public") == []
    # Half open: from `since` on, before `until`.
    assert await ids(since="2030-03-03", until="2030-03-04") == [waiting]
    assert await ids(since=(T0 + timedelta(days=3)).isoformat()) == [late]
    assert await ids(until="2030-03-01T09:00:00+00:00") == []


async def test_grants_export_has_every_row_once_across_batches(
    client: Http, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(runtime, tmp_path)
    planted = await plant_grants(runtime, "many@corp.example", 301, T0)
    # The client's app reads this when it opens the export: batches of 7 rows.
    monkeypatch.setattr(service, "EXPORT_BATCH", 7)
    holder = await key_holder(runtime)
    for fmt in ("csv", "jsonl"):
        answer = await client.get(f"{EXPORTS}/grants", params={"format": fmt}, headers=holder.auth)
        assert answer.status_code == 200, answer.text
        rows = csv_rows(answer.content) if fmt == "csv" else jsonl_rows(answer.content)
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)) == 301
        assert set(ids) == set(planted)
        times = [row["created_at"] for row in rows]
        assert times == sorted(times)
    row = rows[0]
    assert (row["account"], row["model"], row["tier"], row["status"]) == (
        "many@corp.example",
        "acme/sample",
        "trusted_partner",
        "active",
    )
    assert row["suspended_at"] is None
    assert row["revoked_at"] is None
    narrowed = await client.get(
        f"{EXPORTS}/grants",
        params={"since": (T0 + timedelta(minutes=10)).isoformat(), "status": "active"},
        headers=holder.auth,
    )
    assert len(jsonl_rows(narrowed.content)) == 301 - 20
    none = await client.get(f"{EXPORTS}/grants", params={"status": "revoked"}, headers=holder.auth)
    assert none.content == b""


async def test_enforcement_export_lists_actions_with_their_appeal_status(
    client: Http, runtime: Runtime
) -> None:
    for email in ("warned@corp.example", "suspended@corp.example"):
        await create_account(runtime, email, operator=False, actor="test")
    runtime.clock = lambda: T0
    for email, step, days in (
        ("warned@corp.example", EnforcementStep.WARN, None),
        ("suspended@corp.example", EnforcementStep.SUSPEND, 7),
    ):
        await within(
            runtime,
            lambda uow, email=email, step=step, days=days: enforce(
                uow,
                email=email,
                step=step,
                reason=f"+{step.value} for misuse",
                days=days,
                incident_id=None,
                actor="cli:ops@host",
            ),
        )
    holder = await key_holder(runtime)
    answer = await client.get(
        f"{EXPORTS}/enforcement", params={"format": "csv"}, headers=holder.auth
    )
    assert answer.status_code == 200, answer.text
    rows = sorted(csv_rows(answer.content), key=lambda row: row["action"])
    assert [(row["account"], row["action"]) for row in rows] == [
        ("suspended@corp.example", "suspend"),
        ("warned@corp.example", "warn"),
    ]
    suspended = rows[0]
    assert suspended["reason"] == "'+suspend for misuse"
    assert (suspended["actor"], suspended["at"]) == ("cli:ops@host", T0.isoformat())
    assert suspended["until"] == (T0 + timedelta(days=7)).isoformat()
    assert (suspended["lifted_at"], suspended["appeal_status"]) == ("", "")
    warned = await client.get(
        f"{EXPORTS}/enforcement", params={"action": "warn"}, headers=holder.auth
    )
    assert [row["account"] for row in jsonl_rows(warned.content)] == ["warned@corp.example"]


@pytest.mark.parametrize(
    ("kind", "params", "code", "words"),
    [
        ("applications", {"status": "pending"}, "unknown_status", "expected one of submitted"),
        ("applications", {"tier": "nobody"}, "unknown_tier", "unknown tier 'nobody'"),
        ("applications", {"model": "no/such/model"}, "invalid_model", ""),
        ("applications", {"since": "yesterday"}, "invalid_date", "since: invalid date"),
        ("grants", {"until": "2030-13-01"}, "invalid_date", "until: invalid date"),
        ("grants", {"status": "paused"}, "unknown_status", "active, suspended, revoked"),
        ("grants", {"since": "2030-03-02", "until": "2030-03-01"}, "invalid_date", "is after"),
        ("grants", {"since": "0001-01-01T00:00+01:00"}, "invalid_date", "out of range"),
        ("enforcement", {"action": "ban"}, "unknown_action", "warn, suspend, terminate"),
        ("enforcement", {"format": "xlsx"}, "unknown_format", "expected csv or jsonl"),
    ],
)  # fmt: skip
async def test_a_bad_filter_is_a_400_with_the_error_body(
    client: Http, runtime: Runtime, kind: str, params: dict[str, str], code: str, words: str
) -> None:
    holder = await key_holder(runtime)
    answer = await client.get(f"{EXPORTS}/{kind}", params=params, headers=holder.auth)
    assert answer.status_code == 400, answer.text
    assert error_of(answer) == code
    body = answer.json()
    assert set(body) == {"error", "message", "status"}
    assert body["status"] == 400
    assert words in body["message"]
    assert "content-disposition" not in answer.headers


@pytest.mark.parametrize("kind", ["applications", "grants", "enforcement"])
async def test_an_export_needs_an_operator_key(client: Http, runtime: Runtime, kind: str) -> None:
    bare = await client.get(f"{EXPORTS}/{kind}")
    assert bare.status_code == 401
    assert error_of(bare) == "key_invalid"
    applicant = await key_holder(runtime, "user@corp.example", operator=False, scopes=("keys",))
    refused = await client.get(f"{EXPORTS}/{kind}", headers=applicant.auth)
    assert refused.status_code == 403
    assert error_of(refused) == "key_scope_missing"


async def test_the_guard_answers_before_a_bad_format(client: Http) -> None:
    answer = await client.get(f"{EXPORTS}/grants", params={"format": "xlsx", "status": "x"})
    assert answer.status_code == 401
    assert error_of(answer) == "key_invalid"
