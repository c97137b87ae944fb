"""The operator API's guard and its review queue: who may call it, the queue's filters
and cursor pages, one application, decisions one at a time and in bulk, each recorded
with the operator as the actor."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.db.models import Application
from gateway.runtime import Runtime
from tests.http.operators import OPS, applies, demote, error_of, evidence_by, key_holder
from tests.sample import publish
from tests.units import reading

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
QUEUE = f"{OPS}/applications"


async def status_of(rt: Runtime, application_id: str) -> str:
    async with reading(rt) as session:
        status = await session.scalar(
            select(Application.status).where(Application.id == application_id)
        )
    assert status is not None
    return str(status)


# --- the guard ---------------------------------------------------------------------------


async def test_no_key_is_401_and_an_unknown_key_is_401(client: Http, runtime: Runtime) -> None:
    bare = await client.get(QUEUE)
    assert bare.status_code == 401
    assert error_of(bare) == "key_invalid"
    wrong = await client.get(QUEUE, headers={"authorization": "Bearer rgk_nothing"})
    assert wrong.status_code == 401


async def test_a_key_without_the_admin_scope_is_403_even_for_an_operator(
    client: Http, runtime: Runtime
) -> None:
    holder = await key_holder(runtime, scopes=("keys",))
    answer = await client.get(QUEUE, headers=holder.auth)
    assert answer.status_code == 403
    assert error_of(answer) == "key_scope_missing"
    assert "'admin'" in answer.json()["message"]


async def test_an_admin_key_whose_account_is_no_longer_an_operator_is_403(
    client: Http, runtime: Runtime
) -> None:
    holder = await key_holder(runtime)
    assert (await client.get(QUEUE, headers=holder.auth)).status_code == 200
    await demote(runtime, holder.account_id)
    answer = await client.get(QUEUE, headers=holder.auth)
    assert answer.status_code == 403
    assert error_of(answer) == "not_operator"
    assert "not an operator" in answer.json()["message"]


async def test_every_operator_route_takes_the_admin_guard(client: Http) -> None:
    routes = [
        (route.path, handler)
        for route in client.app.routes
        if route.path.startswith(f"{OPS}/")
        for handler in getattr(route, "route_handlers", [])
        # Litestar's own answer to OPTIONS (CORS preflight) runs no handler of ours.
        if handler.http_methods != {"OPTIONS"}
    ]
    assert len(routes) >= 4  # a wrong prefix would make this pass on nothing
    unguarded = [
        path for path, handler in routes if "admin" not in handler.parsed_fn_signature.parameters
    ]
    assert unguarded == []


# --- the queue ---------------------------------------------------------------------------


async def test_the_queue_walks_every_page_once_in_order(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    # Two share a submission time: the id breaks the tie, so neither is lost or repeated.
    ids = [
        await applies(runtime, f"a{i}@corp.example", T0 + timedelta(hours=i // 2)) for i in range(7)
    ]
    holder = await key_holder(runtime)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        answer = await client.get(QUEUE, params=params, headers=holder.auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    expected = sorted(ids, key=lambda i: (ids.index(i) // 2, i))
    assert seen == expected
    first = (await client.get(QUEUE, headers=holder.auth)).json()["items"][0]
    assert first["id"] == expected[0]
    assert first["applicant"] in {"a0@corp.example", "a1@corp.example"}
    # trusted_partner is reviewed within 10 days in the default policy.
    assert first["review"]["due_at"].startswith("2030-03-11")


async def test_the_queue_filters_by_status_model_and_tier(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, model="acme/other")
    sample = await applies(runtime, "s@corp.example", T0)
    other = await applies(runtime, "o@corp.example", T0, model="acme/other")
    holder = await key_holder(runtime)
    by_model = await client.get(QUEUE, params={"model": "acme/other"}, headers=holder.auth)
    assert [i["id"] for i in by_model.json()["items"]] == [other]
    by_tier = await client.get(QUEUE, params={"tier": "researcher"}, headers=holder.auth)
    assert by_tier.json()["items"] == []
    decided = await client.post(
        f"{QUEUE}/{sample}/decision",
        json={"decision": "deny", "reason": "not a lab"},
        headers=holder.auth,
    )
    assert decided.status_code == 200, decided.text
    waiting = await client.get(QUEUE, headers=holder.auth)
    assert [i["id"] for i in waiting.json()["items"]] == [other]
    denied = await client.get(QUEUE, params={"status": "denied"}, headers=holder.auth)
    assert [i["id"] for i in denied.json()["items"]] == [sample]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "pending"}, "unknown_status"),
        ({"tier": "gold"}, "unknown_tier"),
        ({"model": "no slash"}, "invalid_model"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"limit": "201"}, "invalid_request"),
        ({"limit": "0"}, "invalid_request"),
    ],
)
async def test_bad_filters_and_cursors_are_400(
    client: Http, runtime: Runtime, params: dict[str, str], code: str
) -> None:
    holder = await key_holder(runtime)
    answer = await client.get(QUEUE, params=params, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == code


async def test_a_cursor_of_another_list_is_refused(client: Http, runtime: Runtime) -> None:
    holder = await key_holder(runtime)
    forged = base64.urlsafe_b64encode(b'["grants","2030-01-01T00:00:00+00:00","x"]').decode()
    answer = await client.get(QUEUE, params={"cursor": forged}, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == "invalid_cursor"


# --- one application ---------------------------------------------------------------------


async def test_show_and_decide_one_application_as_the_operator(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    application_id = await applies(runtime, "lab@corp.example", T0)
    holder = await key_holder(runtime)
    shown = await client.get(f"{QUEUE}/{application_id}", headers=holder.auth)
    assert shown.status_code == 200
    body = shown.json()
    assert body["applicant"] == "lab@corp.example"
    assert body["answers"]["organisation"] == "Lab"
    assert body["accepted_from"] == "203.0.113.7"
    assert [e["move"] for e in body["events"]] == ["submit"]

    approved = await client.post(
        f"{QUEUE}/{application_id}/decision", json={"decision": "approve"}, headers=holder.auth
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["grant_id"]
    assert approved.json()["events"][-1]["actor"] == holder.actor
    kinds = [row.kind for row in await evidence_by(runtime, holder.actor)]
    assert "application.approved" in kinds
    assert "grant.issued" in kinds


async def test_bad_decisions_are_refused_with_their_code(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    application_id = await applies(runtime, "lab@corp.example", T0)
    holder = await key_holder(runtime)
    url = f"{QUEUE}/{application_id}/decision"
    unknown = await client.post(url, json={"decision": "maybe"}, headers=holder.auth)
    assert (unknown.status_code, error_of(unknown)) == (400, "unknown_move")
    # The stage machine's refusal, as the console shows it.
    no_reason = await client.post(url, json={"decision": "deny"}, headers=holder.auth)
    assert no_reason.status_code == 409
    assert "a reason is required to deny" in no_reason.json()["message"]
    missing = await client.post(
        f"{QUEUE}/nope/decision", json={"decision": "approve"}, headers=holder.auth
    )
    assert (missing.status_code, error_of(missing)) == (404, "application_not_found")
    shapeless = await client.post(url, json={"reason": "x"}, headers=holder.auth)
    assert shapeless.status_code == 400
    assert await status_of(runtime, application_id) == "submitted"
    assert await evidence_by(runtime, holder.actor) == []
    await client.post(url, json={"decision": "approve"}, headers=holder.auth)
    again = await client.post(url, json={"decision": "approve"}, headers=holder.auth)
    assert again.status_code == 409


# --- bulk ----------------------------------------------------------------------------------


async def test_bulk_decide_answers_per_id(client: Http, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    first = await applies(runtime, "one@corp.example", T0)
    second = await applies(runtime, "two@corp.example", T0 + timedelta(hours=1))
    holder = await key_holder(runtime)
    answer = await client.post(
        f"{QUEUE}/decisions",
        json={"ids": [first, "missing", second, first], "decision": "deny", "reason": "full"},
        headers=holder.auth,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decided"], body["refused"]) == (2, 1)
    by_id = {item["id"]: item for item in body["results"]}
    assert [item["id"] for item in body["results"]] == [first, "missing", second]
    assert by_id[first]["status"] == "denied"
    assert by_id["missing"]["error"] == "application_not_found"
    assert by_id["missing"]["status"] is None
    assert await status_of(runtime, second) == "denied"
    assert len(await evidence_by(runtime, holder.actor, "application.denied")) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ids": [], "decision": "approve"}, "nothing_selected"),
        ({"ids": [str(i) for i in range(501)], "decision": "approve"}, "too_many_selected"),
        ({"ids": ["APP"], "decision": "deny"}, "reason_required"),
        ({"ids": ["APP"], "decision": "start_review"}, "unknown_move"),
        ({"ids": "APP", "decision": "approve"}, "invalid_request"),
    ],
)
async def test_a_bad_batch_decides_nothing(
    client: Http, runtime: Runtime, tmp_path: Path, body: dict[str, object], code: str
) -> None:
    await publish(runtime, tmp_path)
    application_id = await applies(runtime, "one@corp.example", T0)
    holder = await key_holder(runtime)
    ids = body["ids"]
    if isinstance(ids, list):
        body = body | {"ids": [application_id if i == "APP" else i for i in ids]}
    answer = await client.post(f"{QUEUE}/decisions", json=body, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == code
    assert await status_of(runtime, application_id) == "submitted"
    assert await evidence_by(runtime, holder.actor) == []
