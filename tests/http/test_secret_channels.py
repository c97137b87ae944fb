"""Secrets leave only through their own channel: one-time links by mail (or the log), a
new key on the page that made it. Webhooks and the inbox hear of the event, never the
secret; and a reset is not announced to a webhook that did not ask for it. Pages that
carry a secret are neither cached nor referred."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.config import Settings, Webhook
from gateway.credentials.api_key_format import key_digest
from gateway.db.models import AccountToken, ApiKey
from gateway.identity.service import operator_setup_link
from gateway.notify.delivery import deliver_due_webhooks
from gateway.runtime import Runtime, build_runtime
from tests.fixtures.webhook_receiver import RECEIVER_SECRET, WebhookReceiver
from tests.http.portal import HTML, Http, Mailbox, confirm_email, submit
from tests.units import within

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
ADA = "ada@uni.edu"
OPS = "ops@lab.example"
# Anything that could be a token, a key or a part of one.
_CANDIDATE = re.compile(rb"[A-Za-z0-9_-]{16,}")
_KEY = re.compile(r"rgk_[0-9A-Za-z]{28}")


@dataclass
class Hooked:
    client: Http
    rt: Runtime
    receiver: WebhookReceiver


@pytest.fixture
async def hooked(settings: Settings, webhook_receiver: WebhookReceiver) -> AsyncIterator[Hooked]:
    """A gateway with two webhooks: one for every event, one that asks for resets."""
    with_hooks = replace(
        settings,
        webhooks=(
            Webhook(
                url=f"{webhook_receiver.url}/every", secret=RECEIVER_SECRET, allow_private=True
            ),
            Webhook(
                url=f"{webhook_receiver.url}/resets",
                secret=RECEIVER_SECRET,
                events=("account.reset_password",),
                allow_private=True,
            ),
        ),
    )
    rt = build_runtime(with_hooks)
    try:
        async with AsyncTestClient(app=create_app(settings=with_hooks)) as client:
            client.follow_redirects = False
            yield Hooked(client, rt, webhook_receiver)
    finally:
        await rt.close()


async def accepted_secrets(rt: Runtime, candidates: set[bytes]) -> list[bytes]:
    """The candidates the gateway would take as a one-time link or an API key."""
    digests = {hashlib.sha256(c).hexdigest(): c for c in candidates}
    keys = {key_digest(c.decode()): c for c in candidates}
    async with rt.sessionmaker() as session:
        links = (
            await session.scalars(
                select(AccountToken.token_sha256).where(AccountToken.token_sha256.in_(digests))
            )
        ).all()
        api_keys = (
            await session.scalars(
                select(ApiKey.secret_sha256).where(ApiKey.secret_sha256.in_(keys))
            )
        ).all()
    return [digests[d] for d in links] + [keys[d] for d in api_keys]


async def test_no_webhook_delivery_carries_a_secret_the_gateway_would_accept(
    hooked: Hooked, mailbox: Mailbox
) -> None:
    client, rt = hooked.client, hooked.rt
    # Every flow that makes a one-time link or a key.
    await submit(client, "/sign-up", "/sign-up", {"email": ADA, "password": PASSWORD})
    await submit(client, "/sign-up", "/sign-up", {"email": ADA, "password": PASSWORD})
    await submit(client, "/sign-in", "/sign-in", {"email": ADA, "password": PASSWORD})
    await submit(client, "/account", "/verify-email/resend", {})
    await submit(client, "/forgot-password", "/forgot-password", {"email": ADA})
    made = await submit(client, "/keys", "/keys", {"name": "laptop", "scopes": "download"})
    assert made.status_code == 201
    [key] = _KEY.findall(made.text)
    await submit(client, "/account", "/sign-out", {})
    setup = await within(rt, operator_setup_link)
    assert setup is not None
    token = setup.url.split("token=", 1)[1]
    await submit(
        client,
        f"/setup?token={token}",
        "/setup",
        {"token": token, "email": OPS, "password": PASSWORD, "display_name": "Ops"},
    )
    await submit(client, "/account", "/sign-out", {})
    mailed = [
        mailbox.token(ADA, "/verify-email"),
        mailbox.token(ADA, "/reset-password"),
        mailbox.token(OPS, "/verify-email"),
    ]
    await deliver_due_webhooks(rt)

    delivered = hooked.receiver.requests
    every = [r for r in delivered if r.path.endswith("/every")]
    resets = [r for r in delivered if r.path.endswith("/resets")]
    events = {r.headers["x-gateway-event"] for r in every}
    assert {"account.verify_email", "account.sign_up_attempted"} <= events
    # A reset goes only to a webhook that lists it, and without its link there too.
    assert "account.reset_password" not in events
    assert [r.headers["x-gateway-event"] for r in resets] == ["account.reset_password"]
    candidates = {c for r in delivered for c in _CANDIDATE.findall(r.body)}
    assert await accepted_secrets(rt, candidates) == []
    for secret in [*mailed, key]:
        assert all(secret.encode() not in r.body for r in delivered)
    # The secrets were real: the mailed ones and the key are accepted.
    assert len(await accepted_secrets(rt, {s.encode() for s in [*mailed, key]})) == 4
    # And the mailed ones still work, through the mailbox.
    assert (await confirm_email(client, mailbox, ADA)).status_code == 302


# --- pages that carry a secret ----------------------------------------------------------

SECRET_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def marked(answer: object) -> bool:
    headers = answer.headers  # type: ignore[attr-defined]
    return all(headers.get(name) == value for name, value in SECRET_HEADERS.items())


@pytest.mark.parametrize(
    "path", ["/verify-email?token=abc", "/reset-password?token=abc", "/setup?token=abc"]
)
async def test_one_time_link_pages_are_not_cached_or_referred(client: Http, path: str) -> None:
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200
    assert marked(page)


async def test_a_refused_link_and_a_new_key_are_not_cached_or_referred(
    client: Http, runtime: Runtime
) -> None:
    await client.get("/reset-password?token=abc", headers=HTML)
    refused = await submit(
        client,
        "/reset-password?token=abc",
        "/reset-password",
        {"token": "abc", "password": "a long enough password"},
    )
    assert refused.status_code == 400
    assert marked(refused)
    await submit(client, "/sign-up", "/sign-up", {"email": ADA, "password": PASSWORD})
    await submit(client, "/sign-in", "/sign-in", {"email": ADA, "password": PASSWORD})
    made = await submit(client, "/keys", "/keys", {"name": "laptop", "scopes": "download"})
    assert made.status_code == 201
    assert _KEY.search(made.text)
    assert marked(made)


async def test_pages_without_a_secret_are_not_marked(client: Http) -> None:
    for path in ("/", "/report"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 200
        assert not marked(page)
