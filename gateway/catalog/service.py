"""Read the catalog. The portal pages, the JSON API and the CLI all call these."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.catalog.model_card import ModelCard, card_artifact, load_model_card
from gateway.db.models import Model, Release
from gateway.errors import NotFound
from gateway.storage import Storage
from stages.names import ModelRef


async def list_models(
    session: AsyncSession, *, limit: int = 100, offset: int = 0
) -> tuple[Sequence[Model], int]:
    """Models with their releases, alphabetical, one page at a time, and the total count."""
    total = await session.scalar(select(func.count()).select_from(Model)) or 0
    models = await session.scalars(
        select(Model)
        .options(selectinload(Model.releases))
        .order_by(Model.org, Model.name)
        .limit(limit)
        .offset(offset)
    )
    return models.all(), total


async def get_model(session: AsyncSession, ref: ModelRef) -> Model:
    model = await session.scalar(
        select(Model)
        .options(selectinload(Model.releases))
        .where(Model.org == ref.org, Model.name == ref.name)
    )
    if model is None:
        raise NotFound(f"no model {ref}", code="model_not_found")
    return model


async def get_release(session: AsyncSession, ref: ModelRef, version: str) -> Release:
    """A release with its model, license, components and artifacts loaded."""
    release = await session.scalar(
        select(Release)
        .join(Model)
        .options(
            selectinload(Release.model),
            selectinload(Release.license),
            selectinload(Release.components),
            selectinload(Release.artifacts),
        )
        .where(Model.org == ref.org, Model.name == ref.name, Release.version == version)
    )
    if release is None:
        await get_model(session, ref)  # says "no model" when that is the problem
        raise NotFound(f"no release {ref}:{version}", code="release_not_found")
    return release


async def model_card(
    session: AsyncSession, storage: Storage, releases: Sequence[Release]
) -> ModelCard | None:
    """The card of the newest of `releases` (oldest first, as a model lists them) with one."""
    for shown in reversed(releases):
        release = await session.scalar(
            select(Release)
            .options(selectinload(Release.components), selectinload(Release.artifacts))
            .where(Release.id == shown.id)
        )
        if release is not None and card_artifact(release) is not None:
            return await load_model_card(storage, release)
    return None
