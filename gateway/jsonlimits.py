"""Bounds on every JSON document the gateway reads from outside: request bodies, answers
of OpenID providers, answers of a gateway to the download client.

Rules of this module:
- A document is refused, with JsonTooLarge, when it is larger than its limit or nested
  deeper than MAX_DEPTH, before any parser sees it: the parsers recurse once per level
  and would fail with RecursionError (a 500) long before they run out of input. The
  check is one linear pass, whatever the input.
- Each source has its own size limit (a `JsonLimit`); the depth limit is the same for all.
- The only I/O here is reading HTTP answers (`read_limited`, `LimitedTransport`), which
  stops as soon as an answer is over its limit, so a huge one never sits in memory whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2

# Far deeper than anything the gateway sends or expects (three or four levels), far
# shallower than where the parsers' recursion gives out (a few hundred levels).
MAX_DEPTH = 32

# A string, or an unterminated one up to the end: the closing quote is optional so that
# a match never fails once begun, which keeps the scan linear (a pattern that must end
# in a quote re-reads the rest of the input from every unmatched quote).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


class JsonRefused(ValueError):
    """A JSON document over its size or depth limit, or not JSON at all."""


class JsonTooLarge(JsonRefused):
    """A JSON document over its size or depth limit (a hostile answer, not a sloppy one)."""


@dataclass(frozen=True)
class JsonLimit:
    """How large a document from one kind of source may be; `what` names it in messages."""

    what: str
    max_bytes: int
    max_depth: int = MAX_DEPTH


# A request body: the largest the API takes is an application's answers (a few KiB).
REQUEST_BODY = JsonLimit("the request body", 1024 * 1024)
# A provider's discovery document, key set, token or userinfo answer; GitHub's list of
# secret scanning keys.
PROVIDER_ANSWER = JsonLimit("the answer", 1024 * 1024)
# A gateway's answer to the download client: a manifest lists every file of a release.
GATEWAY_ANSWER = JsonLimit("the answer", 64 * 1024 * 1024)


def nests_deeper(data: bytes, max_depth: int) -> bool:
    """Whether arrays and objects in `data` nest more than `max_depth` levels.

    Brackets inside strings do not count; unbalanced brackets count as they open, so an
    unterminated document is as deep as it claims to be.
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if len(brackets) <= max_depth:
        return False
    depth = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth = max(0, depth - 1)
    return False


def check_json(data: bytes, limit: JsonLimit) -> None:
    """Raise JsonRefused if `data` is over the limit's size or depth (it is not parsed)."""
    if len(data) > limit.max_bytes:
        raise _too_large(limit)
    if nests_deeper(data, limit.max_depth):
        raise JsonTooLarge(f"{limit.what} nests deeper than {limit.max_depth} levels")


def parse_json(data: bytes, limit: JsonLimit) -> Any:
    """The JSON value in `data`, within `limit`; JsonRefused if it is over it or not JSON."""
    check_json(data, limit)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused(f"{limit.what} is not valid JSON") from exc


async def read_limited(response: httpx2.Response, limit: JsonLimit) -> bytes:
    """The body of a streamed answer, read no further than its limit allows."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit.max_bytes:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class LimitedTransport(httpx2.AsyncBaseTransport):
    """Wraps a transport so that no answer body grows past `limit` while it is read.

    For clients whose answers a library reads itself (Authlib's token request): the body
    fails with JsonRefused at the first chunk over the limit.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: JsonLimit) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        response.stream = _LimitedStream(stream, self._limit)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _LimitedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: JsonLimit) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._limit.max_bytes:
                raise _too_large(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def limited_client(limit: JsonLimit, **options: Any) -> httpx2.AsyncClient:
    """An async HTTP client whose answers are bounded by `limit` as they are read."""
    transport = LimitedTransport(httpx2.AsyncHTTPTransport(), limit)
    return httpx2.AsyncClient(transport=transport, **options)


def _too_large(limit: JsonLimit) -> JsonTooLarge:
    nbytes = limit.max_bytes
    size = f"{nbytes // (1024 * 1024)} MiB" if nbytes >= 1024 * 1024 else f"{nbytes} bytes"
    return JsonTooLarge(f"{limit.what} is larger than {size}")
