"""How /d/ hands the bytes over once it has decided: behind nginx, an X-Accel-Redirect to
nginx's internal location for local storage; on S3, a presigned redirect whose lifetime
is the `s3_redirect_seconds` setting (the recall window of a transfer already sent on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.runtime import Runtime
from tests.grantees import grantee, open_release
from tests.http.test_downloads import entry, local, manifest

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def behind_nginx(settings: Settings) -> AsyncIterator[Http]:
    app = create_app(
        settings=replace(settings, accel_redirect="/_objects/", s3_redirect_seconds=45)
    )
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        yield client


def is_s3(runtime: Runtime) -> bool:
    return runtime.settings.storage_url.startswith("s3:")


async def test_local_files_are_handed_to_nginx_after_the_decision(
    behind_nginx: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    weights = entry(await manifest(behind_nginx, alice), "model.safetensors")
    sha = weights["sha256"]
    for headers in ({}, {"range": "bytes=10-99"}):
        answer = await behind_nginx.get(local(weights["url"]), headers=headers)
        if is_s3(runtime):
            # S3 objects are not files nginx can send: a presigned redirect, its lifetime
            # the setting's.
            assert answer.status_code == 302
            query = parse_qs(urlsplit(answer.headers["location"]).query)
            assert query["X-Amz-Expires"] == ["45"]
            assert "x-accel-redirect" not in answer.headers
            continue
        assert answer.status_code == 200
        assert answer.headers["x-accel-redirect"] == f"/_objects/{sha[:2]}/{sha[2:4]}/{sha}"
        assert answer.content == b""
        assert answer.headers["content-disposition"].startswith("attachment")
        assert "model.safetensors" in answer.headers["content-disposition"]
        assert answer.headers["cache-control"] == "private, no-store"


async def test_a_refused_download_is_never_handed_over(
    behind_nginx: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    weights = entry(await manifest(behind_nginx, alice), "model.safetensors")
    forged = local(weights["url"])[:-4] + "AAAA"
    refused = await behind_nginx.get(forged)
    assert refused.status_code == 403
    assert "x-accel-redirect" not in refused.headers
    beyond = await behind_nginx.get(
        local(weights["url"]), headers={"range": f"bytes={weights['size'] + 10}-"}
    )
    assert beyond.status_code == 416
    assert "x-accel-redirect" not in beyond.headers
    assert "location" not in beyond.headers
