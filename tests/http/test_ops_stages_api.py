"""The operator API of stages: status with the gate report, promote (refused, overridden,
waiting for a second operator), approve, roll back, recall and reinstate, decommission;
each move recorded with the operator as the actor, and bad input refused with nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.runtime import Runtime
from gateway.staging.promotion import attach_evidence
from tests.grantees import MODEL, open_release
from tests.http.operators import OPS, error_of, evidence_by, key_holder
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
RELEASE = f"{OPS}/releases/acme/sample/1.0"


async def test_status_shows_the_gates_of_the_next_stage(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    answer = await client.get(f"{RELEASE}/stage", headers=holder.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["release"], body["stage"], body["status"]) == (
        "acme/sample:1.0",
        "draft",
        "active",
    )
    assert body["next_stage"] == "trusted_partner"
    assert body["gates"]["all_met"] is False
    assert any("internal-safety" in unmet for unmet in body["gates"]["unmet"])
    missing = await client.get(f"{OPS}/releases/acme/sample/9.9/stage", headers=holder.auth)
    assert missing.status_code == 404
    bad = await client.get(f"{OPS}/releases/acme/sa%20mple/1.0/stage", headers=holder.auth)
    assert bad.status_code == 400


async def test_promote_is_refused_with_unmet_gates_then_overridden_with_a_reason(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    refused = await client.post(f"{RELEASE}/stage/promote", json={}, headers=holder.auth)
    assert refused.status_code == 409
    assert error_of(refused) == "gates_unmet"
    assert "internal-safety" in refused.json()["message"]
    assert await evidence_by(runtime, holder.actor) == []
    overridden = await client.post(
        f"{RELEASE}/stage/promote",
        json={"to": "trusted_partner", "override_reason": "evaluated offline"},
        headers=holder.auth,
    )
    assert overridden.status_code == 200, overridden.text
    body = overridden.json()
    assert (body["moved"], body["overridden"], body["target"]) == (True, True, "trusted_partner")
    [promoted] = await evidence_by(runtime, holder.actor, "stage.promoted")
    assert promoted.data["override_reason"] == "evaluated offline"


async def test_promote_with_gates_met_then_a_second_operator_approves(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    first = await key_holder(runtime)
    second = await key_holder(runtime, "second@lab.example")
    await within(
        runtime,
        lambda uow: attach_evidence(
            uow,
            MODEL,
            "1.0",
            kind="evaluation",
            name="internal-safety",
            result="pass",
            file=None,
            note=None,
            actor="test",
        ),
    )
    promoted = await client.post(f"{RELEASE}/stage/promote", json={}, headers=first.auth)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["moved"] is True
    # To researcher: two operators must approve (and more gates wait); the first's
    # approval is recorded and kept though the promotion waits.
    waiting = await client.post(f"{RELEASE}/stage/promote", json={}, headers=first.auth)
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["approval_recorded"] is True
    assert len(await evidence_by(runtime, first.actor, "release.promotion_approved")) == 1
    approved = await client.post(f"{RELEASE}/stage/approve", headers=second.auth)
    assert approved.status_code == 202, approved.text
    status = (await client.get(f"{RELEASE}/stage", headers=first.auth)).json()
    assert status["approvals"] == sorted([first.actor, second.actor])
    assert status["gates"]["approvals_have"] == 2


async def test_rollback_needs_a_legal_target_and_a_reason(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    holder = await key_holder(runtime)
    no_reason = await client.post(
        f"{RELEASE}/stage/rollback", json={"to": "trusted_partner"}, headers=holder.auth
    )
    assert no_reason.status_code == 400
    illegal = await client.post(
        f"{RELEASE}/stage/rollback", json={"to": "public", "reason": "x"}, headers=holder.auth
    )
    assert (illegal.status_code, error_of(illegal)) == (409, "illegal_stage_move")
    assert await evidence_by(runtime, holder.actor) == []
    rolled = await client.post(
        f"{RELEASE}/stage/rollback",
        json={"to": "trusted_partner", "reason": "a leak"},
        headers=holder.auth,
    )
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["from_stage"], rolled.json()["to_stage"]) == (
        "researcher",
        "trusted_partner",
    )
    assert len(await evidence_by(runtime, holder.actor, "stage.rolled_back")) == 1


async def test_recall_then_reinstate_by_two_operators(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    first = await key_holder(runtime)
    second = await key_holder(runtime, "second@lab.example")
    unknown_tier = await client.post(
        f"{RELEASE}/recall", json={"reason": "leak", "tier": "gold"}, headers=first.auth
    )
    assert (unknown_tier.status_code, error_of(unknown_tier)) == (400, "unknown_tier")
    recalled = await client.post(f"{RELEASE}/recall", json={"reason": "leak"}, headers=first.auth)
    assert recalled.status_code == 200, recalled.text
    assert recalled.json()["recalled"] == ["acme/sample:1.0"]
    again = await client.post(
        f"{OPS}/models/acme/sample/recall", json={"reason": "leak"}, headers=first.auth
    )
    assert again.json()["already_recalled"] == ["acme/sample:1.0"]
    assert len(await evidence_by(runtime, first.actor, "release.recalled")) == 1
    waiting = await client.post(f"{RELEASE}/reinstate", headers=first.auth)
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["lifted"] is False
    lifted = await client.post(f"{RELEASE}/reinstate", json={}, headers=second.auth)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lifted"] is True
    status = (await client.get(f"{RELEASE}/stage", headers=first.auth)).json()
    assert status["status"] == "active"
    assert len(await evidence_by(runtime, second.actor, "release.reinstated")) == 1
    none_left = await client.post(f"{RELEASE}/reinstate", headers=first.auth)
    assert (none_left.status_code, error_of(none_left)) == (409, "no_recall")


async def test_decommission_as_the_cli_does(client: Http, runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    holder = await key_holder(runtime)
    bad_date = await client.post(
        f"{RELEASE}/decommission", json={"at": "next week", "reason": "old"}, headers=holder.auth
    )
    assert (bad_date.status_code, error_of(bad_date)) == (400, "invalid_date")
    assert await evidence_by(runtime, holder.actor) == []
    announced = await client.post(
        f"{RELEASE}/decommission",
        json={"at": "2099-06-30", "reason": "superseded"},
        headers=holder.auth,
    )
    assert announced.status_code == 201, announced.text
    body = announced.json()
    assert body["effective_at"].startswith("2099-06-30T00:00:00")
    assert body["phase"] == "announced"
    kinds = [row.kind for row in await evidence_by(runtime, holder.actor)]
    assert kinds == ["release.decommission_announced"]
