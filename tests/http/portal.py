"""Driving portal forms from tests: the CSRF token comes from the page, as in a browser."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar.testing import AsyncTestClient

from gateway.ratelimits import DatabaseRateLimitStore, RateLimiter
from gateway.runtime import Runtime

Http = AsyncTestClient  # type: ignore[type-arg]
HTML = {"accept": "text/html"}
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf_token(client: Http, page: str) -> str:
    response = await client.get(page, headers=HTML)
    match = _TOKEN.search(response.text)
    assert match, f"no CSRF field on {page}"
    return match.group(1)


async def submit(client: Http, page: str, action: str, fields: dict[str, Any]) -> Any:
    """Load `page`, then post its form to `action` with `fields` and the page's CSRF token."""
    token = await csrf_token(client, page)
    return await client.post(action, data={**fields, "_csrf_token": token}, headers=HTML)


def link_in(text: str, path: str) -> str:
    match = re.search(rf"https?://[^\s]+{re.escape(path)}\?token=([\w-]+)", text)
    assert match, f"no {path} link in {text!r}"
    return match.group(1)


class Mailbox(logging.Handler):
    """What the gateway mailed while no SMTP is configured: the messages it logged."""

    _MAIL = re.compile(r"mail to (\S+) \(no SMTP configured\): (.*)", re.DOTALL)

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = self._MAIL.fullmatch(record.getMessage())
        if found:
            self.messages.append((found.group(1), found.group(2)))

    def to(self, email: str) -> list[str]:
        """The subject and body of every message to `email`, oldest first."""
        return [text for to, text in self.messages if to == email]

    def token(self, email: str, path: str) -> str:
        """The token of the newest `path` link mailed to `email`."""
        for text in reversed(self.to(email)):
            if f"{path}?token=" in text:
                return link_in(text, path)
        raise AssertionError(f"no {path} link was mailed to {email}: {self.to(email)!r}")


async def confirm_email(client: Http, mailbox: Mailbox, email: str) -> Any:
    """Open the confirmation link mailed to `email` and press its button."""
    token = mailbox.token(email, "/verify-email")
    page = await client.get(f"/verify-email?token={token}", headers=HTML)
    assert page.status_code == 200, page.text
    return await submit(client, f"/verify-email?token={token}", "/verify-email", {"token": token})


def limiter_of(rt: Runtime) -> RateLimiter:
    """The rate limiter a served gateway would use, for service calls made by tests."""
    return RateLimiter(DatabaseRateLimitStore(rt.engine), rt.settings.rate_limits, clock=rt.clock)
