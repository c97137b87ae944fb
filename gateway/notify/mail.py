"""Email: build a notification's message and hand it to the configured SMTP server.

`GATEWAY_SMTP_URL` says how to reach the server:

* `smtp://[user:password@]host[:port]`: plain SMTP (port 25), for a relay on the same
  host or network;
* `smtp+starttls://...`: connect in the clear, then upgrade with STARTTLS (port 587);
  a server that does not offer STARTTLS is an error, never a silent plain-text send;
* `smtps://...`: TLS from the first byte (port 465).

User and password are percent-decoded from the URL and sent with AUTH only when given.
Certificates are checked against the system's trust store and the server's host name.

smtplib blocks, so a send runs in a worker thread. Every failure becomes a `MailError`
with a short reason for `Notification.email_error`, marked permanent when retrying
cannot help (the server refused the recipient or the message with a 5xx answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from gateway.config import SmtpServer

# After the 1st, 2nd, 3rd and 4th failed attempt; the 5th failure is final.
EMAIL_RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
# Each socket operation (connect, every command) may take this long.
SMTP_TIMEOUT_SECONDS = 30.0
_MAX_REASON = 500


class MailError(Exception):
    """A message was not accepted; `reason` is short enough to store and show."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:_MAX_REASON]
        self.permanent = permanent


def message_id(*, notification_id: int, account_id: str, created_at: datetime, sender: str) -> str:
    """A Message-ID that stays the same when a send is retried, so a mailbox can drop a
    duplicate left by a send that succeeded but was not recorded."""
    seed = f"{notification_id}:{account_id}:{created_at.isoformat()}".encode()
    return f"<{hashlib.sha256(seed).hexdigest()[:32]}@{_domain_of(sender)}>"


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    link: str | None,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """An RFC 5322 plain-text message; the link gets a line of its own."""
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = Address(addr_spec=recipient)
        # Subjects are one line; a line break would be refused as header injection.
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(date)
        message["Message-ID"] = message_id
        # RFC 3834: a machine wrote this; out-of-office replies should not answer it.
        message["Auto-Submitted"] = "auto-generated"
    except (ValueError, TypeError) as exc:
        raise MailError(f"cannot build the message: {exc}", permanent=True) from exc
    text = body.rstrip("\n")
    if link and link not in text:
        text = f"{text}\n\n{link}"
    message.set_content(text + "\n")
    return message


async def send_message(
    server: SmtpServer,
    message: EmailMessage,
    *,
    socket_timeout: float = SMTP_TIMEOUT_SECONDS,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Hand the message to the server; raises `MailError` unless it was accepted.

    `socket_timeout` bounds the connect and each command. `tls` replaces the default
    context (system trust store, host name checked), e.g. to trust a private CA.
    """
    context = tls or ssl.create_default_context()
    await asyncio.to_thread(_send_blocking, server, message, socket_timeout, context)


def _send_blocking(
    server: SmtpServer, message: EmailMessage, timeout: float, context: ssl.SSLContext
) -> None:
    try:
        client: smtplib.SMTP
        if server.security == "tls":
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.security == "starttls":
                # starttls() refuses a server that does not offer it: no silent downgrade.
                client.starttls(context=context)
            if server.username is not None:
                client.login(server.username, server.password or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # One recipient per message: it was refused.
        code, text = next(iter(exc.recipients.values()))
        raise MailError(_reply("recipient refused", code, text), permanent=code >= 500) from exc
    except smtplib.SMTPDataError as exc:
        raise MailError(
            _reply("message refused", exc.smtp_code, exc.smtp_error),
            permanent=exc.smtp_code >= 500,
        ) from exc
    except smtplib.SMTPResponseException as exc:
        # Sender refused, authentication failed and the like: a setup the operator can
        # fix, so keep retrying while there are attempts left.
        raise MailError(_reply("SMTP error", exc.smtp_code, exc.smtp_error)) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"SMTP server does not support it: {exc}") from exc
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP error: {exc}") from exc
    except ssl.SSLError as exc:
        raise MailError(f"TLS error: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise MailError(f"timed out after {timeout:g} s talking to {server.host}") from exc
    except OSError as exc:
        raise MailError(f"cannot reach {server.host}:{server.port}: {exc.strerror or exc}") from exc


def _reply(what: str, code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{what}: {code} {' '.join(text.split())}"


def _domain_of(sender: str) -> str:
    _name, address = parseaddr(sender)
    domain = address.rpartition("@")[2]
    return domain or "localhost"
