"""Liveness, readiness and the published signing key."""

from __future__ import annotations

import asyncio

from litestar import Response, get

from gateway.errors import Unavailable
from gateway.maintenance.service import check_database
from gateway.storage import StorageError
from gateway.web import Rt, Uow


@get("/healthz", tags=["health"], summary="The process is alive", cache=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


# How long each readiness check may take; a part that has not answered by then is down.
READY_TIMEOUT_SECONDS = 10.0


@get("/readyz", tags=["health"], summary="Database and storage are reachable", cache=False)
async def readyz(runtime: Rt, uow: Uow) -> Response[dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(check_database(runtime), timeout=READY_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", and we say which
        checks["database"] = f"unreachable: {failure_text(exc)}"
    try:
        await asyncio.wait_for(
            asyncio.to_thread(runtime.storage.check), timeout=READY_TIMEOUT_SECONDS
        )
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001 - as above
        checks["storage"] = f"unreachable: {failure_text(exc)}"
    if runtime.settings.redis_url:
        try:
            await asyncio.wait_for(runtime.meter.check(), timeout=READY_TIMEOUT_SECONDS)
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - as above
            checks["redis"] = f"unreachable: {failure_text(exc)}"
    if runtime.settings.scheduler and checks["database"] == "ok":
        from gateway.jobs.registry import stale_jobs

        stale = await stale_jobs(uow)
        checks["scheduler"] = f"stale: {', '.join(stale)}" if stale else "ok"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


def failure_text(exc: BaseException) -> str:
    """What went wrong, in words: the error's own message, never an empty string."""
    if isinstance(exc, Unavailable):
        return exc.detail
    if isinstance(exc, StorageError):
        return str(exc)  # it names the store and the cause already
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {READY_TIMEOUT_SECONDS:g} s"
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@get(
    "/.well-known/release-signing-key.pem",
    tags=["signing"],
    summary="Public key that verifies release signatures",
    media_type="application/x-pem-file",
)
async def release_signing_key(runtime: Rt) -> bytes:
    return runtime.signing_key.public_pem
