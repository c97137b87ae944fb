"""Delivering queued notifications to a real SMTP server and a real webhook receiver on
loopback: what arrives, retries with backoff, giving up, and never sending twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from gateway.config import ConfigError, Settings, Webhook, parse_smtp_url
from gateway.db.models import Account, Notification, WebhookDelivery
from gateway.notify.delivery import (
    CLAIM_LEASE,
    DeliveryReport,
    deliver_due_email,
    deliver_due_webhooks,
)
from gateway.notify.mail import (
    EMAIL_RETRY_DELAYS,
    MailError,
    build_message,
    send_message,
)
from gateway.notify.service import notify
from gateway.notify.webhooks import WEBHOOK_RETRY_DELAYS, sign, verify_signature
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.units import writing

if TYPE_CHECKING:
    from tests.fixtures.smtp import SmtpTestServer, TestCertificate
    from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.anyio

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
SENDER = "Release Gateway <gateway@gw.example>"
LINK = "http://testserver/verify-email?token=abc123"
SECRET = "test-webhook-secret-0123456789"


class Clock:
    """The runtime's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    clock = Clock(T0)
    runtime.clock = clock
    return clock


def use_settings(rt: Runtime, **changes: Any) -> Settings:
    """Give the runtime changed settings (deliver_* and notify() read them) and return them."""
    rt.settings = replace(rt.settings, **changes)
    return rt.settings


async def new_account(rt: Runtime, email: str = "alice@uni.example") -> Account:
    return await create_account(rt, email, operator=False, actor="t")


async def queue(
    rt: Runtime,
    account: Account,
    *,
    kind: str = "account.verify_email",
    subject: str = "Confirm your email address",
    body: str = "Confirm your address for your Release Gateway account.",
    link: str | None = LINK,
    data: dict[str, Any] | None = None,
) -> int:
    """notify() inside a transaction, as a service does; the notification's id."""
    async with writing(rt) as session:
        note = notify(
            session,
            rt.settings,
            account_id=account.id,
            kind=kind,
            subject=subject,
            body=body,
            link=link,
            now=rt.clock(),
            email=account.email,
            data=data,
        )
        await session.flush()
        return note.id


async def notification(rt: Runtime, note_id: int) -> Notification:
    async with rt.sessionmaker() as session:
        return await session.get_one(Notification, note_id)


async def deliveries(rt: Runtime) -> list[WebhookDelivery]:
    async with rt.sessionmaker() as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        return list(rows)


# --- email ---------------------------------------------------------------------------


@pytest.fixture
def mail_server(runtime: Runtime, clock: Clock, smtp_server: SmtpTestServer) -> SmtpTestServer:
    use_settings(runtime, smtp_url=smtp_server.url(), mail_from=SENDER)
    return smtp_server


async def test_email_is_sent_once_with_the_notification(
    runtime: Runtime, mail_server: SmtpTestServer, clock: Clock
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)

    assert await deliver_due_email(runtime) == DeliveryReport(sent=1)

    [mail] = mail_server.received
    assert mail.rcpt_tos == ("alice@uni.example",)
    assert mail.mail_from == "gateway@gw.example"
    message = mail.message
    assert message["To"] == "alice@uni.example"
    assert message["From"] == SENDER
    assert message["Subject"] == "Confirm your email address"
    assert message["Date"] == "Tue, 04 Mar 2031 05:06:07 +0000"
    assert message["Message-ID"].endswith("@gw.example>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    text = message.get_content()
    assert "Confirm your address for your Release Gateway account." in text
    assert LINK in text.splitlines()
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts, row.email_error) == ("sent", 1, None)
    assert row.email_next_attempt_at is None

    # Running again (or later) sends nothing new.
    assert await deliver_due_email(runtime) == DeliveryReport()
    clock.advance(timedelta(days=1))
    assert await deliver_due_email(runtime) == DeliveryReport()
    assert len(mail_server.received) == 1


def test_a_link_already_in_the_body_is_not_repeated() -> None:
    message = build_message(
        sender=SENDER,
        recipient="bob@lab.example",
        subject="Reset\nyour password",
        body=f"If it was you: {LINK}\nThe link works once.",
        link=LINK,
        message_id="<x@gw.example>",
        date=T0,
    )
    assert message.get_content().count(LINK) == 1
    # A line break in a subject cannot start a header of its own.
    assert message["Subject"] == "Reset your password"


