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
    async with AsyncTestClient(app=create_app(settings=settings)) as test_client:
        yield test_client
