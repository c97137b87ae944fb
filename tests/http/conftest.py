from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.runtime import Runtime


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(app=create_app(runtime=runtime)) as test_client:
        yield test_client