async def test_refused_connection_is_retried_with_backoff_then_fails(
    runtime: Runtime, clock: Clock, refused_port: int
) -> None:
    use_settings(runtime, smtp_url=f"smtp://127.0.0.1:{refused_port}")
    account = await new_account(runtime)
    note_id = await queue(runtime, account)

    for attempt, delay in enumerate(EMAIL_RETRY_DELAYS, start=1):
        assert await deliver_due_email(runtime) == DeliveryReport(retried=1)
        row = await notification(runtime, note_id)
        assert (row.email_status, row.email_attempts) == ("pending", attempt)
        assert row.email_next_attempt_at == clock.now + delay
        assert row.email_error is not None
        assert "cannot reach 127.0.0.1" in row.email_error
        # Not due before its time.
        clock.advance(delay - timedelta(seconds=1))
        assert await deliver_due_email(runtime) == DeliveryReport()
        clock.advance(timedelta(seconds=1))

    assert await deliver_due_email(runtime) == DeliveryReport(failed=1)
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts) == ("failed", 5)
    assert row.email_next_attempt_at is None
    assert row.email_error is not None
    assert "cannot reach" in row.email_error
    clock.advance(timedelta(days=30))
    assert await deliver_due_email(runtime) == DeliveryReport()


async def test_email_waits_out_a_server_outage(
    runtime: Runtime, mail_server: SmtpTestServer, clock: Clock
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)
    mail_server.stop()

    assert await deliver_due_email(runtime) == DeliveryReport(retried=1)
    mail_server.start()
    assert await deliver_due_email(runtime) == DeliveryReport()  # not due yet
    clock.advance(EMAIL_RETRY_DELAYS[0])
    assert await deliver_due_email(runtime) == DeliveryReport(sent=1)

    assert len(mail_server.received) == 1
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts, row.email_error) == ("sent", 2, None)


async def test_a_refused_recipient_fails_at_once(
    runtime: Runtime, mail_server: SmtpTestServer
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)
    mail_server.refuse["alice@uni.example"] = "550 5.1.1 No such user here"

    assert await deliver_due_email(runtime) == DeliveryReport(failed=1)
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts) == ("failed", 1)
    assert row.email_error == "recipient refused: 550 5.1.1 No such user here"
    assert mail_server.received == []


async def test_a_temporary_refusal_is_retried(
    runtime: Runtime, mail_server: SmtpTestServer
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)
    mail_server.refuse["alice@uni.example"] = "450 4.2.1 Mailbox busy, try later"

    assert await deliver_due_email(runtime) == DeliveryReport(retried=1)
    row = await notification(runtime, note_id)
    assert row.email_status == "pending"
    assert row.email_error == "recipient refused: 450 4.2.1 Mailbox busy, try later"


async def test_concurrent_runs_send_each_message_once(
    runtime: Runtime, mail_server: SmtpTestServer
) -> None:
    accounts = [await new_account(runtime, f"user{i}@uni.example") for i in range(3)]
    note_ids = [await queue(runtime, a, subject=f"note {n}") for a in accounts for n in range(2)]

    reports = await asyncio.gather(deliver_due_email(runtime), deliver_due_email(runtime))

    assert sum(r.sent for r in reports) == 6
    assert all(r.retried == r.failed == 0 for r in reports)
    received = [(m.rcpt_tos, m.message["Subject"]) for m in mail_server.received]
    assert sorted(received) == sorted(((a.email,), f"note {n}") for a in accounts for n in range(2))
    assert len({m.message["Message-ID"] for m in mail_server.received}) == 6
    for note_id in note_ids:
        row = await notification(runtime, note_id)
        assert (row.email_status, row.email_attempts) == ("sent", 1)


async def test_a_claim_left_by_a_crashed_run_is_taken_over_after_its_lease(
    runtime: Runtime, mail_server: SmtpTestServer, clock: Clock
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)
    # What a run that died between claiming and sending leaves behind.
    async with writing(runtime) as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == note_id)
            .values(
                email_status="sending", email_attempts=1, email_next_attempt_at=T0 + CLAIM_LEASE
            )
        )

    clock.advance(CLAIM_LEASE - timedelta(seconds=1))
    assert await deliver_due_email(runtime) == DeliveryReport()
    assert mail_server.received == []
    clock.advance(timedelta(seconds=1))
    assert await deliver_due_email(runtime) == DeliveryReport(sent=1)
    assert len(mail_server.received) == 1
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts) == ("sent", 2)


