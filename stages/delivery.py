# Statuses of the two outboxes: mail for a notification, and a webhook delivery, and the
# moves between them.
#
# Rules:
# - A message waits (pending), is claimed by one sender for a lease (sending), and ends
#   delivered or failed; a failed attempt with retries left goes back to pending.
# - A claim whose lease ran out (the sender died mid-send) is claimed again: CLAIM also
#   starts from sending.
# - Mail also ends skipped when no mail server is configured (from pending, or a lapsed
#   claim) or the message is not mailed at all (it starts skipped).
# - The legal moves are a table; anything else raises IllegalDeliveryMove and changes
#   nothing. sent, delivered, failed and skipped are final.

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, TypeVar


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Held for the operator's daily digest, which mails them together once a day.
    DIGEST = "digest"
    # Mailed as part of a digest.
    DIGESTED = "digested"


class WebhookStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryMove(StrEnum):
    CLAIM = "claim"  # one sender takes the message for one attempt
    DELIVER = "deliver"  # the server accepted it
    RETRY = "retry"  # the attempt failed; another one later
    FAIL = "fail"  # the attempt failed and was the last
    SKIP = "skip"  # mail only: no mail server will ever send it
    GATHER = "gather"  # mail only: a notice held for a digest went out in one


_EMAIL_MOVES: Final[Mapping[tuple[EmailStatus, DeliveryMove], EmailStatus]] = {
    (EmailStatus.PENDING, DeliveryMove.CLAIM): EmailStatus.SENDING,
    (EmailStatus.SENDING, DeliveryMove.CLAIM): EmailStatus.SENDING,
    (EmailStatus.SENDING, DeliveryMove.DELIVER): EmailStatus.SENT,
    (EmailStatus.SENDING, DeliveryMove.RETRY): EmailStatus.PENDING,
    (EmailStatus.SENDING, DeliveryMove.FAIL): EmailStatus.FAILED,
    (EmailStatus.PENDING, DeliveryMove.SKIP): EmailStatus.SKIPPED,
    (EmailStatus.SENDING, DeliveryMove.SKIP): EmailStatus.SKIPPED,
    (EmailStatus.DIGEST, DeliveryMove.GATHER): EmailStatus.DIGESTED,
}

_WEBHOOK_MOVES: Final[Mapping[tuple[WebhookStatus, DeliveryMove], WebhookStatus]] = {
    (WebhookStatus.PENDING, DeliveryMove.CLAIM): WebhookStatus.SENDING,
    (WebhookStatus.SENDING, DeliveryMove.CLAIM): WebhookStatus.SENDING,
    (WebhookStatus.SENDING, DeliveryMove.DELIVER): WebhookStatus.DELIVERED,
    (WebhookStatus.SENDING, DeliveryMove.RETRY): WebhookStatus.PENDING,
    (WebhookStatus.SENDING, DeliveryMove.FAIL): WebhookStatus.FAILED,
}

S = TypeVar("S", EmailStatus, WebhookStatus)


class IllegalDeliveryMove(Exception):
    def __init__(self, status: StrEnum, move: DeliveryMove) -> None:
        self.status = status
        self.move = move
        super().__init__(f"cannot {move.value} a message that is {status.value}")


def _table(states: type[S]) -> Mapping[tuple[S, DeliveryMove], S]:
    table = _EMAIL_MOVES if states is EmailStatus else _WEBHOOK_MOVES
    return table  # type: ignore[return-value]


def apply_email_move(status: EmailStatus, move: DeliveryMove) -> EmailStatus:
    """The mail status after `move`, or IllegalDeliveryMove."""
    try:
        return _EMAIL_MOVES[(EmailStatus(status), DeliveryMove(move))]
    except KeyError:
        raise IllegalDeliveryMove(status, move) from None


def apply_webhook_move(status: WebhookStatus, move: DeliveryMove) -> WebhookStatus:
    """The webhook delivery status after `move`, or IllegalDeliveryMove."""
    try:
        return _WEBHOOK_MOVES[(WebhookStatus(status), DeliveryMove(move))]
    except KeyError:
        raise IllegalDeliveryMove(status, move) from None


def bulk_delivery_move(states: type[S], move: DeliveryMove) -> tuple[tuple[S, ...], S]:
    """For a guarded UPDATE of an outbox of `states`: the statuses `move` starts from (in
    declaration order) and the one status it leads to from each of them; a move the
    outbox does not have raises IllegalDeliveryMove."""
    table = _table(states)
    sources = {status for status, each in table if each is DeliveryMove(move)}
    if not sources:
        raise IllegalDeliveryMove(next(iter(states)), move)
    (leads_to,) = {table[(status, DeliveryMove(move))] for status in sources}
    return tuple(status for status in states if status in sources), leads_to


FINAL_EMAIL_STATUSES: Final = frozenset(
    status for status in EmailStatus if not any(s is status for s, _ in _EMAIL_MOVES)
)
FINAL_WEBHOOK_STATUSES: Final = frozenset(
    status for status in WebhookStatus if not any(s is status for s, _ in _WEBHOOK_MOVES)
)
