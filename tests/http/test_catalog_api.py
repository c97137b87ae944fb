"""The catalog over HTTP: JSON API, signature and key endpoints, health, pages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.names import parse_model_ref
from stages.release import Move
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio
Client = AsyncTestClient  # type: ignore[type-arg]


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok"}


async def test_readiness_names_the_part_that_is_down(client: Client) -> None:
    from gateway.db.engine import make_engine

    app_runtime: Runtime = client.app.state.runtime
    url = app_runtime.engine.url
    missing = (
        "/nonexistent/folder/db.sqlite3" if url.drivername.startswith("sqlite") else "no_such_db"
    )
    await app_runtime.engine.dispose()
    app_runtime.engine = make_engine(
        url.set(database=missing).render_as_string(hide_password=False)
    )
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["database"].startswith("unreachable")
    assert body["storage"] == "ok"


async def test_empty_catalog(client: Client) -> None:
    response = await client.get("/api/v1/models")
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "limit": 100, "offset": 0}


async def test_models_and_releases(client: Client, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path, "acme/sample", "1.0")
    await publish(runtime, tmp_path, "acme/sample", "1.1")
    await publish(runtime, tmp_path, "zeta/other", "0.1")
    listing = (await client.get("/api/v1/models")).json()
    assert listing["total"] == 2
    assert [m["id"] for m in listing["items"]] == ["acme/sample", "zeta/other"]
    assert [r["version"] for r in listing["items"][0]["releases"]] == ["1.0", "1.1"]
    assert listing["items"][0]["releases"][0]["stage"] == "draft"

    page = (await client.get("/api/v1/models", params={"limit": 1, "offset": 1})).json()
    assert [m["id"] for m in page["items"]] == ["zeta/other"]
    assert page["total"] == 2

    model = (await client.get("/api/v1/models/acme/sample")).json()
    assert model["id"] == "acme/sample"
    assert len(model["releases"]) == 2


async def test_release_detail(client: Client, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    await within(
        runtime,
        lambda uow: move_release(
            uow,
            parse_model_ref("acme/sample"),
            "1.0",
            Move.PROMOTE,
            target="trusted_partner",
            actor="t",
        ),
    )
    body = (await client.get("/api/v1/models/acme/sample/releases/1.0")).json()
    assert body["stage"] == "trusted_partner"
    assert body["status"] == "active"
    assert body["license_sha256"] == hashlib.sha256(body["license_text"].encode()).hexdigest()
    paths = [a["path"] for a in body["artifacts"]]
    assert paths == sorted(paths)
    weights = next(a for a in body["artifacts"] if a["path"] == "model.safetensors")
    assert weights["component"] == "weights"
    assert weights["size"] == 300_000
    assert len(weights["sha256"]) == 64
    tiers = {t["tier"]: t for t in body["tiers"]}
    assert tiers["trusted_partner"]["open"] is True
    assert tiers["researcher"]["open"] is False
    assert "weights" in tiers["public"]["components"]
    assert body["signature_url"] == "/api/v1/models/acme/sample/releases/1.0/signature"
    assert body["public_key_url"] == "/.well-known/release-signing-key.pem"


async def test_signature_and_public_key(client: Client, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    signature = await client.get("/api/v1/models/acme/sample/releases/1.0/signature")
    assert signature.status_code == 200
    bundle = signature.json()
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert "dsseEnvelope" in bundle
    key = await client.get("/.well-known/release-signing-key.pem")
    assert key.status_code == 200
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.content == runtime.signing_key.public_pem


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/models/acme/nothing", 404, "model_not_found"),
        ("/api/v1/models/acme/sample/releases/9.9", 404, "release_not_found"),
        ("/api/v1/models/nobody/sample/releases/1.0", 404, "model_not_found"),
        ("/api/v1/models/acme/sample/releases/9.9/signature", 404, "release_not_found"),
        ("/api/v1/models/ac%20me/sample", 400, "invalid_name"),
        ("/api/v1/models?limit=0", 400, "invalid_request"),
        ("/api/v1/models?limit=lots", 400, "invalid_request"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ],
)
async def test_errors_are_clear_json(
    client: Client, runtime: Runtime, tmp_path: Path, path: str, status: int, code: str
) -> None:
    await publish(runtime, tmp_path)
    response = await client.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code
    assert body["message"]


async def test_openapi_schema_lists_the_catalog(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/models/{org}/{name}/releases/{version}" in schema["paths"]
    assert "/healthz" in schema["paths"]


async def test_model_signing_cli_verifies_the_published_folder_from_the_endpoints(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    import subprocess
    import sys

    await publish(runtime, tmp_path)
    folder = tmp_path / "src-acme-sample-1.0"
    signature = tmp_path / "sample.sig"
    key = tmp_path / "key.pem"
    signature.write_bytes(
        (await client.get("/api/v1/models/acme/sample/releases/1.0/signature")).content
    )
    key.write_bytes((await client.get("/.well-known/release-signing-key.pem")).content)
    command = [
        str(Path(sys.executable).with_name("model_signing")),
        "verify",
        "key",
        str(folder),
        "--signature",
        str(signature),
        "--public_key",
        str(key),
    ]
    ok = subprocess.run(command, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (folder / "shards" / "model-00002.safetensors").write_bytes(b"swapped weights")
    bad = subprocess.run(command, capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "model-00002.safetensors" in bad.stdout + bad.stderr


async def test_an_absurd_offset_is_a_clear_400(client: Client) -> None:
    response = await client.get("/api/v1/models", params={"offset": "99999999999999999999"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
