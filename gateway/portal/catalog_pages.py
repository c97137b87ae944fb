"""Catalog pages of the portal: home, model and release."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template
from sqlalchemy import select

from gateway.catalog import service
from gateway.catalog.api import model_ref, open_tiers
from gateway.catalog.schemas import ReleaseDetail
from gateway.db.models import StageChange
from gateway.web import Db, Name, Org, Page, Rt, Version

PAGE_SIZE = 50


class CatalogPages(Controller):
    include_in_schema = False

    @get("/")
    async def home(self, db: Db, page: Page = 1) -> Template:
        models, total = await service.list_models(
            db, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return Template(
            "home.html",
            context={"models": models, "total": total, "page": page, "pages": pages},
        )

    @get("/models/{org:str}/{name:str}")
    async def model(self, db: Db, runtime: Rt, org: Org, name: Name) -> Template:
        model = await service.get_model(db, model_ref(org, name))
        ladder = runtime.policy.ladder
        opened = [r for r in model.releases if open_tiers(runtime, r.stage, r.status)]
        card = await service.model_card(db, runtime.storage, opened)
        return Template("model.html", context={"model": model, "ladder": ladder, "card": card})

    @get("/models/{org:str}/{name:str}/releases/{version:str}")
    async def release(
        self, db: Db, runtime: Rt, org: Org, name: Name, version: Version
    ) -> Template:
        release = await service.get_release(db, model_ref(org, name), version)
        detail = ReleaseDetail.of(
            release, runtime.policy, open_tiers(runtime, release.stage, release.status)
        )
        base_url = runtime.settings.public_url
        history = (
            await db.scalars(
                select(StageChange)
                .where(StageChange.release_id == release.id)
                .order_by(StageChange.at, StageChange.id)
            )
        ).all()
        return Template(
            "release.html",
            context={
                "release": detail,
                "base_url": base_url,
                "folder": release.model.name,
                "history": history,
            },
        )
