"""Driving portal forms from tests: the CSRF token comes from the page, as in a browser."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import AsyncTestClient

Http = AsyncTestClient  # type: ignore[type-arg]
HTML = {"accept": "text/html"}
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf_token(client: Http, page: str) -> str:
    response = await client.get(page, headers=HTML)
    match = _TOKEN.search(response.text)
    assert match, f"no CSRF field on {page}"
    return match.group(1)


async def submit(client: Http, page: str, action: str, fields: dict[str, Any]) -> Any:
    """Load `page`, then post its form to `action` with `fields` and the page's CSRF token."""
    token = await csrf_token(client, page)
    return await client.post(action, data={**fields, "_csrf_token": token}, headers=HTML)


def link_in(text: str, path: str) -> str:
    match = re.search(rf"https?://[^\s]+{re.escape(path)}\?token=([\w-]+)", text)
    assert match, f"no {path} link in {text!r}"
    return match.group(1)
