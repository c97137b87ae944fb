"""Catalog pages of the portal: home, model and release."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from gateway.catalog import service
from gateway.catalog.api import model_ref
from gateway.catalog.schemas import ReleaseDetail
from gateway.web import Name, Org, Page, Uow, Version

PAGE_SIZE = 50


class CatalogPages(Controller):
    include_in_schema = False

    @get("/")
    async def home(self, uow: Uow, page: Page = 1) -> Template:
        models, total = await service.list_models(
            uow, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return Template(
            "home.html",
            context={"models": models, "total": total, "page": page, "pages": pages},
        )

    @get("/models/{org:str}/{name:str}")
    async def model(self, uow: Uow, org: Org, name: Name) -> Template:
        view = await service.model_page(uow, model_ref(org, name))
        return Template(
            "model.html",
            context={"model": view.model, "ladder": uow.rt.policy.ladder, "card": view.card},
        )

    @get("/models/{org:str}/{name:str}/releases/{version:str}")
    async def release(self, uow: Uow, org: Org, name: Name, version: Version) -> Template:
        view = await service.release_page(uow, model_ref(org, name), version)
        detail = ReleaseDetail.of(view.release, uow.rt.policy, view.open_tiers)
        return Template(
            "release.html",
            context={
                "release": detail,
                "base_url": uow.rt.settings.public_url,
                "folder": view.release.model.name,
                "history": view.history,
            },
        )
