from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings
from tests.http.portal import Mailbox


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    # The app gets its own runtime: the test client runs it on another event loop, and
    # database connections must not cross loops. Tests publish through `runtime`.
    # Redirects are not followed: a 302 to storage is an answer the tests look at.
    app = create_app(settings=settings)
    async with AsyncTestClient(app=app) as test_client:
        test_client.follow_redirects = False
        yield test_client


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """The messages the gateway mails (logs, with no SMTP configured) during the test."""
    box = Mailbox()
    logger = logging.getLogger("gateway.mail")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(box)
    yield box
    logger.removeHandler(box)
    logger.setLevel(level)
