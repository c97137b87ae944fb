"""Every query of the catalog: models and releases by name, and what a page lists of them.

`release_by_ref` is the one way to load a release by its name; staging, publishing,
downloads and decommissioning all load releases through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from gateway.db.models import Model, Release, StageChange
from gateway.errors import NotFound
from stages.names import ModelRef

# What a release page shows: its model, license, components and artifacts.
RELEASE_DETAIL: tuple[LoaderOption, ...] = (
    selectinload(Release.model),
    selectinload(Release.license),
    selectinload(Release.components),
    selectinload(Release.artifacts),
)
WITH_MODEL: tuple[LoaderOption, ...] = (selectinload(Release.model),)


async def release_by_ref(
    session: AsyncSession,
    model: ModelRef,
    version: str,
    *,
    load: Sequence[LoaderOption] = WITH_MODEL,
    lock: bool = False,
) -> Release:
    """The release `model:version` with `load` loaded; raises NotFound when there is none.

    `lock` takes the row for update (FOR UPDATE OF the release on PostgreSQL; SQLite has
    one writer at a time anyway), which serialises two moves of the same release.
    """
    query = (
        select(Release)
        .join(Model, Model.id == Release.model_id)
        .options(*load)
        .where(Model.org == model.org, Model.name == model.name, Release.version == version)
    )
    if lock:
        query = query.with_for_update(of=Release)
    release = await session.scalar(query)
    if release is None:
        raise NotFound(f"no release {model}:{version}", code="release_not_found")
    return release


async def release_exists(session: AsyncSession, model: ModelRef, version: str) -> bool:
    found = await session.scalar(
        select(Release.id)
        .join(Model, Model.id == Release.model_id)
        .where(Model.org == model.org, Model.name == model.name, Release.version == version)
    )
    return found is not None


async def releases_of(
    session: AsyncSession, model: ModelRef, *, lock: bool = False
) -> list[Release]:
    """Every release of `model` with its model loaded, oldest first."""
    query = (
        select(Release)
        .join(Model, Model.id == Release.model_id)
        .options(selectinload(Release.model))
        .where(Model.org == model.org, Model.name == model.name)
        .order_by(Release.published_at)
    )
    if lock:
        query = query.with_for_update(of=Release)
    return list((await session.scalars(query)).all())


async def model_by_ref(
    session: AsyncSession, ref: ModelRef, *, with_releases: bool = True
) -> Model:
    """The model `ref` (with its releases, oldest first); raises NotFound when there is none."""
    query = select(Model).where(Model.org == ref.org, Model.name == ref.name)
    if with_releases:
        query = query.options(selectinload(Model.releases))
    model = await session.scalar(query)
    if model is None:
        raise NotFound(f"no model {ref}", code="model_not_found")
    return model


async def find_model(session: AsyncSession, ref: ModelRef) -> Model | None:
    return await session.scalar(select(Model).where(Model.org == ref.org, Model.name == ref.name))


async def models_page(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[Sequence[Model], int]:
    """Models with their releases, alphabetical, one page of them, and the total count."""
    total = await session.scalar(select(func.count()).select_from(Model)) or 0
    models = await session.scalars(
        select(Model)
        .options(selectinload(Model.releases))
        .order_by(Model.org, Model.name)
        .limit(limit)
        .offset(offset)
    )
    return models.all(), total


async def release_files(session: AsyncSession, release_id: int) -> Release | None:
    """A release with its components and artifacts loaded."""
    return await session.scalar(
        select(Release)
        .options(selectinload(Release.components), selectinload(Release.artifacts))
        .where(Release.id == release_id)
    )


async def stage_history(session: AsyncSession, release_id: int) -> Sequence[StageChange]:
    rows = await session.scalars(
        select(StageChange)
        .where(StageChange.release_id == release_id)
        .order_by(StageChange.at, StageChange.id)
    )
    return rows.all()


async def every_release(session: AsyncSession) -> Sequence[Release]:
    """Every release with its model, by model name, newest release first."""
    rows = await session.scalars(
        select(Release)
        .options(selectinload(Release.model))
        .join(Model, Model.id == Release.model_id)
        .order_by(Model.org, Model.name, Release.published_at.desc())
    )
    return rows.all()
