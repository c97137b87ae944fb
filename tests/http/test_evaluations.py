"""External evaluators: a grantee of a tier marked `evaluators = true` (the suite's
trusted partners) submits an evaluation result for a release open to them; it is
attributed to them, marked external, and counted by the promotion gates. Anyone else is
refused with the reason, and a bad result writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import EvidenceAttachment
from gateway.grants.service import create_grant
from gateway.runtime import Runtime
from gateway.staging.promotion import attach_evidence
from tests.backends import on_each_database
from tests.grantees import MODEL, grantee, open_release
from tests.http.operators import OPS, error_of, key_holder
from tests.http.portal import HTML, csrf_token
from tests.http.test_ops_pages import make_account, sign_in
from tests.sample import publish
from tests.units import reading, within

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
EVALUATIONS = "/api/v1/models/acme/sample/releases/1.0/evaluations"
RED_TEAM = "evidence evaluation/red-team = pass"


async def attachments(rt: Runtime) -> int:
    async with reading(rt) as session:
        return int(await session.scalar(select(func.count()).select_from(EvidenceAttachment)) or 0)


async def test_an_external_evaluators_result_is_theirs_and_counts_for_the_gate(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)  # researcher: the public gate wants a red team
    evaluator = await grantee(runtime, "aisi@institute.example", tier="trusted_partner")
    holder = await key_holder(runtime)
    before = await client.get(f"{OPS}/releases/acme/sample/1.0/stage", headers=holder.auth)
    assert any(RED_TEAM in unmet for unmet in before.json()["gates"]["unmet"])

    report = b"%PDF-1.7 red-team findings\n"
    sent = await client.post(
        EVALUATIONS,
        data={"name": "red-team", "result": "pass", "note": "48 hours, 6 testers"},
        files={"file": ("red-team.pdf", report, "application/pdf")},
        headers=evaluator.auth,
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["kind"], body["name"], body["result"]) == ("evaluation", "red-team", "pass")
    assert body["attached_by"] == f"account:{evaluator.account_id}"
    assert (body["external"], body["file_name"], body["file_size"]) == (
        True,
        "red-team.pdf",
        len(report),
    )
    after = (await client.get(f"{OPS}/releases/acme/sample/1.0/stage", headers=holder.auth)).json()
    assert not any(RED_TEAM in unmet for unmet in after["gates"]["unmet"])
    [shown] = [e for e in after["evidence"] if e["name"] == "red-team"]
    assert shown["external_evaluator"] == f"account:{evaluator.account_id}"

    # An operator's later result stands beside it; the evaluator's is never changed.
    await within(
        runtime,
        lambda uow: attach_evidence(
            uow, MODEL, "1.0", kind="evaluation", name="red-team", result="fail",
            file=None, note=None, actor="cli:op@lab",
        ),
    )  # fmt: skip
    listed = (
        await client.get(f"{OPS}/releases/acme/sample/1.0/evidence", headers=holder.auth)
    ).json()["items"]
    mine = [item for item in listed if item["external"]]
    assert [(m["result"], m["attached_by"]) for m in mine] == [
        ("pass", f"account:{evaluator.account_id}")
    ]


async def test_only_an_evaluators_grant_on_an_open_release_may_submit(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="trusted_partner")
    researcher = await grantee(runtime, "ada@uni.example", tier="researcher")
    evaluator = await grantee(runtime, "aisi@institute.example", tier="trusted_partner")
    result = {"name": "red-team", "result": "pass"}
    refused = await client.post(EVALUATIONS, json=result, headers=researcher.auth)
    assert (refused.status_code, error_of(refused)) == (403, "not_an_evaluator")
    assert "trusted_partner" in refused.json()["message"]
    assert (await client.post(EVALUATIONS, json=result)).status_code == 401
    for bad in ({"name": "Red Team", "result": "pass"}, {"result": "pass"}, {"name": "x"}):
        answer = await client.post(EVALUATIONS, json=bad, headers=evaluator.auth)
        assert answer.status_code == 400, (bad, answer.text)
    await publish(runtime, tmp_path, version="2.0")  # a draft: open to nobody
    draft = await client.post(
        "/api/v1/models/acme/sample/releases/2.0/evaluations", json=result, headers=evaluator.auth
    )
    assert draft.status_code in (403, 404), draft.text
    assert await attachments(runtime) == 0, "nothing refused was written"


async def test_an_evaluator_sends_a_result_from_the_portal(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    account_id = await make_account(runtime, "aisi@institute.example")
    await within(
        runtime,
        lambda uow: create_grant(
            uow,
            email="aisi@institute.example",
            model=MODEL,
            tier="trusted_partner",
            days=None,
            actor="test",
        ),
    )
    page = "/models/acme/sample/releases/1.0/evaluate"
    assert (await client.get(page, headers=HTML)).status_code in (302, 303), "sign in first"
    await sign_in(client, "aisi@institute.example")
    shown = await client.get(page, headers=HTML)
    assert shown.status_code == 200
    assert 'for="evaluation-name"' in shown.text
    token = await csrf_token(client, page)
    bad = await client.post(
        page,
        data={"name": "Red Team", "result": "pass", "_csrf_token": token},
        files={"file": ("", b"")},
        headers=HTML,
    )
    assert bad.status_code == 400
    assert "Red Team" in bad.text, "the form keeps what was typed"
    sent = await client.post(
        page,
        data={"name": "red-team", "result": "pass", "_csrf_token": token},
        files={"file": ("findings.pdf", b"%PDF-1.7\n", "application/pdf")},
        headers=HTML,
    )
    assert sent.status_code == 200, sent.text
    assert "Recorded evaluation/red-team = pass with findings.pdf" in sent.text
    async with reading(runtime) as session:
        row = await session.scalar(select(EvidenceAttachment))
    assert row is not None
    assert (row.attached_by, row.external) == (f"account:{account_id}", True)
    forged = await client.post(
        page, data={"name": "red-team", "result": "fail"}, files={"file": ("", b"")}, headers=HTML
    )
    assert forged.status_code == 403
