"""Liveness, readiness and the published signing key."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from sqlalchemy import text

from gateway.storage import StorageError
from gateway.web import Rt


@get("/healthz", tags=["health"], summary="The process is alive", cache=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["health"], summary="Database and storage are reachable", cache=False)
async def readyz(runtime: Rt) -> Response[dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as connection:
            await asyncio.wait_for(connection.execute(text("SELECT 1")), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", and we say which
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        await asyncio.wait_for(asyncio.to_thread(runtime.storage.check), timeout=10)
        checks["storage"] = "ok"
    except (StorageError, TimeoutError) as exc:
        checks["storage"] = f"unreachable: {exc or 'timed out'}"
    if runtime.settings.scheduler and checks["database"] == "ok":
        from gateway.jobs.registry import stale_jobs

        stale = await stale_jobs(runtime)
        checks["scheduler"] = f"stale: {', '.join(stale)}" if stale else "ok"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


@get(
    "/.well-known/release-signing-key.pem",
    tags=["signing"],
    summary="Public key that verifies release signatures",
    media_type="application/x-pem-file",
)
async def release_signing_key(runtime: Rt) -> bytes:
    return runtime.signing_key.public_pem
