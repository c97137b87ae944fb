"""Deliver what `notify()` queued: the email of each notification, and webhook events.

A job (the scheduler, or `gateway jobs run-due`) calls `deliver_due_email` and
`deliver_due_webhooks`; the scheduler only decides when. Rules:

* A row moves pending -> sending -> sent | failed (email also: skipped, when no SMTP
  server is configured). A failed attempt puts it back to pending with the time of the
  next try, until its attempts are used up.
* A row is claimed before it is sent, by one conditional UPDATE (still due, still at the
  attempt count we read) that must change exactly one row. So two runs, in one process
  or in two, never send the same row twice: the loser of the race sees rowcount 0.
* While a row is `sending`, its next-attempt time holds the claim's lease: claim time +
  10 minutes. A process that dies mid-send leaves the row `sending`; when the lease runs
  out the row is due again (that attempt counts, so a row that crashes every sender
  still ends as failed).
* No transaction stays open while a server is talked to: the claim commits, the send
  happens, the result is recorded in its own transaction, and only if the claim still
  holds. So a run is not one unit of work but one short unit per step (`run_unit`), the
  job being the boundary; every status a row takes is a `stages/delivery.py` move.
* Time comes from `rt.clock()`, so tests can move it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx2

from gateway.config import Webhook, parse_smtp_url
from gateway.db.models import WebhookDelivery
from gateway.db.uow import UnitOfWork, run_unit
from gateway.notify import endpoint_health, repository
from gateway.notify.addresses import PrivateAddress, Target, public_target
from gateway.notify.mail import (
    EMAIL_RETRY_DELAYS,
    MailError,
    build_message,
    message_id,
    send_message,
)
from gateway.notify.repository import EMAIL, WEBHOOKS, Outbox
from gateway.notify.webhooks import (
    WEBHOOK_RETRY_DELAYS,
    WebhookError,
    encode_payload,
    post_event,
    signed_headers,
    webhook_client,
)
from gateway.runtime import Runtime
from stages.delivery import DeliveryMove

logger = logging.getLogger("gateway.notify")

CLAIM_LEASE = timedelta(minutes=10)
# Endpoints delivered to at once in one run; each endpoint's own queue goes in order.
ENDPOINT_CONCURRENCY = 8


def _retry_delays(outbox: Outbox) -> Sequence[timedelta]:
    return EMAIL_RETRY_DELAYS if outbox is EMAIL else WEBHOOK_RETRY_DELAYS


@dataclass(frozen=True)
class DeliveryReport:
    """What one run did: accepted, to be tried again, given up, skipped (no SMTP), and
    held (webhooks left for a later run: their endpoint failed or is being left alone)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    held: int = 0


