"""Driving the app by hand over ASGI, in the test's own event loop, to see when an answer
is complete: the test client returns only once the app is done, background work and all."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

from gateway.app import create_app
from gateway.config import Settings

_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')
TIMEOUT = 10.0


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    text: str


@dataclass
class AsgiDriver:
    """A browser of one: it keeps cookies, and `post` returns once the answer's last byte
    is sent, while the app may still be running the request's background work."""

    settings: Settings
    cookies: dict[str, str] = field(default_factory=dict)
    running: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = create_app(settings=self.settings)
        self._lifespan = self.app.lifespan()

    async def __aenter__(self) -> AsgiDriver:
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        await self._lifespan.__aexit__(exc_type, exc, tb)

    async def finish(self) -> None:
        """Wait until every request has finished its work."""
        await asyncio.wait_for(asyncio.gather(*self.running), TIMEOUT)

    async def csrf_token(self, page: str) -> str:
        answer = await self.request("GET", page)
        found = _TOKEN.search(answer.text)
        assert found, f"no CSRF field on {page}"
        return found.group(1)

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        body = urlencode(form).encode()
        return await self.request(
            "POST", path, body, content_type="application/x-www-form-urlencoded"
        )

    async def request(
        self, method: str, target: str, body: bytes = b"", *, content_type: str | None = None
    ) -> Answer:
        url = urlsplit(target)
        headers = [(b"host", b"testserver"), (b"accept", b"text/html")]
        if self.cookies:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers.append((b"cookie", cookie.encode()))
        if content_type:
            headers.append((b"content-type", content_type.encode()))
            headers.append((b"content-length", str(len(body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": url.path,
            "raw_path": url.path.encode(),
            "query_string": url.query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        sent = asyncio.Event()
        answered = asyncio.Event()
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if not sent.is_set():
                sent.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        task = asyncio.create_task(self.app(scope, receive, send))  # type: ignore[arg-type]
        self.running.append(task)
        waiting = asyncio.create_task(answered.wait())
        await asyncio.wait({task, waiting}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        assert answered.is_set(), f"{method} {target}: no complete answer within {TIMEOUT} s"
        decoded = [(k.decode().lower(), v.decode()) for k, v in start.get("headers", [])]
        for name, value in decoded:
            if name == "set-cookie":
                self._keep(value)
        return Answer(start["status"], decoded, b"".join(chunks).decode())

    def _keep(self, header: str) -> None:
        pair, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        gone = any(a.lower() in ("max-age=0",) for a in attributes) or value in ("", "null")
        if gone:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value
