"""HTTP: the download manifest, the /d/ endpoint and the public keys of download tokens."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, get, post, route
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response.base import ASGIResponse
from litestar.response.redirect import ASGIRedirectResponse

from gateway.api_reference import (
    BEARER,
    COMMON,
    DOWNLOAD_ANSWERS,
    ManifestOperation,
    answers,
)
from gateway.catalog.api import model_ref
from gateway.credentials.url_tokens import verifying_keys
from gateway.downloads.file_response import AccelRedirectResponse, StoredFileResponse
from gateway.downloads.service import Client, DownloadManifest, deliver, issue_manifest
from gateway.keys.auth import GranteeDep
from gateway.ratelimits import RateLimit
from gateway.web import Limiter, Name, Org, PathStr, Uow, Version


class ManifestRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Both optional: `paths` limits the URLs to these artifacts; `continue` maps a path to
    the download id of an interrupted download, so its refreshed URL uses no new quota."""

    paths: list[str] | None = None
    continue_: dict[str, str] | None = msgspec.field(default=None, name="continue")


def client_of(request: Request[object, object, State]) -> Client:
    address = request.client.host if request.client else None
    return Client(address=address, user_agent=request.headers.get("user-agent"))


class DownloadsController(Controller):
    tags = ["downloads"]

    @post(
        "/api/v1/models/{org:str}/{name:str}/releases/{version:str}/downloads",
        summary="Signed, expiring URLs for the artifacts your grant may fetch",
        status_code=200,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404, 429),
        operation_class=ManifestOperation,
    )
    async def manifest(
        self,
        request: Request[object, object, State],
        uow: Uow,
        limiter: Limiter,
        grantee: GranteeDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[ManifestRequest | None] = None,
    ) -> DownloadManifest:
        body = data or ManifestRequest()
        # The limiter counts in a connection of its own: ours goes back to the pool first.
        await uow.end_read()
        await limiter.take(RateLimit.MANIFESTS_PER_KEY, grantee.key.id)
        return await issue_manifest(
            uow,
            grantee,
            model_ref(org, name),
            version,
            paths=body.paths,
            continue_ids=body.continue_,
            client=client_of(request),
        )

    @route(
        "/d/{token:str}",
        http_method=["GET", "HEAD"],
        summary="Download one artifact with a signed URL (Range supported)",
        responses={**DOWNLOAD_ANSWERS, **answers(*COMMON, 403, 404, 410, 416)},
    )
    async def download(
        self, request: Request[object, object, State], uow: Uow, token: PathStr
    ) -> ASGIResponse:
        delivery = await deliver(
            uow,
            token,
            range_header=request.headers.get("range"),
            method=request.method,
            client=client_of(request),
        )
        if delivery.redirect_url is not None:
            return ASGIRedirectResponse(
                path=delivery.redirect_url, status_code=302, headers={"cache-control": "no-store"}
            )
        if delivery.accel_path is not None:
            return AccelRedirectResponse(
                location=delivery.accel_path, sha256=delivery.sha256, filename=delivery.filename
            )
        return StoredFileResponse(
            path=delivery.local_path,
            size=delivery.size,
            sha256=delivery.sha256,
            filename=delivery.filename,
            byte_range=delivery.byte_range,
            is_head=request.method == "HEAD",
            headers={},
        )

    @get(
        "/.well-known/jwks.json",
        summary="Public keys that verify download tokens",
        cache=False,
        responses=answers(503),
    )
    async def jwks(self, uow: Uow) -> dict[str, list[dict[str, object]]]:
        keys = await verifying_keys(uow.session, uow.rt.clock())
        return {"keys": list(keys.values())}
