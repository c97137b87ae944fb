"""GET /metrics: who may read it (loopback and private peers, or the metrics token; never
a forged X-Forwarded-For), and that each metric moves by exactly what happened: requests
by route template, refusals by reason, job runs and failures, cache lookups, the sealing
lag and the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import Evidence
from gateway.db.uow import UnitOfWork
from gateway.jobs.registry import BY_NAME, Job, run_job
from gateway.runtime import Runtime, build_runtime
from tests.accounts import create_account
from tests.backends import on_backends
from tests.units import reading

pytestmark = [pytest.mark.anyio, on_backends("sqlite+file")]
TOKEN = "metrics-token-0123456789abcdef"
PUBLIC = "203.0.113.9"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@asynccontextmanager
async def peer(
    settings: Settings, host: str, *, runtime: Runtime | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connection comes from `host`, to an app started as a server starts it."""
    app = create_app(runtime=runtime) if runtime else create_app(settings=settings)
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_loopback_reads_every_metric_family_in_the_text_format(settings: Settings) -> None:
    async with peer(settings, "127.0.0.1") as client:
        await client.get("/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "set-cookie" not in response.headers
    names = {name for name, _ in samples(response.text)}
    assert {
        "gateway_http_requests_total",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_http_request_duration_seconds_count",
        "gateway_evidence_sealing_lag_seconds",
        "gateway_db_pool_checked_out",
        "gateway_db_pool_size",
    } <= names


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "172.31.0.5", "192.168.1.1"])
async def test_loopback_and_private_peers_get_in(settings: Settings, host: str) -> None:
    async with peer(settings, host) as client:
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize("host", [PUBLIC, "172.32.0.1", "2001:db8::1", "testclient"])
async def test_other_peers_are_refused_with_how_to_get_in(settings: Settings, host: str) -> None:
    async with peer(settings, host) as client:
        response = await client.get("/metrics")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "metrics_forbidden"
    assert body["status"] == 403
    # No token is set: the answer says which setting makes one.
    assert "GATEWAY_METRICS_TOKEN" in body["message"]
    assert "loopback and private addresses" in body["message"]


async def test_the_metrics_token_lets_a_public_peer_in_and_a_wrong_one_does_not(
    settings: Settings,
) -> None:
    with_token = replace(settings, metrics_token=TOKEN)
    async with peer(with_token, PUBLIC) as client:
        right = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        wrong = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}x"})
        basic = await client.get("/metrics", headers={"authorization": f"Basic {TOKEN}"})
        none = await client.get("/metrics")
    assert right.status_code == 200
    assert "gateway_http_requests_total" in right.text
    assert [wrong.status_code, basic.status_code, none.status_code] == [403, 403, 403]
    assert wrong.json()["error"] == "metrics_forbidden"
    assert "metrics_token" in wrong.json()["message"]


async def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(
    settings: Settings,
) -> None:
    forged = {"x-forwarded-for": "127.0.0.1"}
    async with peer(settings, PUBLIC) as client:
        assert (await client.get("/metrics", headers=forged)).status_code == 403
    behind = replace(settings, trusted_proxies=("10.0.0.1",))
    async with peer(behind, PUBLIC) as client:
        assert (await client.get("/metrics", headers=forged)).status_code == 403


async def test_behind_a_trusted_proxy_the_forwarded_client_is_judged(settings: Settings) -> None:
    # nginx on loopback in front: the proxy's own address lets nobody in by itself.
    behind = replace(settings, trusted_proxies=("127.0.0.1",))
    async with peer(behind, "127.0.0.1") as client:
        public = await client.get("/metrics", headers={"x-forwarded-for": PUBLIC})
        private = await client.get("/metrics", headers={"x-forwarded-for": "10.9.8.7"})
    assert public.status_code == 403
    assert private.status_code == 200


async def test_metrics_is_not_in_the_api_reference(settings: Settings) -> None:
    async with peer(settings, "127.0.0.1") as client:
        document = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in document["paths"]
    assert "/healthz" in document["paths"]