async def test_an_interrupted_last_attempt_is_not_tried_again(
    runtime: Runtime, mail_server: SmtpTestServer, clock: Clock
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)
    last = len(EMAIL_RETRY_DELAYS) + 1
    async with writing(runtime) as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == note_id)
            .values(
                email_status="sending",
                email_attempts=last,
                email_next_attempt_at=T0 + CLAIM_LEASE,
                email_error="cannot reach 127.0.0.1:25: Connection refused",
            )
        )

    clock.advance(CLAIM_LEASE)
    assert await deliver_due_email(runtime) == DeliveryReport(failed=1)
    assert mail_server.received == []
    row = await notification(runtime, note_id)
    assert row.email_status == "failed"
    assert row.email_error == f"gave up: the last attempt ({last}) was interrupted"


async def test_without_smtp_pending_email_is_skipped(
    runtime: Runtime, mail_server: SmtpTestServer
) -> None:
    account = await new_account(runtime)
    note_id = await queue(runtime, account)  # queued while SMTP was configured
    use_settings(runtime, smtp_url=None)

    assert await deliver_due_email(runtime) == DeliveryReport(skipped=1)
    row = await notification(runtime, note_id)
    assert (row.email_status, row.email_attempts) == ("skipped", 0)
    assert await deliver_due_email(runtime) == DeliveryReport()
    assert mail_server.received == []


# SMTP transports, without a database: STARTTLS, implicit TLS and AUTH.


def mail_to(recipient: str) -> Any:
    return build_message(
        sender=SENDER,
        recipient=recipient,
        subject="hello",
        body="body",
        link=None,
        message_id="<1@gw.example>",
        date=T0,
    )


@pytest.mark.parametrize("tls", ["none", "starttls", "implicit"])
async def test_smtp_url_schemes_with_login(
    start_smtp_server: Callable[..., SmtpTestServer], smtp_certificate: TestCertificate, tls: str
) -> None:
    server = start_smtp_server(tls=tls, login=("mailer", "p@ss:word/1"))
    url = server.url("mailer", quote("p@ss:word/1", safe=""))
    parsed = parse_smtp_url(url)
    assert parsed.password == "p@ss:word/1"
    assert "p@ss" not in repr(parsed)

    await send_message(parsed, mail_to("carol@lab.example"), tls=smtp_certificate.client_tls())

    [mail] = server.received
    assert mail.login == "mailer"
    assert mail.rcpt_tos == ("carol@lab.example",)


async def test_wrong_smtp_password_is_a_retryable_error(
    start_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    server = start_smtp_server(login=("mailer", "right"))
    with pytest.raises(MailError) as caught:
        await send_message(parse_smtp_url(server.url("mailer", "wrong")), mail_to("c@l.example"))
    assert caught.value.reason.startswith("SMTP error: 535")
    assert not caught.value.permanent
    assert server.received == []


async def test_starttls_is_never_skipped(smtp_server: SmtpTestServer) -> None:
    # The server offers no STARTTLS: the message must not go out in the clear.
    url = smtp_server.url().replace("smtp://", "smtp+starttls://")
    with pytest.raises(MailError, match="STARTTLS"):
        await send_message(parse_smtp_url(url), mail_to("c@l.example"))
    assert smtp_server.received == []


async def test_an_untrusted_certificate_is_refused(
    start_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    server = start_smtp_server(tls="implicit")
    with pytest.raises(MailError, match="TLS error"):
        await send_message(parse_smtp_url(server.url()), mail_to("c@l.example"))
    assert server.received == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example", ("relay.example", 25, "plain", None, None)),
        (
            "smtp+starttls://u%40x:p%2Fw@mail.example",
            ("mail.example", 587, "starttls", "u@x", "p/w"),
        ),
        ("smtps://u:@mail.example:2465", ("mail.example", 2465, "tls", "u", "")),
    ],
)
def test_parse_smtp_url(url: str, expected: tuple[Any, ...]) -> None:
    server = parse_smtp_url(url)
    assert (server.host, server.port, server.security, server.username, server.password) == (
        expected
    )


