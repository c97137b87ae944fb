# Statuses of the two outboxes: mail for a notification, and a webhook delivery.
#
# Rules:
# - A message waits (pending), is claimed by one sender for a lease (sending), and ends
#   delivered or failed; a failed attempt with retries left goes back to pending.
# - Mail also ends skipped when no mail server is configured or the message is not mailed.

from __future__ import annotations

from enum import StrEnum


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
