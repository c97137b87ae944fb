"""Structured access over HTTP: an inference service verifies grantees' keys for an
API-only stage (the shipped policy's api_preview), spends their rate limits and credits
exactly, reports the use it served, and the promotion gate reads that use."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.api_access.front import VerifyInFront
from gateway.api_access.service_accounts import create_service
from gateway.app import create_app
from gateway.config import Settings
from gateway.credentials.api_key_format import new_api_key
from gateway.db.models import Account, ApiKey, ApiUsageEvent, Evidence
from gateway.errors import InvalidInput
from gateway.evidence_log.service import seal
from gateway.grants.service import create_grant
from gateway.keys.service import create_key, revoke_key
from gateway.metrics import registry as metrics_registry
from gateway.runtime import Runtime, build_runtime
from gateway.staging.promotion import stage_status
from gateway.staging.service import move_release
from gateway.staging.yanks import yank
from gateway.usage.service import roll_up, usage_report
from stages.release import Move
from tests.backends import on_each_database
from tests.grantees import MODEL, Grantee, grantee, open_release
from tests.http.portal import HTML, submit
from tests.sample import publish
from tests.units import reading, within

pytestmark = [pytest.mark.anyio, on_each_database()]
VERIFY = "/api/v1/keys/verify"
USAGE = "/api/v1/usage"
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"
SHIPPED = Path(__file__).parents[2] / "policies" / "default.toml"
Client = AsyncTestClient  # type: ignore[type-arg]
REDIS = "redis://127.0.0.1:6379/0"
METERS = pytest.mark.parametrize("meter", ["database", "redis"])


def shipped_with(tmp_path: Path, rpm: int = 60, credits: int = 100_000) -> Path:
    text = SHIPPED.read_text()
    assert "requests_per_minute = 60\ncredits_per_month = 100000" in text
    policy = tmp_path / "policy.toml"
    policy.write_text(
        text.replace(
            "requests_per_minute = 60\ncredits_per_month = 100000",
            f"requests_per_minute = {rpm}\ncredits_per_month = {credits}",
        )
    )
    return policy


@pytest.fixture
def terms() -> tuple[int, int]:
    return (60, 100_000)


@pytest.fixture
def meter() -> str:
    """Where verification counts: the database, or Redis (the machine's, on loopback)."""
    return "database"


@pytest.fixture
def api_settings(
    settings: Settings, tmp_path: Path, terms: tuple[int, int], meter: str
) -> Settings:
    redis_url = REDIS if meter == "redis" else None
    return replace(settings, policy_file=shipped_with(tmp_path, *terms), redis_url=redis_url)


@pytest.fixture
async def rt(api_settings: Settings) -> AsyncIterator[Runtime]:
    runtime = build_runtime(api_settings)
    yield runtime
    await runtime.close()


@pytest.fixture(params=["in front", "route"])
async def http(api_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """The app as `gateway serve` runs it (verifications answered in front of Litestar),
    and the app alone (by its route): every test here holds for both."""
    app = create_app(settings=api_settings)
    served = VerifyInFront(app) if request.param == "in front" else app
    async with AsyncTestClient(app=served) as test_client:
        _SERVED[id(test_client)] = app.state.runtime
        yield test_client
        del _SERVED[id(test_client)]


# The runtime each open client's app serves with.
_SERVED: dict[int, Runtime] = {}


def runtime_of(http: Client) -> Runtime:
    return _SERVED[id(http)]


async def service_key(rt: Runtime, name: str = "inference") -> dict[str, str]:
    _, key = await within(rt, lambda uow: create_service(uow, name, days=None, actor="test"))
    return {"authorization": f"Bearer {key.secret}"}


async def preview(rt: Runtime, tmp_path: Path, email: str = "ada@lab.example") -> Grantee:
    await open_release(rt, tmp_path, to="api_preview")
    return await grantee(rt, email, tier="api_preview", scopes=("download",))


async def test_a_service_verifies_a_grantees_key(http: Client, rt: Runtime, tmp_path: Path) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    answer = await http.post(VERIFY, json={"key": ada.key, "model": "acme/sample"}, headers=service)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True
    assert body["reason"] is None
    assert (body["account"], body["grant"], body["tier"]) == (
        ada.account_id,
        ada.grant_id,
        "api_preview",
    )
    assert (body["organisation"], body["release"], body["components"]) == (
        "lab.example",
        "acme/sample:1.0",
        [],
    )
    assert (body["ratelimit"]["limit"], body["ratelimit"]["remaining"]) == (60, 59)
    assert body["credits"]["remaining"] == 100_000 - 1
    costly = await http.post(
        VERIFY, json={"key": ada.key, "model": "acme/sample:1.0", "cost": 500}, headers=service
    )
    assert costly.json()["credits"]["remaining"] == 100_000 - 501
    # An API-only grant downloads nothing.
    manifest = await http.post(MANIFEST, headers=ada.auth)
    assert manifest.status_code == 403
    assert manifest.json()["error"] == "tier_api_only"


async def test_refusals_keep_the_answers_shape_and_reason(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    bob = await grantee(rt, "bob@lab.example", tier="researcher")  # not open yet
    service = await service_key(rt)

    async def verify(key: str, model: str = "acme/sample") -> tuple[int, dict[str, object]]:
        answer = await http.post(VERIFY, json={"key": key, "model": model}, headers=service)
        return answer.status_code, answer.json()

    status, body = await verify(bob.key)
    assert (status, body["valid"], body["reason"]) == (403, False, "tier_not_open")
    status, body = await verify("rgk_" + "A" * 28)
    assert (status, body["reason"]) == (403, "key_invalid")
    status, body = await verify(ada.key, "acme/nothing")
    assert (status, body["error"]) == (404, "model_not_found")
    status, body = await verify(ada.key, "not a model")
    assert status == 400
    # A revoked key stays recognisable: revoked, and since when; never "invalid".
    key_id = await only_key(rt, ada.account_id)
    await within(
        rt, lambda uow: revoke_key(uow, account_id=ada.account_id, key_id=key_id, actor="test")
    )
    status, body = await verify(ada.key)
    assert (status, body["valid"], body["reason"]) == (403, False, "key_revoked")
    assert body["revoked_at"] is not None
    assert body["account"] == ada.account_id


async def only_key(rt: Runtime, account_id: str) -> str:
    async with reading(rt) as session:
        return (
            await session.scalars(select(ApiKey.id).where(ApiKey.account_id == account_id))
        ).one()


async def test_only_a_service_accounts_verify_key_may_verify(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    body = {"key": ada.key, "model": "acme/sample"}
    assert (await http.post(VERIFY, json=body)).status_code == 401
    refused = await http.post(VERIFY, json=body, headers=ada.auth)
    assert (refused.status_code, refused.json()["error"]) == (403, "key_scope_missing")
    # Nobody else may hold a verify key, and a service holds nothing else.
    with pytest.raises(InvalidInput, match="only service accounts"):
        await within(
            rt,
            lambda uow: create_key(
                uow, account_id=ada.account_id, scopes=["verify"], days=None, name="", actor="t"
            ),
        )
    service = await service_key(rt)
    assert (await http.post(VERIFY, json={**body, "cost": -1}, headers=service)).status_code == 400


@METERS
@pytest.mark.parametrize("terms", [(5, 100_000)])
async def test_the_rate_limit_is_exact_under_concurrency(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    body = {"key": ada.key, "model": "acme/sample"}
    answers = await asyncio.gather(
        *(http.post(VERIFY, json=body, headers=service) for _ in range(12))
    )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 7
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["reason"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


@METERS
@pytest.mark.parametrize("terms", [(1000, 7)])
async def test_credits_are_exact_under_concurrency(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    body = {"key": ada.key, "model": "acme/sample"}
    answers = await asyncio.gather(
        *(http.post(VERIFY, json=body, headers=service) for _ in range(15))
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [429] * 8
    assert {a.json()["reason"] for a in answers if a.status_code == 429} == {"credits_exhausted"}
    assert {a.json()["credits"]["remaining"] for a in answers if a.status_code == 429} == {0}


def event(number: int, key: str, **changes: object) -> dict[str, object]:
    return {
        "event_id": f"ev-{number}",
        "key": key,
        "release": "acme/sample:1.0",
        "time": "2026-12-02T10:00:00+00:00",
        "units": {"requests": 10, "tokens": 1000},
        "flags": {"safety_filter_triggered": number == 0},
        **changes,
    }


async def test_usage_is_kept_once_and_bad_events_are_refused_by_index(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    now = rt.clock().isoformat()
    batch = [
        event(0, ada.key, time=now),
        event(1, ada.key, time=now),
        event(2, ada.key, time="yesterday"),
        event(3, ada.key, time=now, units={"requests": -1}),
        event(4, "rgk_" + "B" * 28, time=now),
        event(1, ada.key, time=now),  # the same event again, in the same batch
    ]
    answer = await http.post(USAGE, json={"events": batch}, headers=service)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["refused"]) == (2, 1, 3)
    assert [(e["index"], e["status"], e["code"]) for e in body["events"]] == [
        (0, "accepted", None),
        (1, "accepted", None),
        (2, "refused", "invalid_time"),
        (3, "refused", "invalid_units"),
        (4, "refused", "key_invalid"),
        (5, "duplicate", None),
    ]
    again = await http.post(USAGE, json={"events": batch[:2]}, headers=service)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    async with reading(rt) as session:
        kept = await session.scalar(select(func.count()).select_from(ApiUsageEvent))
        evidence = await session.scalar(
            select(func.count()).select_from(Evidence).where(Evidence.kind == "api_use.reported")
        )
    assert (kept, evidence) == (2, 2)
    too_many = await http.post(USAGE, json={"events": [event(9, ada.key)] * 1001}, headers=service)
    assert (too_many.status_code, too_many.json()["error"]) == (413, "too_many_events")
    assert (await http.post(USAGE, json={"events": "x"}, headers=service)).status_code == 400
    assert (await http.post(USAGE, json={"events": batch}, headers=ada.auth)).status_code == 403


async def test_the_partner_gate_reads_the_reported_api_use(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    users = [await preview(rt, tmp_path)] + [
        await grantee(rt, f"user{n}@lab{n}.example", tier="api_preview") for n in range(5)
    ]
    service = await service_key(rt)
    now = rt.clock()
    batch = [
        event(n, user.key, time=now.isoformat(), units={"requests": 200})
        for n, user in enumerate(users)
    ]
    answer = await http.post(USAGE, json={"events": batch}, headers=service)
    assert answer.json()["accepted"] == 6
    status = await within(rt, lambda uow: stage_status(uow, MODEL, "1.0"))
    assert status.report is not None
    gates = {gate.name: gate for gate in status.report.gates}
    assert gates["min_api_requests"].met
    assert gates["min_api_requests"].actual == "1200"
    assert gates["min_api_users"].met
    assert gates["min_api_users"].actual == "6"
    # Event 0 was flagged: 200 of 1,200 requests is over the 1 % the policy allows.
    assert not gates["max_flagged_share"].met
    assert gates["max_flagged_share"].actual == "16.67%"


@METERS
async def test_the_grantee_sees_the_api_terms_and_what_is_left(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    await open_release(rt, tmp_path, to="api_preview")
    email, password = "ada@lab.example", "correct horse battery"
    await submit(http, "/sign-up", "/sign-up", {"email": email, "password": password})
    await submit(http, "/sign-in", "/sign-in", {"email": email, "password": password})
    await within(
        rt,
        lambda uow: create_grant(
            uow, email=email, model=MODEL, tier="api_preview", days=None, actor="test"
        ),
    )
    ada = await key_of(rt, email)
    service = await service_key(rt)
    spent = await http.post(
        VERIFY, json={"key": ada, "model": "acme/sample", "cost": 250}, headers=service
    )
    assert spent.status_code == 200, spent.text
    page = await http.get("/grants", headers=HTML)
    assert page.status_code == 200
    assert "Through the model's API only" in page.text
    assert "60 a minute for each of your API keys" in page.text
    assert "99,750 of 100,000 left this month" in page.text
    assert "/download" not in page.text


async def key_of(rt: Runtime, email: str) -> str:
    async with reading(rt) as session:
        account = (await session.scalars(select(Account).where(Account.email == email))).one()
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=["download"], days=None, name="", actor="test"
        ),
    )
    return created.secret


async def test_reported_use_reaches_the_usage_rollups(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    now = rt.clock().isoformat()
    batch = [event(n, ada.key, time=now, units={"requests": 5 + n}) for n in range(3)]
    assert (await http.post(USAGE, json={"events": batch}, headers=service)).status_code == 200
    await within(rt, seal)
    await within(rt, roll_up)
    report = await within(
        rt, lambda uow: usage_report(uow, "acme/sample:1.0", by="tier", start=None, end=None)
    )
    rows = {row.key: (row.api_requests, row.api_flagged) for row in report.rows}
    assert rows == {"api_preview": (18, 5)}  # 5 + 6 + 7 requests; event 0's 5 flagged


async def test_an_unreachable_redis_is_a_503_that_names_it(
    settings: Settings, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    nowhere = replace(
        settings, policy_file=shipped_with(tmp_path), redis_url="redis://127.0.0.1:1/0"
    )
    async with AsyncTestClient(app=create_app(settings=nowhere)) as http:
        answer = await http.post(
            VERIFY, json={"key": ada.key, "model": "acme/sample"}, headers=service
        )
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["redis"].startswith("unreachable: ")
    assert answer.status_code == 503
    assert answer.json()["error"] == "redis_unavailable"
    assert "Redis" in answer.json()["message"]
    assert "retry-after" in answer.headers


async def test_a_cached_verification_ends_when_the_key_does(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=ada.account_id, scopes=["download"], days=1, name="day", actor="test"
        ),
    )
    service = await service_key(rt)
    body = {"key": created.secret, "model": "acme/sample"}
    first = await http.post(VERIFY, json=body, headers=service)
    assert first.status_code == 200, first.text
    served = runtime_of(http)
    # The same process, well within the cache's second: only the clock has moved.
    served.clock = lambda: created.key.expires_at + timedelta(seconds=1)
    after = await http.post(VERIFY, json=body, headers=service)
    assert (after.status_code, after.json()["reason"]) == (403, "key_expired")
    # Another key of the same account, never cached, is still valid at that time.
    other = await http.post(VERIFY, json={**body, "key": ada.key}, headers=service)
    assert other.status_code == 200, other.text


async def test_made_up_keys_are_refused_without_crowding_the_cache(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    known = {"key": ada.key, "model": "acme/sample"}
    assert (await http.post(VERIFY, json=known, headers=service)).status_code == 200
    decisions = runtime_of(http).changes.cache("verification", ())
    assert len(decisions) == 1
    # Well-formed keys anyone can make: each is looked up and refused, and none is kept.
    for made_up in [new_api_key() for _ in range(20)]:
        answer = await http.post(VERIFY, json={**known, "key": made_up}, headers=service)
        assert (answer.status_code, answer.json()["reason"]) == (403, "key_invalid")
    assert len(decisions) == 1
    assert (await http.post(VERIFY, json=known, headers=service)).status_code == 200


async def test_a_malformed_verification_is_a_400_that_says_what_is_wrong(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    cases: list[tuple[object, str]] = [
        ({"key": 5, "model": "acme/sample"}, "$.key"),
        ({"key": ada.key}, "model"),
        ({"key": ada.key, "model": "acme/sample", "cost": "1"}, "$.cost"),
        ({"key": ada.key, "model": "acme/sample", "cost": True}, "$.cost"),
        (["acme/sample"], "object"),
    ]
    for body, named in cases:
        answer = await http.post(VERIFY, json=body, headers=service)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert named in answer.json()["message"], (body, answer.text)
    for raw in (b"", b"{", b"key=x"):
        answer = await http.post(
            VERIFY, content=raw, headers={**service, "content-type": "application/json"}
        )
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request"), raw
    # Keys of any shape are answered, never a 500: not this gateway's.
    for key in ("rgk_" + "é" * 28, "", " ", "rgk_" + "A" * 28 + "\u2028", ada.key[:-1] + "!"):
        answer = await http.post(VERIFY, json={"key": key, "model": "acme/sample"}, headers=service)
        assert (answer.status_code, answer.json()["reason"]) == (403, "key_invalid"), key
    # Who asks comes first: no key, or a key of any shape, is a 401 whatever the body.
    for bad in ({"key": ada.key, "model": ""}, ["x"]):
        assert (await http.post(VERIFY, json=bad)).status_code == 401
    odd = {"authorization": ("Bearer rgk_" + "\xe9" * 28).encode("latin-1")}
    answer = await http.post(VERIFY, json={"key": ada.key, "model": "acme/sample"}, headers=odd)
    assert (answer.status_code, answer.json()["error"]) == (401, "key_invalid")


@pytest.mark.parametrize("meter", ["redis"])
@pytest.mark.parametrize("terms", [(25, 100_000)])
async def test_redis_counts_stay_exact_when_it_forgets_the_script(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    body = {"key": ada.key, "model": "acme/sample"}
    assert (await http.post(VERIFY, json=body, headers=service)).status_code == 200
    # As after a restart of Redis: the next spends find no script, load it and go on,
    # and of 60 at once with 24 left exactly 24 pass.
    client = aioredis.from_url(REDIS)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    answers = await asyncio.gather(
        *(http.post(VERIFY, json=body, headers=service) for _ in range(60))
    )
    assert sorted(a.status_code for a in answers) == [200] * 24 + [429] * 36
    assert {a.json()["ratelimit"]["remaining"] for a in answers if a.status_code == 429} == {0}


def answered(route: str, status: str) -> float:
    """How many answers of `route` in `status` this process has counted."""
    for metric in metrics_registry.REQUESTS.collect():
        for sample in metric.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels == {"route": route, "status": status}:
                return sample.value
    return 0.0


async def test_every_verification_carries_the_apps_headers_and_metrics(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    body = {"key": ada.key, "model": "acme/sample"}
    before = (answered(VERIFY, "2xx"), answered(VERIFY, "4xx"))
    valid = await http.post(VERIFY, json=body, headers=service)
    unknown = await http.post(VERIFY, json={**body, "model": "acme/nothing"}, headers=service)
    anonymous = await http.post(VERIFY, json=body)
    for answer in (valid, unknown, anonymous):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-type"].startswith("application/json")
    assert (valid.status_code, unknown.status_code, anonymous.status_code) == (200, 404, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert unknown.json() == {
        "error": "model_not_found",
        "message": "no model acme/nothing",
        "status": 404,
    }
    assert (answered(VERIFY, "2xx"), answered(VERIFY, "4xx")) == (before[0] + 1, before[1] + 2)


async def test_unusual_verifications_get_the_routes_answer(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    service = await service_key(rt)
    body = {"key": ada.key, "model": "acme/sample"}
    with_query = await http.post(f"{VERIFY}?trace=1", json=body, headers=service)
    assert with_query.status_code == 200, with_query.text
    charset = {**service, "content-type": "application/json; charset=utf-8"}
    assert (await http.post(VERIFY, json=body, headers=charset)).status_code == 200
    nul = json.dumps({**body, "model": "acme/sample\u0000"}).encode()
    deep = b'{"key": ' + b"[" * 200 + b"]" * 200 + b', "model": "acme/sample"}'
    huge = json.dumps({**body, "pad": "x" * (2 * 1024 * 1024)}).encode()
    for raw, status in ((nul, 400), (deep, 400), (huge, 400)):
        answer = await http.post(
            VERIFY, content=raw, headers={**service, "content-type": "application/json"}
        )
        assert answer.status_code == status, (raw[:40], answer.text)
        assert answer.json()["status"] == status
    form = await http.post(VERIFY, data={"key": ada.key}, headers=service)
    assert (form.status_code, form.json()["error"]) == (400, "invalid_request")
    assert (await http.get(VERIFY, headers=service)).status_code == 405


async def test_verifying_a_model_without_a_version_passes_over_a_yanked_release(
    http: Client, rt: Runtime, tmp_path: Path
) -> None:
    ada = await preview(rt, tmp_path)
    await publish(rt, tmp_path, version="2.0")
    await within(
        rt,
        lambda uow: move_release(uow, MODEL, "2.0", Move.PROMOTE, target="api_preview", actor="t"),
    )
    service = await service_key(rt)
    ask = {"key": ada.key, "model": "acme/sample"}
    assert (await http.post(VERIFY, json=ask, headers=service)).json()["release"] == (
        "acme/sample:2.0"
    )
    await within(rt, lambda uow: yank(uow, MODEL, "2.0", reason="a bad tokenizer", actor="t"))
    passed_over = await http.post(VERIFY, json=ask, headers=service)
    assert passed_over.json()["release"] == "acme/sample:1.0"
    # By its exact version a yanked release is still served.
    exact = await http.post(VERIFY, json={**ask, "model": "acme/sample:2.0"}, headers=service)
    assert (exact.json()["valid"], exact.json()["release"]) == (True, "acme/sample:2.0")
