"""A real HTTP server around the app, in the test's own event loop, for tests that need
requests to run truly at once (the Litestar test client runs them one after another).

Clients can come from different loopback addresses (127.0.0.2, 127.0.0.3, ...), so
tests can tell the gateway's per-address rules apart without a proxy.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from granian.constants import Interfaces
from granian.server.embed import Server
from litestar import Litestar

HTML = {"accept": "text/html"}
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL."""
    port = _free_port()
    server = Server(
        app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False
    )
    running = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx2.AsyncClient() as probe:
            for _ in range(200):
                assert not running.done(), "the server stopped while starting"
                try:
                    if (await probe.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx2.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the server did not start")
        yield base
    finally:
        server.stop()
        await running


def client_from(base: str, address: str = "127.0.0.2") -> httpx2.AsyncClient:
    """A client whose requests come from `address` (any 127.x.y.z works on Linux)."""
    return httpx2.AsyncClient(
        base_url=base,
        transport=httpx2.AsyncHTTPTransport(local_address=address),
        follow_redirects=False,
        timeout=60,
    )


async def form_token(client: httpx2.AsyncClient, page: str) -> str:
    """The CSRF token of a portal page (its cookie stays in the client)."""
    response = await client.get(page, headers=HTML)
    match = _TOKEN.search(response.text)
    assert match, f"no CSRF field on {page}: {response.status_code}"
    return match.group(1)


async def post_form(
    client: httpx2.AsyncClient, action: str, token: str, fields: dict[str, Any]
) -> httpx2.Response:
    return await client.post(action, data={**fields, "_csrf_token": token}, headers=HTML)
