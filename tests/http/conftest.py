from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import app_shape, build_app, serve_with
from gateway.config import Settings
from gateway.runtime import build_runtime
from tests.http.portal import Mailbox

# Building the app's routes takes most of a second, so each worker keeps one app per
# shape and points it at each test's own runtime (gateway/app.py, `serve_with`).
_APPS: dict[tuple[bool, bool, tuple[str, ...]], Litestar] = {}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    # The app gets its own runtime: the test client runs it on another event loop, and
    # database connections must not cross loops. Tests publish through `runtime`.
    # Redirects are not followed: a 302 to storage is an answer the tests look at.
    runtime = build_runtime(settings)
    shape = app_shape(settings)
    if shape not in _APPS:
        _APPS[shape] = build_app(runtime)
    app = serve_with(_APPS[shape], runtime)
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