def next_attempt_at(delays: Sequence[timedelta], attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed tries; None once they are used up."""
    if attempts > len(delays):
        return None
    return now + delays[attempts - 1]


@dataclass
class _Tally:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0

    def report(self) -> DeliveryReport:
        return DeliveryReport(
            sent=self.sent, retried=self.retried, failed=self.failed, held=self.held
        )


async def deliver_due_email(rt: Runtime, *, limit: int = 100) -> DeliveryReport:
    """Send up to `limit` due notification emails through the configured SMTP server."""
    if not rt.settings.smtp_url:
        return DeliveryReport(skipped=await run_unit(rt, _skip_email))
    server = parse_smtp_url(rt.settings.smtp_url)
    tally = _Tally()
    for note_id, attempts in await _due(rt, EMAIL, limit):

        async def claim(uow: UnitOfWork, note_id: Any = note_id, attempts: int = attempts) -> Any:
            if not await _claim(uow, EMAIL, note_id, attempts):
                return None
            return await repository.mail_and_recipient(uow.session, note_id)

        claimed_note = await run_unit(rt, claim)
        if claimed_note is None:
            continue
        note, recipient = claimed_note
        claimed = attempts + 1
        if await _gave_up(rt, EMAIL, note_id, claimed, tally):
            continue
        try:
            message = build_message(
                sender=rt.settings.mail_from,
                recipient=recipient,
                subject=note.subject,
                body=note.body,
                link=note.link,
                message_id=message_id(
                    notification_id=note.id,
                    account_id=note.account_id,
                    created_at=note.created_at,
                    sender=rt.settings.mail_from,
                ),
                date=note.created_at,
            )
            await send_message(server, message)
        except MailError as exc:
            logger.warning("email for notification %s not sent: %s", note_id, exc.reason)
            await _record_failure(
                rt, EMAIL, note_id, claimed, exc.reason, tally, permanent=exc.permanent
            )
        else:
            await _record(rt, EMAIL, note_id, claimed, DeliveryMove.DELIVER, {EMAIL.error: None})
            tally.sent += 1
    return tally.report()


async def deliver_due_webhooks(rt: Runtime, *, limit: int = 100) -> DeliveryReport:
    """POST due webhook deliveries, up to `limit` per endpoint: each endpoint's queue in
    order, the endpoints side by side (at most ENDPOINT_CONCURRENCY at once)."""
    endpoints: dict[str, Webhook] = {}
    for configured in rt.settings.webhooks:
        endpoints.setdefault(configured.url, configured)
    tally = _Tally()
    await _fail_unconfigured(rt, list(endpoints), limit, tally)
    if not endpoints:
        return tally.report()
    health = await run_unit(rt, lambda uow: endpoint_health.load(uow, list(endpoints)))
    gate = asyncio.Semaphore(ENDPOINT_CONCURRENCY)
    async with webhook_client() as client:

        async def drain(hook: Webhook) -> None:
            async with gate:
                await _drain_endpoint(rt, client, hook, health[hook.url], limit, tally)

        await asyncio.gather(*(drain(hook) for hook in endpoints.values()))
    return tally.report()


async def _fail_unconfigured(rt: Runtime, configured: list[str], limit: int, tally: _Tally) -> None:
    """Deliveries to endpoints no longer in [[webhooks]]: without the endpoint's secret
    the event cannot be signed, and nobody will add it back."""
    for delivery_id, attempts in await _due(
        rt, WEBHOOKS, limit, WebhookDelivery.endpoint.not_in(configured)
    ):
        if not await _claimed(rt, WEBHOOKS, delivery_id, attempts):
            continue
        reason = "endpoint is no longer configured in [[webhooks]]"
        await _record_failure(
            rt, WEBHOOKS, delivery_id, attempts + 1, reason, tally, permanent=True
        )


async def _drain_endpoint(
    rt: Runtime,
    client: httpx2.AsyncClient,
    hook: Webhook,
    health: endpoint_health.Health,
    limit: int,
    tally: _Tally,
) -> None:
    """One endpoint's turn: its due deliveries in order, until one fails. A failure ends
    the turn (the rest wait for the next run), so a hung receiver costs one timeout."""
    due = await _due(rt, WEBHOOKS, limit, WebhookDelivery.endpoint == hook.url)
    now = rt.clock()
    if health.is_open(now):
        tally.held += len(due)
        return
    if health.is_probing(now):
        # One delivery tells whether the endpoint is back; the others wait for its answer.
        tally.held += len(due[1:])
        due = due[:1]
    delivered = False
    for position, (delivery_id, attempts) in enumerate(due):

        async def claim(
            uow: UnitOfWork, delivery_id: Any = delivery_id, attempts: int = attempts
        ) -> WebhookDelivery | None:
            if not await _claim(uow, WEBHOOKS, delivery_id, attempts):
                return None
            return await repository.delivery(uow.session, delivery_id)

        delivery = await run_unit(rt, claim)
        if delivery is None:
            continue
        claimed = attempts + 1
        if await _gave_up(rt, WEBHOOKS, delivery_id, claimed, tally):
            continue
        failure = await _attempt(rt, client, hook, delivery)
        if failure is None:
            values = {WEBHOOKS.error: None, WebhookDelivery.delivered_at: rt.clock()}
            await _record(rt, WEBHOOKS, delivery_id, claimed, DeliveryMove.DELIVER, values)
            tally.sent += 1
            delivered = True
            continue
        logger.warning("webhook delivery %s to %s failed: %s", delivery_id, hook.url, failure)
        await _record_failure(rt, WEBHOOKS, delivery_id, claimed, failure, tally)
        await run_unit(rt, partial(endpoint_health.record_failure, url=hook.url, reason=failure))
        tally.held += len(due) - position - 1
        return
    if delivered:
        await run_unit(rt, lambda uow: endpoint_health.record_success(uow, hook.url))


async def _attempt(
    rt: Runtime, client: httpx2.AsyncClient, hook: Webhook, delivery: WebhookDelivery
) -> str | None:
    """POST one delivery; None when it was accepted, else why not."""
    try:
        target = Target(hook.url) if hook.allow_private else await public_target(hook.url)
    except PrivateAddress as exc:
        return f"refused: {exc} (set allow_private = true for an endpoint inside your network)"
    body = encode_payload(delivery.payload)
    headers = signed_headers(
        secret=hook.secret, event=delivery.event, delivery_id=delivery.id, body=body, at=rt.clock()
    )
    try:
        await post_event(client, target, headers=headers, body=body)
    except WebhookError as exc:
        return exc.reason
    return None


async def _skip_email(uow: UnitOfWork) -> int:
    """Without SMTP, pending email will never go out: mark it skipped (notify() has
    logged each message at creation), and take back claims whose lease ran out."""
    skipped = await repository.skip_email(await uow.write(), uow.rt.clock())
    if skipped:
        logger.info("no SMTP configured: %d pending email(s) marked skipped", skipped)
    return skipped


async def _due(rt: Runtime, outbox: Outbox, limit: int, *where: Any) -> list[tuple[Any, int]]:
    """Ids and attempt counts of rows due now (and matching `where`), oldest due first.
    Only a hint: each row is claimed before it is used."""
    return await run_unit(
        rt, lambda uow: repository.due(uow.session, outbox, rt.clock(), limit, *where)
    )


async def _claim(uow: UnitOfWork, outbox: Outbox, row_id: Any, attempts: int) -> bool:
    """Take the row for one attempt (the CLAIM move); False if another run took it."""
    now = uow.rt.clock()
    return await repository.claim(
        await uow.write(), outbox, row_id, attempts, now, now + CLAIM_LEASE
    )


async def _claimed(rt: Runtime, outbox: Outbox, row_id: Any, attempts: int) -> bool:
    return await run_unit(rt, lambda uow: _claim(uow, outbox, row_id, attempts))


async def _gave_up(rt: Runtime, outbox: Outbox, row_id: Any, claimed: int, tally: _Tally) -> bool:
    """Whether the row is past its last attempt, which was interrupted (its claim's lease
    ran out); it is then recorded as failed instead of being tried once more."""
    if claimed <= len(_retry_delays(outbox)) + 1:
        return False
    reason = f"gave up: the last attempt ({claimed - 1}) was interrupted"
    await _record_failure(rt, outbox, row_id, claimed, reason, tally, permanent=True)
    return True


async def _record_failure(
    rt: Runtime,
    outbox: Outbox,
    row_id: Any,
    claimed: int,
    reason: str,
    tally: _Tally,
    *,
    permanent: bool = False,
) -> None:
    retry = None if permanent else next_attempt_at(_retry_delays(outbox), claimed, rt.clock())
    if retry is None:
        await _record(rt, outbox, row_id, claimed, DeliveryMove.FAIL, {outbox.error: reason})
        tally.failed += 1
    else:
        values = {outbox.error: reason, outbox.next_at: retry}
        await _record(rt, outbox, row_id, claimed, DeliveryMove.RETRY, values)
        tally.retried += 1


async def _record(
    rt: Runtime,
    outbox: Outbox,
    row_id: Any,
    claimed: int,
    move: DeliveryMove,
    values: Mapping[Any, Any],
) -> None:
    """Store the attempt's outcome (a DELIVER, RETRY or FAIL move), if our claim still
    holds."""

    async def finish(uow: UnitOfWork) -> bool:
        session = await uow.write()
        return await repository.finish(
            session, outbox, row_id, claimed, move, values, uow.rt.clock()
        )

    if not await run_unit(rt, finish):
        # The lease ran out mid-attempt and another run took the row over; its outcome
        # is the one that counts.
        logger.warning(
            "%s %s: claim lost before the outcome (%s) was recorded",
            outbox.model.__tablename__,
            row_id,
            move.value,
        )