@pytest.mark.parametrize("url", ["smtp://", "http://mail.example", "smtp://mail.example:99999"])
def test_parse_smtp_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_SMTP_URL"):
        parse_smtp_url(url)


# --- webhooks ------------------------------------------------------------------------


@pytest.fixture
def receiver(runtime: Runtime, clock: Clock, webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    """The receiver, configured as the runtime's only webhook; it shares the test clock."""
    webhook_receiver.clock = clock
    webhook_receiver.secret = SECRET
    use_settings(runtime, webhooks=(Webhook(webhook_receiver.url, SECRET, (), allow_private=True),))
    return webhook_receiver


async def test_webhook_is_delivered_signed(runtime: Runtime, receiver: WebhookReceiver) -> None:
    account = await new_account(runtime)
    await queue(
        runtime,
        account,
        kind="application.decided",
        subject="Your application was approved",
        link="http://testserver/applications/7",
        data={"application": "7", "decision": "approved"},
    )

    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=1)

    [row] = await deliveries(runtime)
    [request] = receiver.requests
    assert request.signature_valid
    assert request.status == 200
    assert request.method == "POST"
    assert request.path == "/hooks/gateway"
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-gateway-event"] == "application.decided"
    assert headers["x-gateway-delivery"] == row.id
    assert headers["x-gateway-timestamp"] == str(int(T0.timestamp()))
    assert headers["x-gateway-signature"] == sign(
        SECRET, headers["x-gateway-timestamp"], request.body
    )
    assert json.loads(request.body) == {
        "event": "application.decided",
        "account": account.id,
        "subject": "Your application was approved",
        "link": "http://testserver/applications/7",
        "at": T0.isoformat(),
        "application": "7",
        "decision": "approved",
    }
    assert (row.status, row.attempts, row.last_error, row.delivered_at) == (
        "delivered",
        1,
        None,
        T0,
    )

    assert await deliver_due_webhooks(runtime) == DeliveryReport()
    assert len(receiver.requests) == 1


async def test_a_failed_answer_is_retried_later(
    runtime: Runtime, receiver: WebhookReceiver, clock: Clock
) -> None:
    receiver.answers = [500]
    await queue(runtime, await new_account(runtime), kind="application.decided")

    assert await deliver_due_webhooks(runtime) == DeliveryReport(retried=1)
    [row] = await deliveries(runtime)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == T0 + WEBHOOK_RETRY_DELAYS[0]
    assert row.last_error == "HTTP 500 Internal Server Error"
    assert await deliver_due_webhooks(runtime) == DeliveryReport()  # not due yet
    assert len(receiver.requests) == 1

    clock.advance(WEBHOOK_RETRY_DELAYS[0])
    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=1)
    first, second = receiver.requests
    assert (first.status, second.status) == (500, 200)
    assert first.signature_valid
    assert second.signature_valid
    # The same delivery, signed anew for its own attempt.
    assert first.headers["x-gateway-delivery"] == second.headers["x-gateway-delivery"] == row.id
    assert second.headers["x-gateway-timestamp"] == str(int(clock.now.timestamp()))
    assert first.body == second.body
    [row] = await deliveries(runtime)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)
    assert row.delivered_at == clock.now


async def test_a_receiver_with_another_secret_sees_an_invalid_signature(
    runtime: Runtime, receiver: WebhookReceiver
) -> None:
    use_settings(
        runtime,
        webhooks=(Webhook(receiver.url, "not-the-receivers-secret", (), allow_private=True),),
    )
    await queue(runtime, await new_account(runtime), kind="application.decided")

    assert await deliver_due_webhooks(runtime) == DeliveryReport(retried=1)
    [request] = receiver.requests
    assert not request.signature_valid
    [row] = await deliveries(runtime)
    assert (row.status, row.last_error) == ("pending", "HTTP 401 Unauthorized")


async def test_a_replayed_request_is_refused(
    runtime: Runtime, receiver: WebhookReceiver, clock: Clock
) -> None:
    await queue(runtime, await new_account(runtime), kind="application.decided")
    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=1)
    [original] = receiver.requests

    # Within the tolerance the same bytes still verify; ten minutes later they do not.
    assert receiver.replay(original) == 200
    clock.advance(timedelta(minutes=10))
    assert receiver.replay(original) == 401
    assert [r.signature_valid for r in receiver.requests] == [True, True, False]


