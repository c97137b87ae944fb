"""The operator API of grants: the list's cursor pages and filters, each move recorded
with the operator as the actor, and bad input, unknown grants and impossible moves
refused (400, 404, 409) with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.db.models import Account, Appeal, EnforcementAction, Evidence, Grant
from gateway.grants.service import create_grant
from gateway.runtime import Runtime
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


# --- the guard ---------------------------------------------------------------------------

NEW_ROUTES = [
    ("get", GRANTS),
    ("post", GRANTS),
    ("get", f"{GRANTS}/g1"),
    ("post", f"{GRANTS}/g1/suspend"),
    ("post", f"{GRANTS}/g1/revoke"),
    ("post", f"{GRANTS}/g1/reinstate"),
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
