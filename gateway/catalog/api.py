"""JSON API of the catalog."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec

from gateway.api_reference import COMMON, answers
from gateway.catalog import service
from gateway.catalog.schemas import ModelPage, ModelSummary, ReleaseDetail
from gateway.catalog.service import open_tiers
from gateway.web import Limit, Name, Offset, Org, Uow, Version
from stages.names import ModelRef

__all__ = ["CatalogController", "model_ref", "open_tiers"]


def model_ref(org: str, name: str) -> ModelRef:
    from gateway.errors import InvalidInput
    from stages.names import InvalidName, parse_model_ref

    try:
        return parse_model_ref(f"{org}/{name}")
    except InvalidName as exc:
        raise InvalidInput(str(exc), code="invalid_name") from exc


class CatalogController(Controller):
    path = "/api/v1/models"
    tags = ["catalog"]

    @get("/", summary="List models and their releases", responses=answers(*COMMON))
    async def list_models(
        self,
        uow: Uow,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> ModelPage:
        models, total = await service.list_models(uow, limit=limit, offset=offset)
        return ModelPage(
            items=[ModelSummary.of(m) for m in models], total=total, limit=limit, offset=offset
        )

    @get(
        "/{org:str}/{name:str}",
        summary="A model and its releases",
        responses=answers(*COMMON, 404),
    )
    async def get_model(self, uow: Uow, org: Org, name: Name) -> ModelSummary:
        return ModelSummary.of(await service.get_model(uow, model_ref(org, name)))

    @get(
        "/{org:str}/{name:str}/releases/{version:str}",
        summary="A release and its artifacts",
        responses=answers(*COMMON, 404),
    )
    async def get_release(self, uow: Uow, org: Org, name: Name, version: Version) -> ReleaseDetail:
        release = await service.published_release(uow, model_ref(org, name), version)
        return ReleaseDetail.of(
            release, uow.rt.policy, open_tiers(uow.rt, release.stage, release.status)
        )

    @get(
        "/{org:str}/{name:str}/releases/{version:str}/signature",
        summary="The release signature bundle (OpenSSF model signing format)",
        media_type="application/json",
        responses={
            200: ResponseSpec(
                dict[str, Any],
                description="The bundle as `model_signing` wrote it, served as a file",
                generate_examples=False,
            ),
            **answers(*COMMON, 404),
        },
    )
    async def get_signature(
        self, uow: Uow, org: Org, name: Name, version: Version
    ) -> Response[str]:
        release = await service.get_release(uow, model_ref(org, name), version)
        filename = f"{release.model.name}-{release.version}.sig"
        return Response(
            release.signature_bundle,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
