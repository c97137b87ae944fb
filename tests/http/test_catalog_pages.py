"""Portal pages of the catalog, rendered server-side."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.runtime import Runtime
from tests.sample import publish

pytestmark = pytest.mark.anyio
Client = AsyncTestClient  # type: ignore[type-arg]
HTML = {"accept": "text/html"}


async def test_home_lists_models_with_stage_and_status(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    empty = await client.get("/", headers=HTML)
    assert "No models have been published yet" in empty.text
    await publish(runtime, tmp_path)
    page = await client.get("/", headers=HTML)
    assert page.status_code == 200
    assert 'href="/models/acme/sample/releases/1.0"' in page.text
    assert "stage-draft" in page.text
    assert "status-active" in page.text


async def test_release_page_shows_artifacts_license_tiers_and_verification(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    published = await publish(runtime, tmp_path)
    page = await client.get("/models/acme/sample/releases/1.0", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "model.safetensors" in text
    assert "Sample Model License" in text
    assert "Trusted partner" in text
    assert "model_signing verify key sample --signature sample.sig" in text
    assert "http://testserver/api/v1/models/acme/sample/releases/1.0/signature" in text
    assert published.manifest_sha256 in text
    assert "published as a draft" in text
    assert 'href="/models/acme/sample/apply"' in text


async def test_release_page_shows_the_stage_timeline(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.staging.service import move_release
    from stages.names import parse_model_ref
    from stages.release import Move

    await publish(runtime, tmp_path)
    model = parse_model_ref("acme/sample")
    await move_release(runtime, model, "1.0", Move.PROMOTE, target="trusted_partner", actor="op")
    await move_release(
        runtime, model, "1.0", Move.ROLLBACK, target="draft", actor="op", reason="card fix"
    )
    page = await client.get("/models/acme/sample/releases/1.0", headers=HTML)
    assert "promote: draft → trusted partner" in page.text
    assert "rollback: trusted partner → draft. Reason: card fix" in page.text


async def test_model_page(client: Client, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    assert "Releases" in page.text
    assert "1.0" in page.text


async def test_missing_pages_are_html_for_browsers(client: Client) -> None:
    page = await client.get("/models/acme/none/releases/1.0", headers=HTML)
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "no model acme/none" in page.text
    other = await client.get("/no/such/page", headers=HTML)
    assert other.status_code == 404
    assert "Not found" in other.text
    stylesheet = await client.get("/static/gateway.css")
    assert stylesheet.status_code == 200
