"""The API reference at /schema renders in a browser that can reach no host but the
gateway: an air-gapped lab gets a working page, with every operation of the document.

Every request the page makes to another host is refused and recorded, and so is every
Content-Security-Policy violation the browser reports; the test wants none of either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from playwright import sync_api as playwright_api

from tests.served import clean_env, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("reference")
    env = clean_env(GATEWAY_HOME=str(root / ".gateway"), GATEWAY_SCHEDULER="off")
    with serving(env, root / "serve.log") as url:
        yield url


def test_the_api_reference_renders_every_operation_with_no_other_host(
    base: str, browser: Any, tmp_path: Path
) -> None:
    document = httpx2.get(f"{base}/schema/openapi.json", timeout=10).json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete", "head"}
    ]
    assert len(operations) > 10

    gateway_host = urlsplit(base).netloc
    elsewhere: list[str] = []
    violations: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if urlsplit(route.request.url).netloc == gateway_host:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("blockedbyclient")

    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.route("**/*", only_the_gateway)
    page = context.new_page()

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: violations.append(f"script error: {error}"))
    response = page.goto("/schema")
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]

    blocks = page.locator(".opblock")
    playwright_api.expect(blocks.first).to_be_visible(timeout=20_000)
    playwright_api.expect(blocks).to_have_count(len(operations))
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert shown == set(operations)
    page.screenshot(path=str(tmp_path / "schema.png"), full_page=False)
    context.close()

    assert elsewhere == []
    assert violations == []
