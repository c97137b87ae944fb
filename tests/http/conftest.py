from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    # The app gets its own runtime: the test client runs it on another event loop, and
    # database connections must not cross loops. Tests publish through `runtime`.
    # Redirects are not followed: a 302 to storage is an answer the tests look at.
    app = create_app(settings=settings)
    async with AsyncTestClient(app=app) as test_client:
        test_client.follow_redirects = False
        yield test_client