def test_verify_signature() -> None:
    body = b'{"event":"application.decided"}'
    sent = int(T0.timestamp())
    header = sign(SECRET, sent, body)

    assert verify_signature(SECRET, str(sent), body, header, T0)
    assert verify_signature(SECRET, sent, body, header, sent + 300)
    assert verify_signature(SECRET, sent, body, header, T0 - timedelta(seconds=300))
    # Too old (a replay) or too far in the future.
    assert not verify_signature(SECRET, sent, body, header, sent + 301)
    assert not verify_signature(SECRET, sent, body, header, sent - 301)
    assert verify_signature(SECRET, sent, body, header, sent + 900, tolerance=900)
    # Anything changed: body, timestamp, secret, header form.
    assert not verify_signature(SECRET, sent, body + b" ", header, T0)
    assert not verify_signature(SECRET, sent + 1, body, header, T0)
    assert not verify_signature("another-secret-0123456789", sent, body, header, T0)
    assert not verify_signature(SECRET, sent, body, header.removeprefix("sha256="), T0)
    assert not verify_signature(SECRET, "yesterday", body, header, T0)
    assert not verify_signature(SECRET, sent, body, "", T0)


async def test_event_filter_skips_other_kinds(runtime: Runtime, receiver: WebhookReceiver) -> None:
    use_settings(
        runtime,
        webhooks=(Webhook(receiver.url, SECRET, ("application.decided",), allow_private=True),),
    )
    account = await new_account(runtime)
    await queue(runtime, account, kind="account.verify_email")
    await queue(runtime, account, kind="application.decided")

    assert await deliver_due_webhooks(runtime) == DeliveryReport(sent=1)
    assert [r.headers["x-gateway-event"] for r in receiver.requests] == ["application.decided"]
    assert [d.event for d in await deliveries(runtime)] == ["application.decided"]


async def test_an_unreachable_endpoint_is_given_up_after_six_attempts(
    runtime: Runtime, clock: Clock, refused_port: int
) -> None:
    url = f"http://127.0.0.1:{refused_port}/hook"
    use_settings(runtime, webhooks=(Webhook(url, SECRET, (), allow_private=True),))
    await queue(runtime, await new_account(runtime), kind="application.decided")

    for attempt, delay in enumerate(WEBHOOK_RETRY_DELAYS, start=1):
        assert await deliver_due_webhooks(runtime) == DeliveryReport(retried=1)
        [row] = await deliveries(runtime)
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.next_attempt_at == clock.now + delay
        assert row.last_error is not None
        assert row.last_error.startswith("ConnectError")
        clock.advance(delay)

    assert await deliver_due_webhooks(runtime) == DeliveryReport(failed=1)
    [row] = await deliveries(runtime)
    assert (row.status, row.attempts, row.delivered_at) == ("failed", 6, None)
    clock.advance(timedelta(days=30))
    assert await deliver_due_webhooks(runtime) == DeliveryReport()


async def test_a_delivery_whose_endpoint_was_removed_fails(
    runtime: Runtime, receiver: WebhookReceiver
) -> None:
    await queue(runtime, await new_account(runtime), kind="application.decided")
    use_settings(runtime, webhooks=())

    assert await deliver_due_webhooks(runtime) == DeliveryReport(failed=1)
    [row] = await deliveries(runtime)
    assert row.status == "failed"
    assert row.last_error == "endpoint is no longer configured in [[webhooks]]"
    assert receiver.requests == []


async def test_concurrent_runs_deliver_each_event_once(
    runtime: Runtime, receiver: WebhookReceiver
) -> None:
    account = await new_account(runtime)
    for n in range(5):
        await queue(runtime, account, kind="application.decided", data={"n": n})

    reports = await asyncio.gather(deliver_due_webhooks(runtime), deliver_due_webhooks(runtime))

    assert sum(r.sent for r in reports) == 5
    ids = [r.headers["x-gateway-delivery"] for r in receiver.requests]
    assert sorted(ids) == sorted(d.id for d in await deliveries(runtime))
    assert sorted(json.loads(r.body)["n"] for r in receiver.requests) == list(range(5))
    assert all(d.status == "delivered" and d.attempts == 1 for d in await deliveries(runtime))
