"""The operator API of grants, an account's keys, enforcement and appeals: the lists'
cursor pages and filters, each move recorded with the operator as the actor, and bad
input, unknown rows and impossible moves refused (400, 404, 409) with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import Account, Appeal, EnforcementAction, Evidence, Grant
from gateway.db.uow import UnitOfWork
from gateway.enforcement import appeals, service
from gateway.grants.service import create_grant
from gateway.keys.service import CreatedKey, create_key
from gateway.runtime import Runtime
from stages.enforcement import EnforcementStep
from stages.names import parse_model_ref
from tests.accounts import create_account
from tests.http.operators import (
    OPS,
    PAGING_REFUSALS,
    demote,
    error_of,
    evidence_by,
    forged_cursor,
    key_holder,
)
from tests.sample import publish
from tests.units import reading, within

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
GRANTS = f"{OPS}/grants"
APPEALS = f"{OPS}/appeals"
BOB = "bob@example.org"


async def count(rt: Runtime, table: type[object]) -> int:
    async with reading(rt) as session:
        return await session.scalar(select(func.count()).select_from(table)) or 0


async def written(rt: Runtime) -> tuple[int, ...]:
    """How many grants, actions, appeals and evidence rows there are: what a refusal
    must leave as it was."""
    return tuple([await count(rt, t) for t in (Grant, EnforcementAction, Appeal, Evidence)])


async def walk(client: Http, url: str, auth: dict[str, str], **params: str) -> list[list[str]]:
    """The ids of every page of a list, page by page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        answer = await client.get(url, params=query, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def granted(
    rt: Runtime, email: str, at: datetime, *, tier: str = "researcher", model: str = "acme/sample"
) -> str:
    """A grant created at `at` (the account made first if it is new): its id."""
    async with reading(rt) as session:
        known = await session.scalar(select(Account.id).where(Account.email == email))
    if known is None:
        await create_account(rt, email, operator=False, actor="test")
    rt.clock = lambda: at
    grant = await within(
        rt,
        lambda uow: create_grant(
            uow, email=email, model=parse_model_ref(model), tier=tier, days=None, actor="test"
        ),
    )
    return grant.id


async def acted(
    rt: Runtime, step: EnforcementStep, email: str = BOB, *, days: int | None = None
) -> EnforcementAction:
    return await within(
        rt,
        lambda uow: service.enforce(
            uow,
            email=email,
            step=step,
            reason="broke the use guidance",
            days=days,
            incident_id=None,
            actor="test",
        ),
    )


async def appealed(rt: Runtime, account_id: str, action_id: str, at: datetime) -> str:
    rt.clock = lambda: at
    filed = await within(
        rt, lambda uow: appeals.appeal(uow, account_id, action_id, "I was travelling", None)
    )
    return filed.id


# --- the guard ---------------------------------------------------------------------------

NEW_ROUTES = [
    ("get", GRANTS),
    ("post", GRANTS),
    ("get", f"{GRANTS}/g1"),
    ("post", f"{GRANTS}/g1/suspend"),
    ("post", f"{GRANTS}/g1/revoke"),
    ("post", f"{GRANTS}/g1/reinstate"),
    ("get", f"{OPS}/accounts/{BOB}/keys"),
    ("post", f"{OPS}/accounts/{BOB}/keys/k1/revoke"),
    ("get", f"{OPS}/accounts/{BOB}/standing"),
    ("post", f"{OPS}/accounts/{BOB}/enforcement"),
    ("get", APPEALS),
    ("post", f"{APPEALS}/a1/uphold"),
    ("post", f"{APPEALS}/a1/overturn"),
]


async def test_every_route_refuses_no_key_no_admin_scope_and_a_non_operator(
    client: Http, runtime: Runtime
) -> None:
    scoped = await key_holder(runtime, "keys@lab.example", scopes=("keys",))
    # Only an operator may hold the scope: this one stops being an operator after.
    former = await key_holder(runtime, "former@lab.example")
    await demote(runtime, former.account_id)
    for method, url in NEW_ROUTES:
        bare = await client.request(method, url)
        assert (bare.status_code, error_of(bare)) == (401, "key_invalid"), (method, url)
        unscoped = await client.request(method, url, headers=scoped.auth)
        assert (unscoped.status_code, error_of(unscoped)) == (403, "key_scope_missing"), url
        demoted = await client.request(method, url, headers=former.auth)
        assert (demoted.status_code, error_of(demoted)) == (403, "not_operator"), (method, url)


# --- grants ------------------------------------------------------------------------------


async def test_grants_walk_every_page_once_newest_first(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    # Two at a time share a creation time: the id breaks the tie, so none is lost or repeated.
    ids = [
        await granted(runtime, f"g{i}@corp.example", T0 + timedelta(hours=i // 2)) for i in range(7)
    ]
    holder = await key_holder(runtime)
    pages = await walk(client, GRANTS, holder.auth, limit="3")
    assert [len(page) for page in pages] == [3, 3, 1]
    assert list(chain(*pages)) == sorted(ids, key=lambda i: (ids.index(i) // 2, i), reverse=True)
    first = (await client.get(GRANTS, headers=holder.auth)).json()["items"][0]
    assert (first["account"], first["model"], first["tier"], first["status"]) == (
        "g6@corp.example",
        "acme/sample",
        "researcher",
        "active",
    )
    assert first["created_at"].startswith("2030-03-01T12:00")
    assert first["expires_at"].startswith("2030-08-28")  # researcher: 180 days


async def test_grants_filter_by_email_model_tier_and_status(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, model="acme/other")
    sample = await granted(runtime, BOB, T0)
    other = await granted(runtime, BOB, T0 + timedelta(hours=1), model="acme/other")
    partner = await granted(runtime, "cy@example.org", T0 + timedelta(hours=2), tier="public")
    holder = await key_holder(runtime)
    suspended = await client.post(
        f"{GRANTS}/{other}/suspend", json={"reason": "audit"}, headers=holder.auth
    )
    assert suspended.status_code == 200, suspended.text

    async def ids(**params: str) -> list[str]:
        return list(chain(*await walk(client, GRANTS, holder.auth, **params)))

    assert await ids() == [partner, other, sample]
    assert await ids(email=BOB) == [other, sample]
    assert await ids(email=" bob@EXAMPLE.org ") == [other, sample]
    assert await ids(model="acme/other") == [other]
    assert await ids(tier="public") == [partner]
    assert await ids(status="suspended") == [other]
    assert await ids(email=BOB, status="active") == [sample]
    assert await ids(email="nobody@example.org") == []


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"status": "paused"}, "unknown_status", "status"),
        ({"tier": "gold"}, "unknown_tier", "tier"),
        ({"model": "no slash"}, "invalid_model", "no slash"),
        ({"email": "not-an-email"}, "invalid_email", "email"),
        *((params, code, "") for params, code in PAGING_REFUSALS),
        ({"cursor": forged_cursor("incidents")}, "invalid_cursor", "cursor"),
    ],
)
async def test_bad_grant_filters_and_cursors_are_400(
    client: Http, runtime: Runtime, params: dict[str, str], code: str, field: str
) -> None:
    holder = await key_holder(runtime)
    answer = await client.get(GRANTS, params=params, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == code
    assert field in answer.json()["message"]


async def test_create_a_grant_as_the_operator(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    answer = await client.post(
        GRANTS,
        json={"email": BOB, "model": "acme/sample", "tier": "researcher", "days": 10},
        headers=holder.auth,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["account_id"], body["model"], body["tier"], body["status"]) == (
        bob.id,
        "acme/sample",
        "researcher",
        "active",
    )
    assert body["created_by"] == holder.actor
    starts, ends = (datetime.fromisoformat(body[k]) for k in ("starts_at", "expires_at"))
    assert ends - starts == timedelta(days=10)
    [issued] = await evidence_by(runtime, holder.actor, "grant.issued")
    assert (issued.data["grant"], issued.account_id) == (body["id"], bob.id)
    shown = await client.get(f"{GRANTS}/{body['id']}", headers=holder.auth)
    assert (shown.status_code, shown.json()) == (200, body)
    # Without days, the tier's length: researcher grants last 180 days.
    default = await client.post(
        GRANTS,
        json={"email": BOB, "model": "acme/sample", "tier": "researcher"},
        headers=holder.auth,
    )
    assert default.status_code == 201, default.text
    starts, ends = (datetime.fromisoformat(default.json()[k]) for k in ("starts_at", "expires_at"))
    assert ends - starts == timedelta(days=180)


async def test_a_refused_grant_writes_nothing(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    good: dict[str, object] = {"email": BOB, "model": "acme/sample", "tier": "researcher"}
    before = await written(runtime)
    refusals: list[tuple[dict[str, object], int, str, str]] = [
        ({"email": "nobody@example.org"}, 404, "account_not_found", "nobody@example.org"),
        ({"model": "acme/missing"}, 404, "model_not_found", "acme/missing"),
        ({"model": "no slash"}, 400, "invalid_model", "no slash"),
        ({"tier": "gold"}, 400, "unknown_tier", "gold"),
        ({"days": 0}, 400, "invalid_days", "days"),
        ({"days": 4000}, 400, "invalid_days", "days"),
        ({"email": "not-an-email"}, 400, "invalid_email", "not-an-email"),
        ({"tier": None}, 400, "invalid_request", "tier"),
    ]
    for change, status, code, named in refusals:
        answer = await client.post(GRANTS, json=good | change, headers=holder.auth)
        assert (answer.status_code, error_of(answer)) == (status, code), change
        assert named in answer.json()["message"], answer.json()
    assert await written(runtime) == before
    assert await evidence_by(runtime, holder.actor) == []


async def test_suspend_reinstate_and_revoke_as_the_operator(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    grant_id = await granted(runtime, BOB, T0)
    holder = await key_holder(runtime)
    url = f"{GRANTS}/{grant_id}"
    for move, status, reason in [
        ("suspend", "suspended", "audit"),
        ("reinstate", "active", "audit passed"),
        ("revoke", "revoked", "left the lab"),
    ]:
        answer = await client.post(f"{url}/{move}", json={"reason": reason}, headers=holder.auth)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["status_reason"]) == (status, reason)
    recorded = await evidence_by(runtime, holder.actor)
    assert [(e.kind, e.data["reason"]) for e in recorded] == [
        ("grant.suspended", "audit"),
        ("grant.reinstated", "audit passed"),
        ("grant.revoked", "left the lab"),
    ]
    assert {e.data["grant"] for e in recorded} == {grant_id}
    shown = await client.get(url, headers=holder.auth)
    assert shown.json()["status"] == "revoked"


async def test_impossible_grant_moves_are_409_and_unknown_grants_404(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    grant_id = await granted(runtime, BOB, T0)
    holder = await key_holder(runtime)
    url = f"{GRANTS}/{grant_id}"
    again = await client.post(f"{url}/reinstate", json={"reason": "x"}, headers=holder.auth)
    assert (again.status_code, error_of(again)) == (409, "illegal_grant_move")
    assert "cannot reinstate a grant that is active" in again.json()["message"]
    blank = await client.post(f"{url}/suspend", json={"reason": "  "}, headers=holder.auth)
    assert blank.status_code == 400
    assert "reason" in blank.json()["message"]
    shapeless = await client.post(f"{url}/revoke", json={}, headers=holder.auth)
    assert (shapeless.status_code, error_of(shapeless)) == (400, "invalid_request")
    for path in ("nope", "nope/suspend"):
        method = "get" if path == "nope" else "post"
        missing = await client.request(
            method, f"{GRANTS}/{path}", json={"reason": "x"}, headers=holder.auth
        )
        assert (missing.status_code, error_of(missing)) == (404, "grant_not_found")
    revoked = await client.post(f"{url}/revoke", json={"reason": "gone"}, headers=holder.auth)
    assert revoked.status_code == 200
    final = await client.post(f"{url}/reinstate", json={"reason": "back"}, headers=holder.auth)
    assert (final.status_code, error_of(final)) == (409, "illegal_grant_move")
    assert [e.kind for e in await evidence_by(runtime, holder.actor)] == ["grant.revoked"]
    assert (await client.get(url, headers=holder.auth)).json()["status"] == "revoked"


# --- an account's keys -------------------------------------------------------------------


async def keys_of_bob(rt: Runtime) -> tuple[str, list[tuple[str, str]]]:
    """Bob's account and two keys of his: (id, secret) each."""
    bob = await create_account(rt, BOB, operator=False, actor="test")
    made = []
    for name, scopes in (("laptop", ("download",)), ("ci", ("download", "keys"))):

        async def make(
            uow: UnitOfWork, name: str = name, scopes: tuple[str, ...] = scopes
        ) -> CreatedKey:
            return await create_key(
                uow, account_id=bob.id, scopes=scopes, days=30, name=name, actor="test"
            )

        created = await within(rt, make)
        made.append((created.key.id, created.secret))
    return bob.id, made


async def test_an_accounts_keys_are_listed_without_their_secrets(
    client: Http, runtime: Runtime
) -> None:
    _, made = await keys_of_bob(runtime)
    holder = await key_holder(runtime)
    answer = await client.get(f"{OPS}/accounts/{BOB}/keys", headers=holder.auth)
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert [k["id"] for k in listed] == [key_id for key_id, _ in made]
    laptop = listed[0]
    assert set(laptop) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "state",
    }
    assert (laptop["name"], laptop["scopes"], laptop["state"]) == ("laptop", ["download"], "active")
    assert (laptop["last_used_at"], laptop["revoked_at"]) == (None, None)
    assert listed[1]["scopes"] == ["download", "keys"]
    for _, secret in made:
        assert secret not in answer.text
        assert secret[len(laptop["prefix"]) :] not in answer.text


async def test_revoking_a_key_as_the_operator(client: Http, runtime: Runtime) -> None:
    bob_id, made = await keys_of_bob(runtime)
    (laptop, secret), _ = made
    holder = await key_holder(runtime)
    url = f"{OPS}/accounts/{BOB}/keys/{laptop}/revoke"
    answer = await client.post(url, headers=holder.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "revoked"
    assert answer.json()["revoked_at"] is not None
    [revoked] = await evidence_by(runtime, holder.actor, "key.revoked")
    assert (revoked.data["key"], revoked.account_id) == (laptop, bob_id)
    # Revoked already: the same answer, and nothing recorded twice.
    again = await client.post(url, headers=holder.auth)
    assert (again.status_code, again.json()["revoked_at"]) == (200, answer.json()["revoked_at"])
    assert len(await evidence_by(runtime, holder.actor)) == 1
    listed = (await client.get(f"{OPS}/accounts/{BOB}/keys", headers=holder.auth)).json()
    assert [k["state"] for k in listed] == ["revoked", "active"]
    # The key opens nothing any more.
    used = await client.get("/api/v1/keys", headers={"authorization": f"Bearer {secret}"})
    assert (used.status_code, error_of(used)) == (403, "key_revoked")


async def test_keys_of_unknown_accounts_and_other_accounts_keys_are_404(
    client: Http, runtime: Runtime
) -> None:
    _, made = await keys_of_bob(runtime)
    await create_account(runtime, "cy@example.org", operator=False, actor="test")
    holder = await key_holder(runtime)
    bobs_key = made[0][0]
    before = await written(runtime)
    for method, url, status, code in [
        ("get", f"{OPS}/accounts/nobody@example.org/keys", 404, "account_not_found"),
        ("post", f"{OPS}/accounts/nobody@example.org/keys/{bobs_key}/revoke", 404,
         "account_not_found"),
        ("post", f"{OPS}/accounts/cy@example.org/keys/{bobs_key}/revoke", 404, "key_not_found"),
        ("post", f"{OPS}/accounts/{BOB}/keys/nope/revoke", 404, "key_not_found"),
        ("get", f"{OPS}/accounts/not-an-email/keys", 400, "invalid_email"),
    ]:  # fmt: skip
        answer = await client.request(method, url, headers=holder.auth)
        assert (answer.status_code, error_of(answer)) == (status, code), url
    assert await written(runtime) == before
    listed = (await client.get(f"{OPS}/accounts/{BOB}/keys", headers=holder.auth)).json()
    assert [k["state"] for k in listed] == ["active", "active"]


# --- standing and enforcement ------------------------------------------------------------


async def test_the_standing_of_an_account_with_no_actions(client: Http, runtime: Runtime) -> None:
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    answer = await client.get(f"{OPS}/accounts/{BOB}/standing", headers=holder.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["account_id"], body["email"], body["status"]) == (bob.id, BOB, "active")
    assert body["actions"] == []
    assert body["suggestion"]["step"] == "warn"
    missing = await client.get(f"{OPS}/accounts/nobody@example.org/standing", headers=holder.auth)
    assert (missing.status_code, error_of(missing)) == (404, "account_not_found")


async def test_warn_suspend_and_lift_as_the_operator(client: Http, runtime: Runtime) -> None:
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    url = f"{OPS}/accounts/{BOB}/enforcement"
    warned = await client.post(
        url, json={"action": "warn", "reason": "shared a link"}, headers=holder.auth
    )
    assert warned.status_code == 200, warned.text
    body = warned.json()
    assert (body["action"]["action"], body["action"]["created_by"]) == ("warn", holder.actor)
    assert body["suggested"]["step"] == "warn"
    assert body["standing"]["status"] == "active"

    suspended = await client.post(
        url, json={"action": "suspend", "reason": "shared it again", "days": 7}, headers=holder.auth
    )
    assert suspended.status_code == 200, suspended.text
    body = suspended.json()
    action = body["action"]
    assert body["suggested"]["step"] == "suspend"
    taken, ends = (datetime.fromisoformat(action[k]) for k in ("created_at", "ends_at"))
    assert ends - taken == timedelta(days=7)
    standing = body["standing"]
    assert (standing["status"], standing["status_reason"]) == ("suspended", "shared it again")
    assert [(a["action"]["action"], a["in_force"]) for a in standing["actions"]] == [
        ("suspend", True),
        ("warn", False),
    ]
    assert all(a["may_appeal"] and a["appeal"] is None for a in standing["actions"])

    lifted = await client.post(
        url, json={"action": "lift", "reason": "explained"}, headers=holder.auth
    )
    assert lifted.status_code == 200, lifted.text
    assert (lifted.json()["action"], lifted.json()["suggested"]) == (None, None)
    assert lifted.json()["standing"]["status"] == "active"
    shown = (await client.get(f"{OPS}/accounts/{BOB}/standing", headers=holder.auth)).json()
    assert shown == lifted.json()["standing"]
    assert shown["actions"][0]["action"]["ended_at"] is not None
    recorded = await evidence_by(runtime, holder.actor)
    assert [(e.kind, e.account_id) for e in recorded] == [
        ("account.warned", bob.id),
        ("account.suspended", bob.id),
        ("account.suspension_lifted", bob.id),
    ]
    assert recorded[1].data["suggested"] == "suspend"


async def test_terminate_is_final_and_a_later_step_is_409(client: Http, runtime: Runtime) -> None:
    await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    url = f"{OPS}/accounts/{BOB}/enforcement"
    ended = await client.post(
        url, json={"action": "terminate", "reason": "resold the weights"}, headers=holder.auth
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["standing"]["status"] == "terminated"
    before = await written(runtime)
    for action in ("suspend", "terminate", "lift"):
        again = await client.post(url, json={"action": action, "reason": "x"}, headers=holder.auth)
        assert (again.status_code, error_of(again)) == (409, "illegal_account_move"), action
    assert await written(runtime) == before


@pytest.mark.parametrize(
    ("email", "body", "status", "code"),
    [
        (BOB, {"action": "ban", "reason": "x"}, 400, "unknown_action"),
        (BOB, {"action": "warn", "reason": " "}, 400, "text_required"),
        (BOB, {"action": "warn", "reason": "x", "days": 3}, 400, "invalid_days"),
        (BOB, {"action": "suspend", "reason": "x", "days": 0}, 400, "invalid_days"),
        (BOB, {"action": "lift", "reason": "x", "days": 3}, 400, "invalid_request"),
        (BOB, {"action": "lift", "reason": "x"}, 409, "illegal_account_move"),
        (BOB, {"action": "warn", "reason": "x", "incident": "INC-0000-0000"}, 404,
         "incident_not_found"),
        ("nobody@example.org", {"action": "warn", "reason": "x"}, 404, "account_not_found"),
        ("ops@lab.example", {"action": "suspend", "reason": "x"}, 409, "own_account"),
    ],
)  # fmt: skip
async def test_bad_enforcement_is_refused_with_nothing_written(
    client: Http, runtime: Runtime, email: str, body: dict[str, Any], status: int, code: str
) -> None:
    await create_account(runtime, BOB, operator=False, actor="test")
    holder = await key_holder(runtime)
    before = await written(runtime)
    answer = await client.post(
        f"{OPS}/accounts/{email}/enforcement", json=body, headers=holder.auth
    )
    assert (answer.status_code, error_of(answer)) == (status, code), answer.text
    assert await written(runtime) == before


# --- appeals -----------------------------------------------------------------------------


async def test_appeals_walk_every_page_once_oldest_first(client: Http, runtime: Runtime) -> None:
    ids = []
    runtime.clock = lambda: T0
    for i in range(5):
        email = f"a{i}@corp.example"
        account = await create_account(runtime, email, operator=False, actor="test")
        warned = await acted(runtime, EnforcementStep.WARN, email)
        # Two at a time share a submission time: the id breaks the tie.
        submitted = T0 + timedelta(hours=i // 2)
        ids.append(await appealed(runtime, account.id, warned.id, submitted))
    holder = await key_holder(runtime)
    pages = await walk(client, APPEALS, holder.auth, limit="2")
    assert [len(page) for page in pages] == [2, 2, 1]
    expected = sorted(ids, key=lambda a: (ids.index(a) // 2, a))
    assert list(chain(*pages)) == expected
    first = (await client.get(APPEALS, headers=holder.auth)).json()["items"][0]
    assert (first["id"], first["status"], first["statement"]) == (
        expected[0],
        "pending",
        "I was travelling",
    )
    # The first two share a submission time; either may come first.
    assert first["account"] == f"a{ids.index(expected[0])}@corp.example"
    assert first["against"]["action"] == "warn"


async def test_overturning_a_suspension_lifts_it_as_the_operator(
    client: Http, runtime: Runtime
) -> None:
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    suspended = await acted(runtime, EnforcementStep.SUSPEND)
    appeal_id = await appealed(runtime, bob.id, suspended.id, suspended.created_at)
    holder = await key_holder(runtime)
    answer = await client.post(
        f"{APPEALS}/{appeal_id}/overturn", json={"reason": "it was not him"}, headers=holder.auth
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["id"], body["status"], body["decided_by"]) == (
        appeal_id,
        "overturned",
        holder.actor,
    )
    assert body["decision_reason"] == "it was not him"
    assert body["against"]["ended_at"] is not None
    standing = (await client.get(f"{OPS}/accounts/{BOB}/standing", headers=holder.auth)).json()
    assert standing["status"] == "active"
    assert standing["actions"][0]["appeal"]["status"] == "overturned"
    assert [e.kind for e in await evidence_by(runtime, holder.actor)] == [
        "appeal.overturned",
        "account.suspension_lifted",
    ]
    assert (await client.get(APPEALS, headers=holder.auth)).json()["items"] == []
    listed = await client.get(APPEALS, params={"status": "overturned"}, headers=holder.auth)
    assert [a["id"] for a in listed.json()["items"]] == [appeal_id]


async def test_upholding_leaves_the_action_standing(client: Http, runtime: Runtime) -> None:
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    suspended = await acted(runtime, EnforcementStep.SUSPEND)
    appeal_id = await appealed(runtime, bob.id, suspended.id, suspended.created_at)
    holder = await key_holder(runtime)
    answer = await client.post(
        f"{APPEALS}/{appeal_id}/uphold", json={"reason": "the logs say so"}, headers=holder.auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "upheld"
    assert answer.json()["against"]["ended_at"] is None
    [upheld] = await evidence_by(runtime, holder.actor)
    assert (upheld.kind, upheld.data["appeal"], upheld.account_id) == (
        "appeal.upheld",
        appeal_id,
        bob.id,
    )
    standing = (await client.get(f"{OPS}/accounts/{BOB}/standing", headers=holder.auth)).json()
    assert standing["status"] == "suspended"
    every = await walk(client, APPEALS, holder.auth, status="all")
    assert every == [[appeal_id]]
    assert await walk(client, APPEALS, holder.auth, status="pending") == [[]]


async def test_appeal_decisions_refused_with_nothing_written(
    client: Http, runtime: Runtime
) -> None:
    bob = await create_account(runtime, BOB, operator=False, actor="test")
    warned = await acted(runtime, EnforcementStep.WARN)
    appeal_id = await appealed(runtime, bob.id, warned.id, warned.created_at)
    holder = await key_holder(runtime)
    # An operator's own appeal: warned and appealed through the service, decided over HTTP.
    own_warning = await acted(runtime, EnforcementStep.WARN, holder.email)
    own_appeal = await appealed(runtime, holder.account_id, own_warning.id, own_warning.created_at)
    decided = await client.post(
        f"{APPEALS}/{appeal_id}/uphold", json={"reason": "stands"}, headers=holder.auth
    )
    assert decided.status_code == 200, decided.text
    before = await written(runtime)
    for url, body, status, code in [
        (f"{APPEALS}/{appeal_id}/overturn", {"reason": "changed my mind"}, 409,
         "illegal_appeal_move"),
        (f"{APPEALS}/{own_appeal}/overturn", {"reason": "mine"}, 409, "own_appeal"),
        (f"{APPEALS}/nope/uphold", {"reason": "x"}, 404, "appeal_not_found"),
        (f"{APPEALS}/{own_appeal}/uphold", {}, 400, "invalid_request"),
    ]:  # fmt: skip
        answer = await client.post(url, json=body, headers=holder.auth)
        assert (answer.status_code, error_of(answer)) == (status, code), url
    blank = await client.post(
        f"{APPEALS}/{own_appeal}/uphold", json={"reason": " "}, headers=holder.auth
    )
    assert blank.status_code == 400
    assert await written(runtime) == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "denied"}, "unknown_status"),
        *PAGING_REFUSALS,
        ({"cursor": forged_cursor("grants")}, "invalid_cursor"),
    ],
)
async def test_bad_appeal_filters_and_cursors_are_400(
    client: Http, runtime: Runtime, params: dict[str, str], code: str
) -> None:
    holder = await key_holder(runtime)
    answer = await client.get(APPEALS, params=params, headers=holder.auth)
    assert answer.status_code == 400
    assert error_of(answer) == code
