"""What VerifyInFront hands to the app it stands in front of: every request it does not
answer reaches the app whole, its body as the client sent it, however it was chunked."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api_access.front import ROUTE, VerifyInFront
from gateway.jsonlimits import REQUEST_BODY

pytestmark = pytest.mark.anyio


class Recorder:
    """An ASGI app that reads the whole body and keeps it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def scope_of(path: str = ROUTE, query: bytes = b"", kind: bytes = b"application/json") -> Any:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": [(b"content-type", kind)],
    }


async def through(front: VerifyInFront, scope: Any, chunks: list[bytes]) -> None:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        return None

    await front(scope, receive, send)
    assert not messages, "the app did not read the whole body"


@pytest.mark.parametrize(
    "chunks",
    [
        [b"x" * (REQUEST_BODY.max_bytes + 1)],
        [b"x" * 600_000, b"y" * 600_000, b"z" * 10],
        [b'{"key": "\\u0000"}'],
        [b"[" * 200 + b"]" * 200],
    ],
    ids=["one chunk over the limit", "chunks over the limit", "a NUL", "too deep"],
)
async def test_a_body_it_does_not_answer_reaches_the_app_whole(chunks: list[bytes]) -> None:
    recorder = Recorder()
    front = VerifyInFront(recorder)  # type: ignore[arg-type]
    await through(front, scope_of(), chunks)
    assert recorder.bodies == [b"".join(chunks)]


@pytest.mark.parametrize(
    "scope",
    [
        scope_of(path="/api/v1/keys"),
        scope_of(query=b"x=1"),
        scope_of(kind=b"application/x-www-form-urlencoded"),
        {**scope_of(), "method": "PUT"},
    ],
    ids=["another path", "a query", "a form", "another method"],
)
async def test_other_requests_go_to_the_app_untouched(scope: Any) -> None:
    recorder = Recorder()
    await through(VerifyInFront(recorder), scope, [b'{"key": "k"}'])  # type: ignore[arg-type]
    assert recorder.bodies == [b'{"key": "k"}']