async def test_requests_are_counted_by_route_template_and_status_class(
    settings: Settings,
) -> None:
    model = "/api/v1/models/{org}/{name}"
    async with peer(settings, "127.0.0.1") as client:
        before = await scrape(client)
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
        for name in ("one", "two"):
            assert (await client.get(f"/api/v1/models/acme/{name}")).status_code == 404
        after = await scrape(client)

    def moved(name: str, route: str, status: str) -> float:
        return value(after, name, route=route, status=status) - value(
            before, name, route=route, status=status
        )

    assert moved("gateway_http_requests_total", "/healthz", "2xx") == 3
    assert moved("gateway_http_request_duration_seconds_count", "/healthz", "2xx") == 3
    # Two paths, one template: the raw paths are never labels.
    assert moved("gateway_http_requests_total", model, "4xx") == 2
    assert moved("gateway_http_requests_total", model, "2xx") == 0
    # The first scrape itself, answered before the second read the counts.
    assert moved("gateway_http_requests_total", "/metrics", "2xx") == 1
    assert not any("acme" in dict(labels).get("route", "") for _, labels in after)


async def test_a_refused_download_counts_its_reason(settings: Settings) -> None:
    async with peer(settings, "127.0.0.1") as client:
        before = await scrape(client)
        refused = await client.get("/d/not-a-token")
        after = await scrape(client)
    assert refused.status_code == 403
    assert refused.json()["error"] == "url_invalid"
    name = "gateway_access_refusals_total"
    assert value(after, name, reason="url_invalid") - value(before, name, reason="url_invalid") == 1
    assert value(after, name, reason="quota_exhausted") == value(
        before, name, reason="quota_exhausted"
    )
    assert (
        value(after, "gateway_http_requests_total", route="/d/{token}", status="4xx")
        - value(before, "gateway_http_requests_total", route="/d/{token}", status="4xx")
        == 1
    )


async def _works(_uow: UnitOfWork) -> str:
    return "did it"


async def _fails(_uow: UnitOfWork) -> str:
    raise RuntimeError("broken on purpose")


async def test_job_runs_and_failures_are_counted_by_job(
    settings: Settings, runtime: Runtime
) -> None:
    works = Job("test.works", timedelta(minutes=1), _works)
    fails = Job("test.fails", timedelta(minutes=1), _fails)
    async with peer(settings, "127.0.0.1") as client:
        before = await scrape(client)
        assert await run_job(runtime, works) == "did it"
        assert await run_job(runtime, works) == "did it"
        assert await run_job(runtime, fails) == "failed: broken on purpose"
        after = await scrape(client)

    def moved(name: str, job: str) -> float:
        return value(after, name, job=job) - value(before, name, job=job)

    assert moved("gateway_job_runs_total", "test.works") == 2
    assert moved("gateway_job_failures_total", "test.works") == 0
    assert moved("gateway_job_runs_total", "test.fails") == 1
    assert moved("gateway_job_failures_total", "test.fails") == 1


async def test_cache_hits_misses_and_bypasses_are_counted_by_cache(
    settings: Settings, runtime: Runtime
) -> None:
    cache = runtime.changes.cache("test.models", ["models"])

    async def load() -> str:
        return "row"

    async with peer(settings, "127.0.0.1") as client:
        before = await scrape(client)
        for key in ("a", "a", "a", "b"):
            assert await cache.get(key, load) == "row"
        runtime.changes.ttl = 0  # the caches off: every read goes to the database
        assert await cache.get("a", load) == "row"
        after = await scrape(client)

    def moved(result: str) -> float:
        name = "gateway_cache_lookups_total"
        return value(after, name, cache="test.models", result=result) - value(
            before, name, cache="test.models", result=result
        )

    assert [moved("hit"), moved("miss"), moved("bypass")] == [2, 2, 1]


async def test_the_pool_gauges_read_the_app_engines_pool(settings: Settings) -> None:
    async with peer(settings, "127.0.0.1") as client:
        found = await scrape(client)
    assert value(found, "gateway_db_pool_size") == 10
    # The scrape's own unit of work holds the one connection out while it reads.
    assert value(found, "gateway_db_pool_checked_out") == 1


async def test_the_sealing_lag_is_the_age_of_the_oldest_unsealed_row(settings: Settings) -> None:
    rt = build_runtime(settings)
    async with peer(settings, "127.0.0.1", runtime=rt) as client:
        assert value(await scrape(client), "gateway_evidence_sealing_lag_seconds") == 0
        await create_account(rt, "lag@example.org", operator=False, actor="test")
        async with reading(rt) as session:
            oldest = await session.scalar(select(func.min(Evidence.at)))
        assert oldest is not None
        now = oldest + timedelta(seconds=95.5)
        rt.clock = lambda: now
        assert value(await scrape(client), "gateway_evidence_sealing_lag_seconds") == 95.5
        assert "signed" in (await run_job(rt, BY_NAME["evidence.seal"]) or "")
        assert value(await scrape(client), "gateway_evidence_sealing_lag_seconds") == 0
