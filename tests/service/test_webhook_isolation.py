"""Webhook endpoints do not wait on each other: each has its own queue, a hung receiver
costs its own deliveries one timeout per run, a failing endpoint is left alone for a
while (and the console says so), and webhooks go to public addresses only unless the
endpoint allows private ones."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from gateway.config import ConfigError, Webhook, load_settings
from gateway.db.models import WebhookDelivery
from gateway.notify import addresses, endpoint_health, webhooks
from gateway.notify.delivery import DeliveryReport, deliver_due_webhooks
from gateway.notify.service import notify
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.units import within, writing

if TYPE_CHECKING:
    from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.anyio
T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET = "receiver-secret-0123456789abcdef"
TIMEOUT = 2.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def queue_events(rt: Runtime, count: int) -> None:
    account = await create_account(rt, "alice@uni.example", operator=False, actor="t")
    for n in range(count):
        async with writing(rt) as session:
            notify(
                session,
                rt.settings,
                account_id=account.id,
                kind="application.decided",
                subject=f"Decision {n}",
                body="Your application was decided.",
                link=None,
                now=rt.clock(),
                email=account.email,
                data={"n": n},
            )


async def rows(rt: Runtime, url: str) -> list[WebhookDelivery]:
    async with rt.sessionmaker() as session:
        found = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint == url)
            .order_by(WebhookDelivery.created_at)
        )
        return list(found)


@pytest.fixture
async def hung_url() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):  # read what comes, answer nothing, until closed
            pass

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"
    for writer in held:
        writer.close()
    server.close()


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    clock = Clock(T0)
    runtime.clock = clock
    return clock


async def test_a_hung_receiver_delays_only_its_own_deliveries(
    runtime: Runtime,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    hung_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", TIMEOUT)
    webhook_receiver.clock = clock
    hooks = (
        Webhook(hung_url, SECRET, (), allow_private=True),
        Webhook(webhook_receiver.url, SECRET, (), allow_private=True),
    )
    runtime.settings = replace(runtime.settings, webhooks=hooks)
    await queue_events(runtime, 4)

    started = time.monotonic()
    run = asyncio.create_task(deliver_due_webhooks(runtime))
    while len(webhook_receiver.requests) < 4:
        assert time.monotonic() - started < TIMEOUT / 2, "the healthy endpoint waited"
        await asyncio.sleep(0.01)
    report = await run
    elapsed = time.monotonic() - started

    # The hung endpoint cost one timeout, not one per event: its turn ended there.
    assert elapsed < TIMEOUT * 1.8
    assert report == DeliveryReport(sent=4, retried=1, held=3)
    hung = await rows(runtime, hung_url)
    assert sorted(r.attempts for r in hung) == [0, 0, 0, 1]
    [tried] = [r for r in hung if r.attempts]
    assert tried.last_error == f"no answer within {TIMEOUT:g} s"
    assert all(r.status == "delivered" for r in await rows(runtime, webhook_receiver.url))


async def test_a_failing_endpoint_is_left_alone_then_probed_and_the_console_says_so(
    runtime: Runtime, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.clock = clock
    url = webhook_receiver.url
    runtime.settings = replace(
        runtime.settings, webhooks=(Webhook(url, SECRET, (), allow_private=True),)
    )
    webhook_receiver.answers = [500] * endpoint_health.OPEN_AFTER
    await queue_events(runtime, 3)

    for failures in range(1, endpoint_health.OPEN_AFTER + 1):
        report = await deliver_due_webhooks(runtime)
        assert report == DeliveryReport(retried=1, held=2), failures
        clock.now += timedelta(hours=7)  # past every retry delay of the first delivery
        if failures < endpoint_health.OPEN_AFTER:
            [state] = await within(runtime, endpoint_health.all_health)
            assert not state.is_open(clock.now)
    [state] = await within(runtime, endpoint_health.all_health)
    assert state.failures == endpoint_health.OPEN_AFTER
    assert state.open_until is not None
    assert state.last_error == "HTTP 500 Internal Server Error"

    # Each run tried the oldest due delivery once, then its turn ended.
    assert sorted(r.attempts for r in await rows(runtime, url)) == [1, 1, 1]

    # While the circuit is open nothing is sent and no attempt is used.
    clock.now = state.open_until - timedelta(seconds=1)
    asked = len(webhook_receiver.requests)
    report = await deliver_due_webhooks(runtime)
    assert (report.sent, report.retried, report.failed) == (0, 0, 0)
    assert report.held >= 1
    assert len(webhook_receiver.requests) == asked
    assert sorted(r.attempts for r in await rows(runtime, url)) == [1, 1, 1]
    [status] = await within(runtime, endpoint_health.console)
    assert status.state(clock.now) == "left alone"
    assert status.pending == 3

    # Then one delivery probes; it is accepted, the circuit closes, the rest follow.
    clock.now = state.open_until
    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=1, held=2)
    [state] = await within(runtime, endpoint_health.all_health)
    assert (state.failures, state.open_until, state.last_success_at) == (0, None, clock.now)
    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=2)
    assert all(r.status == "delivered" for r in await rows(runtime, url))


def test_the_circuit_backs_off_longer_each_time_up_to_a_limit() -> None:
    waits = [endpoint_health.backoff(n) for n in range(endpoint_health.OPEN_AFTER, 12)]
    assert waits[0] == endpoint_health.FIRST_BACKOFF
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert waits[-1] == endpoint_health.MAX_BACKOFF
    assert endpoint_health.backoff(10_000) == endpoint_health.MAX_BACKOFF


def write_config(home: Path, url: str, extra: str = "") -> dict[str, str]:
    home.mkdir(exist_ok=True)
    (home / "gateway.toml").write_text(f'[[webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\n{extra}')
    return {"GATEWAY_HOME": str(home)}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://hooks.localhost/hook",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_webhook_urls_are_refused_at_load(tmp_path: Path, url: str) -> None:
    env = write_config(tmp_path / "home", url)
    with pytest.raises(ConfigError, match="allow_private = true"):
        load_settings(env)
    allowed = load_settings(write_config(tmp_path / "home", url, "allow_private = true\n"))
    assert allowed.webhooks[0].allow_private is True


def test_public_webhook_urls_and_names_load(tmp_path: Path) -> None:
    for url in ("https://hooks.lab.example/gateway", "https://93.184.216.34/hook"):
        settings = load_settings(write_config(tmp_path / "home", url))
        assert settings.webhooks[0].allow_private is False
    with pytest.raises(ConfigError, match="allow_private: expected true or false"):
        load_settings(write_config(tmp_path / "home", url, 'allow_private = "yes"\n'))


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
    runtime: Runtime,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The name points at the receiver on loopback: were it not checked, it would arrive.
    async def to_loopback(host: str, port: int) -> list[str]:
        assert host == "hooks.lab.example"
        return ["127.0.0.1"]

    monkeypatch.setattr(addresses, "resolve", to_loopback)
    url = f"http://hooks.lab.example:{webhook_receiver.port}/hooks/gateway"
    runtime.settings = replace(runtime.settings, webhooks=(Webhook(url, SECRET, ()),))
    await queue_events(runtime, 1)

    assert await deliver_due_webhooks(runtime) == DeliveryReport(retried=1)
    assert webhook_receiver.requests == []
    [row] = await rows(runtime, url)
    assert row.last_error is not None
    assert row.last_error.startswith("refused: hooks.lab.example resolves to 127.0.0.1")


async def test_a_public_name_is_pinned_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    monkeypatch.setattr(addresses, "resolve", public)
    target = await addresses.public_target("https://hooks.example:8443/in?x=1")
    assert target == addresses.Target(
        url="https://93.184.216.34:8443/in?x=1",
        host_header="hooks.example:8443",
        sni_hostname="hooks.example",
    )

    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    monkeypatch.setattr(addresses, "resolve", mixed)
    with pytest.raises(addresses.PrivateAddress, match=r"10\.0\.0\.7"):
        await addresses.public_target("https://hooks.example/in")


async def test_the_console_lists_each_endpoint_with_its_state(
    runtime: Runtime, clock: Clock, refused_port: int, settings: Any
) -> None:
    from litestar.testing import AsyncTestClient

    from gateway.app import create_app
    from gateway.identity.passwords import hash_password
    from tests.http.portal import submit

    url = f"http://127.0.0.1:{refused_port}/hook"
    hooks = (Webhook(url, SECRET, (), allow_private=True),)
    runtime.settings = replace(runtime.settings, webhooks=hooks)
    await queue_events(runtime, 2)
    for _ in range(endpoint_health.OPEN_AFTER):
        await deliver_due_webhooks(runtime)
        clock.now += timedelta(hours=7)
    operator = await create_account(runtime, "ops@lab.example", operator=True, actor="t")
    async with writing(runtime) as session:
        from gateway.db.models import Account

        row = await session.get_one(Account, operator.id)
        row.password_hash = hash_password("correct horse battery")

    app = create_app(settings=replace(settings, webhooks=hooks))
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        app.state.runtime.clock = lambda: clock.now - timedelta(hours=7)
        signed = await submit(
            client,
            "/sign-in",
            "/sign-in",
            {"email": "ops@lab.example", "password": "correct horse battery", "next": "/ops"},
        )
        assert signed.status_code == 302
        page = await client.get("/ops/webhooks", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert url in page.text
    assert "left alone" in page.text
    assert "ConnectError" in page.text
