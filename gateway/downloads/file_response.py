"""Send a stored file, whole or one range, without loading it into memory; or, behind
nginx, let nginx send it (X-Accel-Redirect).

A whole file goes out through the ASGI `pathsend` extension where the server offers it
(granian does), which lets the server use sendfile: zero-copy. Otherwise, and for ranges,
the file is read and sent in 1 MiB chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from gateway.downloads.ranges import ByteRange
from gateway.storage import attachment_disposition

CHUNK = 1 << 20


def file_headers(sha256: str, filename: str) -> dict[str, str]:
    """The headers of every answer that hands over a stored file."""
    return {
        "accept-ranges": "bytes",
        "etag": f'"{sha256}"',
        "content-disposition": attachment_disposition(filename),
        "cache-control": "private, no-store",
    }


class AccelRedirectResponse(ASGIResponse):
    """The gateway has decided; nginx sends the file from its internal `location` (with
    sendfile, and the client's Range applied by nginx). Empty body, the file's headers."""

    def __init__(self, *, location: str, sha256: str, filename: str) -> None:
        super().__init__(
            status_code=200,
            media_type="application/octet-stream",
            headers={**file_headers(sha256, filename), "x-accel-redirect": location},
            content_length=0,
        )


class StoredFileResponse(ASGIResponse):
    def __init__(
        self,
        *,
        path: Path,
        size: int,
        sha256: str,
        filename: str,
        byte_range: ByteRange | None,
        is_head: bool,
        headers: dict[str, str],
    ) -> None:
        length = byte_range.length if byte_range else size
        all_headers = {**file_headers(sha256, filename), **headers}
        if byte_range is not None:
            all_headers["content-range"] = byte_range.content_range(size)
        if is_head:
            # Litestar leaves these out of HEAD answers; a client sizing a download needs them.
            all_headers["content-length"] = str(length)
            all_headers["content-type"] = "application/octet-stream"
        super().__init__(
            status_code=206 if byte_range else 200,
            media_type="application/octet-stream",
            headers=all_headers,
            content_length=length,
            is_head_response=is_head,
        )
        self.path = path
        self.byte_range = byte_range
        self.length = length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.start_response(send=send)
        if self.is_head_response:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        extensions = scope.get("extensions") or {}
        if self.byte_range is None and "http.response.pathsend" in extensions:
            pathsend: Any = {"type": "http.response.pathsend", "path": str(self.path)}
            await send(pathsend)
            return
        start = self.byte_range.start if self.byte_range else 0
        remaining = self.length
        async with await anyio.open_file(self.path, "rb") as source:
            await source.seek(start)
            while remaining > 0:
                chunk = await source.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        if remaining > 0:
            # The file shrank under us: end the body so the client sees a short read.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
