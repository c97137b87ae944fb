"""Transparency reports on SQLite and PostgreSQL: a draft built from the log, published,
signed and public at /transparency (HTML, JSON, CSV); a published report recomputes from
an export to the same figures, and a changed report or export is caught; a published
report is never changed."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway import evidence
from gateway.db.uow import unit_of_work
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.evidence_log import service as log
from gateway.runtime import Runtime
from gateway.transparency import service
from gateway.transparency.api import _schema
from gateway.transparency.cli import transparency
from gateway.transparency.recompute import RecomputeError, recompute
from stages import evidence as ev
from tests.backends import on_each_database
from tests.grantees import grantee, open_release
from tests.http.portal import HTML, submit
from tests.http.test_ops_pages import make_account, sign_in
from tests.http.test_usage import download_all
from tests.units import writing

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
OPERATOR = ev.Actor.account("operator-1")
AFTER_Q4 = datetime(2027, 1, 2, tzinfo=UTC)


async def decisions(rt: Runtime) -> None:
    """Applications in 2026-Q4: 12 researcher applications approved after two days,
    3 denied (two with the same reason written differently), 1 trusted-partner one
    withdrawn; one submitted in Q3 and decided in Q4; two incidents, one triaged."""
    at = datetime(2026, 10, 5, tzinfo=UTC)
    async with writing(rt) as session:

        def add(payload: Any, when: datetime) -> None:
            evidence.record(session, payload, actor=OPERATOR, at=when)

        for n in range(16):
            tier = "trusted_partner" if n == 15 else "researcher"
            add(ev.ApplicationSubmitted(f"app{n}", tier, None), at)
        add(ev.ApplicationSubmitted("old", "researcher", None), datetime(2026, 9, 1, tzinfo=UTC))
        for n in range(12):
            add(
                ev.ApplicationApproved(
                    f"app{n}", "researcher", "in_review", "approved", None, None
                ),
                at + timedelta(days=2, hours=n),
            )
        for n, reason in ((12, "Not a research use"), (13, "not a  research use "), (14, "Spam")):
            add(
                ev.ApplicationDenied(f"app{n}", "researcher", "in_review", "denied", reason, None),
                at,
            )
        add(
            ev.ApplicationWithdrawn(
                "app15", "trusted_partner", "submitted", "withdrawn", None, None
            ),
            at,
        )
        add(ev.ApplicationApproved("old", "researcher", "in_review", "approved", None, None), at)
        add(ev.IncidentReported("inc1", "misuse", 0), at)
        add(ev.IncidentReported("inc2", "safety", 0), at)
        add(
            ev.IncidentTriaged("inc1", "reported", "triaged", "high", None, None),
            at + timedelta(hours=3),
        )
        # After the period: not in its figures.
        add(ev.ApplicationSubmitted("late", "researcher", None), AFTER_Q4)


async def built(rt: Runtime, period: str = "2026-Q4", model: str | None = None) -> service.Report:
    rt.key_encryptor.create_if_missing()
    async with unit_of_work(rt) as uow:
        return await service.build(uow, period, model, actor=OPERATOR)


async def published(rt: Runtime, report_id: str) -> service.Report:
    async with unit_of_work(rt) as uow:
        return await service.publish(uow, report_id, actor=OPERATOR)


async def export(rt: Runtime) -> list[bytes]:
    stream = io.BytesIO()
    async with unit_of_work(rt) as uow:
        await log.write_export(uow, stream, since=None)
    return stream.getvalue().splitlines(keepends=True)


async def public_key(rt: Runtime) -> str:
    async with unit_of_work(rt) as uow:
        return await log.public_key(uow)


def shown(node: dict[str, Any], *path: str) -> str:
    for step in path:
        breakdown, label = step.split("=", 1)
        node = node["by"][breakdown][label]
    return str(node["shown"])


async def test_a_published_report_is_public_signed_and_recomputes_from_an_export(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    grantees = [await grantee(runtime, f"g{n}@uni{n}.example") for n in range(11)]
    files = [await download_all(client, who) for who in grantees]
    await decisions(runtime)
    runtime.clock = lambda: AFTER_Q4  # type: ignore[method-assign]

    draft = await built(runtime)
    figures = draft.body["figures"]
    assert draft.body["complete"] is True
    assert draft.body["min_count"] == 10
    assert shown(figures["applications_received"]) == "16"
    # One trusted-partner application would give itself away as 16 - 15: the researcher
    # count is suppressed with it.
    assert shown(figures["applications_received"], "tier=trusted_partner") == "< 10"
    assert shown(figures["applications_received"], "tier=researcher") == "suppressed"
    decided = figures["decisions"]
    assert shown(decided) == "17"
    assert shown(decided, "outcome=approved") == "13"
    assert shown(decided, "outcome=approved", "tier=researcher") == "13"
    assert shown(decided, "outcome=denied") == "< 10"
    # Reasons used fewer than min_count times are never labels.
    assert set(decided["by"]["outcome"]["denied"]["by"]["reason"]) == {"other reasons"}
    # Nearest rank over 16 waits: three denials at once, twelve approvals after 48 to
    # 59 hours, and the Q3 application 34 days on.
    assert figures["review_time"] == {"median_seconds": 52 * 3600, "p90_seconds": 59 * 3600}
    downloads = sum(len(f) for f in files)
    assert shown(figures["downloads"]) == str(downloads)
    assert shown(figures["downloads"], "stage=researcher") == str(downloads)
    assert figures["distinct_grantees_by_stage"]["researcher"]["shown"] == "11"
    assert shown(figures["active_grants"], "tier=researcher") == "11"
    assert shown(figures["incidents"]) == "< 10"
    assert figures["time_to_triage"] == {"median_seconds": None, "p90_seconds": None}
    jsonschema.validate(draft.document, _schema())

    report = await published(runtime, draft.id)
    assert report.signed_note is not None
    assert f"sha256:{report.sha256}" in report.signed_note

    # Public, for anyone: the list, the page, the JSON and the CSV.
    listed = await client.get("/api/v1/transparency/reports")
    assert listed.status_code == 200
    assert [r["period"] for r in listed.json()] == ["2026-Q4"]
    page = await client.get("/transparency/2026-Q4")
    assert page.status_code == 200
    assert "Transparency report 2026-Q4" in page.text
    index = await client.get("/transparency")
    assert 'href="/transparency/2026-Q4"' in index.text
    served = await client.get("/transparency/2026-Q4/report.json")
    assert served.status_code == 200
    jsonschema.validate(served.json(), _schema())
    csv = await client.get("/transparency/2026-Q4/report.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    rows = csv.text.splitlines()
    assert f"downloads,stage=researcher,{downloads},{downloads}" in rows
    assert "applications_received,tier=researcher,,suppressed" in rows
    assert (await client.get("/transparency/2025-Q4/report.json")).status_code == 404
    schema = await client.get("/transparency/schema/v1.json")
    assert schema.json() == _schema()
    assert schema.json()["$id"] == served.json()["report"]["schema"]

    # An auditor recomputes it from an export, with the log's key.
    lines, key = await export(runtime), await public_key(runtime)
    done = recompute(served.content, lines, key_text=key)
    assert done.leaves == report.body["checkpoint"]["tree_size"]
    assert done.summary().startswith("report of 2026-Q4 for the whole gateway:")

    # The same from the command line, with files.
    (tmp_path / "report.json").write_bytes(served.content)
    (tmp_path / "evidence.jsonl").write_bytes(b"".join(lines))
    (tmp_path / "key.txt").write_text(key)
    files_given = [str(tmp_path / n) for n in ("report.json", "evidence.jsonl")]
    checked = CliRunner().invoke(
        transparency, ["verify", *files_given, "--public-key", str(tmp_path / "key.txt")]
    )
    assert checked.exit_code == 0, checked.output
    assert checked.stdout == done.summary() + "\n"
    (tmp_path / "evidence.jsonl").write_bytes(b"".join(lines[:3]))
    refused = CliRunner().invoke(transparency, ["verify", *files_given])
    assert refused.exit_code == 1
    assert "the export holds 3 leaves" in refused.output

    # A figure changed after signing: the signature no longer names it; without the key,
    # the recomputation names the figure.
    changed = served.json()
    changed["report"]["figures"]["applications_received"]["count"] = 17
    with pytest.raises(RecomputeError, match="changed after it was signed"):
        recompute(json.dumps(changed).encode(), lines, key_text=key)
    with pytest.raises(
        RecomputeError,
        match=r"figures\.applications_received\.count: the report says 17, the export gives 16",
    ):
        recompute(json.dumps(changed).encode(), lines, key_text=None)
    # An export with one entry changed no longer gives the checkpoint's root.
    edited = [lines[0].replace(b'"v":1', b'"v":2', 1), *lines[1:]]
    with pytest.raises(RecomputeError, match="do not give the checkpoint's root"):
        recompute(served.content, edited, key_text=key)
    with pytest.raises(RecomputeError, match="holds 3 leaves"):
        recompute(served.content, lines[:3], key_text=key)

    # Published is for good: not again, not replaced, not changed in the database.
    async with unit_of_work(runtime) as uow:
        with pytest.raises(Conflict, match="already published"):
            await service.publish(uow, report.id, actor=OPERATOR)
    again = await built(runtime)
    async with unit_of_work(runtime) as uow:
        with pytest.raises(Conflict, match="never replaced"):
            await service.publish(uow, again.id, actor=OPERATOR)
    # A report counting some of the same rows would let a reader subtract: refused.
    month = await built(runtime, "2026-12", "acme/sample")
    async with unit_of_work(runtime) as uow:
        with pytest.raises(Conflict, match="the report of 2026-Q4 for every model is published"):
            await service.publish(uow, month.id, actor=OPERATOR)
    earlier = await built(runtime, "2026-Q3", "acme/sample")
    assert (await published(runtime, earlier.id)).signed_note is not None
    for statement in (
        "UPDATE transparency_reports SET body = '{}' WHERE published_at IS NOT NULL",
        "DELETE FROM transparency_reports WHERE published_at IS NOT NULL",
    ):
        with pytest.raises(DBAPIError, match="kept as published"):
            async with runtime.engine.begin() as connection:
                await connection.execute(text(statement))


async def test_a_report_of_one_model_and_the_refusals(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    runtime.key_encryptor.create_if_missing()
    draft = await built(runtime, "2026-12", "acme/sample")
    assert draft.scope == "acme/sample"
    assert draft.body["complete"] is False
    assert "enforcement_actions" not in draft.body["figures"]
    async with unit_of_work(runtime) as uow:
        with pytest.raises(
            Conflict,
            match=r"built before 2026-12 was over \(2027-01-01T00:00:00\+00:00, and 10 minutes",
        ):
            await service.publish(uow, draft.id, actor=OPERATOR)
    async with unit_of_work(runtime) as uow:
        with pytest.raises(InvalidInput, match="is not a period"):
            await service.build(uow, "2026-Q5", None, actor=OPERATOR)
        with pytest.raises(NotFound, match="no model acme/other"):
            await service.build(uow, "2026", "acme/other", actor=OPERATOR)
        with pytest.raises(NotFound, match="no transparency report nope"):
            await service.publish(uow, "nope", actor=OPERATOR)
    # A second draft replaces the first.
    second = await built(runtime, "2026-12", "acme/sample")
    async with unit_of_work(runtime) as uow:
        assert [r.id for r in await service.reports(uow, published_only=False)] == [second.id]
        assert await service.reports(uow, published_only=True) == []
    assert (await client.get("/transparency/2026-12/acme/sample")).status_code == 404
    assert (await client.get("/api/v1/transparency/reports?limit=0")).status_code == 400


async def test_a_draft_published_twice_at_once_is_published_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    runtime.clock = lambda: AFTER_Q4  # type: ignore[method-assign]
    draft = await built(runtime)

    async def attempt() -> str:
        try:
            await published(runtime, draft.id)
        except Conflict as exc:
            return exc.message
        return "published"

    outcomes = sorted(await asyncio.gather(attempt(), attempt()))
    assert outcomes == ["published", f"report {draft.id} is already published"]
    async with unit_of_work(runtime) as uow:
        [report] = await service.reports(uow, published_only=True)
    assert report.id == draft.id


async def test_an_operator_builds_reviews_and_publishes_in_the_console(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    runtime.key_encryptor.create_if_missing()
    client.app.state.runtime.clock = lambda: AFTER_Q4
    await make_account(runtime, "ops@lab.example", operator=True)
    await make_account(runtime, "ann@uni.example")
    await sign_in(client, "ann@uni.example")
    assert (await client.get("/ops/transparency", headers=HTML)).status_code == 403
    await client.post("/sign-out", headers=HTML)
    await sign_in(client, "ops@lab.example")

    page = "/ops/transparency"
    refused = await submit(client, page, page, {"period": "2026-Q9", "model": ""})
    assert refused.status_code == 400
    assert "&#39;2026-Q9&#39; is not a period" in refused.text
    assert "<title>Error: " in refused.text
    built = await submit(client, page, page, {"period": "2026-Q4", "model": "acme/sample"})
    assert built.status_code == 303
    review = built.headers["location"]
    shown = await client.get(review, headers=HTML)
    assert "Publish this report" in shown.text
    assert "Transparency report 2026-Q4: acme/sample" in shown.text
    # Not public until published.
    assert (await client.get("/transparency/2026-Q4/acme/sample")).status_code == 404
    done = await submit(client, review, f"{review}/publish", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/transparency/2026-Q4/acme/sample"
    public = await client.get(done.headers["location"])
    assert public.status_code == 200
    assert "SHA-256" in public.text
    again = await submit(client, review, f"{review}/publish", {})
    assert again.status_code == 409
    assert "already published" in again.text
