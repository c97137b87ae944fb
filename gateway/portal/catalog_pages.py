"""Catalog pages of the portal: home, model and release."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.catalog import service
from gateway.catalog.api import model_ref, open_tiers
from gateway.catalog.schemas import ReleaseDetail
from gateway.runtime import Runtime

PAGE_SIZE = 50


class CatalogPages(Controller):
    include_in_schema = False

    @get("/")
    async def home(
        self, db: AsyncSession, page: Annotated[int, Parameter(ge=1, le=100_000)] = 1
    ) -> Template:
        models, total = await service.list_models(
            db, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return Template(
            "home.html",
            context={"models": models, "total": total, "page": page, "pages": pages},
        )

    @get("/models/{org:str}/{name:str}")
    async def model(self, db: AsyncSession, runtime: Runtime, org: str, name: str) -> Template:
        model = await service.get_model(db, model_ref(org, name))
        ladder = runtime.policy.ladder
        return Template("model.html", context={"model": model, "ladder": ladder})

    @get("/models/{org:str}/{name:str}/releases/{version:str}")
    async def release(
        self,
        request: Request[object, object, object],
        db: AsyncSession,
        runtime: Runtime,
        org: str,
        name: str,
        version: str,
    ) -> Template:
        release = await service.get_release(db, model_ref(org, name), version)
        detail = ReleaseDetail.of(
            release, runtime.policy, open_tiers(runtime, release.stage, release.status)
        )
        base_url = runtime.settings.public_url
        return Template(
            "release.html",
            context={"release": detail, "base_url": base_url, "folder": release.model.name},
        )
