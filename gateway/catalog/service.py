"""Read the catalog. The portal pages, the JSON API and the CLI all call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.catalog import repository
from gateway.catalog.model_card import ModelCard, card_artifact, load_model_card
from gateway.catalog.schemas import ReleaseDetail
from gateway.db.changes import detached
from gateway.db.models import Model, Release, StageChange
from gateway.db.uow import UnitOfWork
from gateway.errors import NotFound
from gateway.runtime import Runtime
from stages.names import ModelRef
from stages.release import ReleaseState, Status


async def list_models(
    uow: UnitOfWork, *, limit: int = 100, offset: int = 0
) -> tuple[Sequence[Model], int]:
    """Models with their releases, alphabetical, one page at a time, and the total count."""
    return await repository.models_page(uow.session, limit=limit, offset=offset)


async def get_model(uow: UnitOfWork, ref: ModelRef) -> Model:
    return await repository.model_by_ref(uow.session, ref)


async def get_release(uow: UnitOfWork, ref: ModelRef, version: str) -> Release:
    """A release with its model, license, components and artifacts loaded."""
    try:
        return await repository.release_by_ref(
            uow.session, ref, version, load=repository.RELEASE_DETAIL
        )
    except NotFound:
        # Says "no model" when that is the problem.
        await repository.model_by_ref(uow.session, ref, with_releases=False)
        raise


# What a published release is made of: a cache of the hot paths holds it whole.
_RELEASE_TABLES = ("models", "releases", "components", "artifacts")


async def published_release(uow: UnitOfWork, ref: ModelRef, version: str) -> Release:
    """get_release for the hot paths, from this process's cache (gateway/db/changes.py):
    a release's files never change once published, its stage and status invalidate it.
    The rows are shared with other requests: read them, never change them."""
    cache = uow.rt.changes.cache("published release", _RELEASE_TABLES)

    async def load() -> Release:
        release = await get_release(uow, ref, version)
        detached(
            uow.session,
            release,
            release.model,
            release.license,
            *release.components,
            *release.artifacts,
        )
        return release

    found: Release | None = await cache.get((ref, version), load)
    assert found is not None
    return found


def open_tiers(rt: Runtime, stage: str, status: str) -> set[str]:
    """Tiers a release is open to now: none unless active, else those its stage reaches."""
    return set(rt.stage_machine.open_tiers(ReleaseState(stage, Status(status))))


@dataclass(frozen=True)
class ModelView:
    model: Model
    card: ModelCard | None


async def model_page(uow: UnitOfWork, ref: ModelRef) -> ModelView:
    """A model and the card of its newest open release that has one (a yanked release's
    only when no other open release has a card)."""
    model = await get_model(uow, ref)
    opened = [r for r in model.releases if open_tiers(uow.rt, r.stage, r.status)]
    opened.sort(key=lambda r: r.yanked_at is None)  # stable: yanked first, each oldest first
    return ModelView(model, await model_card(uow, opened))


@dataclass(frozen=True)
class ReleaseView:
    release: Release
    open_tiers: set[str]
    history: Sequence[StageChange]


async def release_page(uow: UnitOfWork, ref: ModelRef, version: str) -> ReleaseView:
    """A release, the tiers it is open to now, and its stage history."""
    release = await get_release(uow, ref, version)
    history = await repository.stage_history(uow.session, release.id)
    return ReleaseView(release, open_tiers(uow.rt, release.stage, release.status), history)


async def model_card(uow: UnitOfWork, releases: Sequence[Release]) -> ModelCard | None:
    """The card of the newest of `releases` (oldest first, as a model lists them) with one."""
    for shown in reversed(releases):
        release = await repository.release_files(uow.session, shown.id)
        if release is not None and card_artifact(release) is not None:
            return await load_model_card(uow.rt.storage, release)
    return None


async def every_model(uow: UnitOfWork) -> list[Model]:
    """Every model with its releases, alphabetical, read a page at a time."""
    found: list[Model] = []
    while True:
        page, total = await list_models(uow, limit=500, offset=len(found))
        found.extend(page)
        if len(found) >= total or not page:
            return found


async def release_detail(uow: UnitOfWork, ref: ModelRef, version: str) -> ReleaseDetail:
    """A release as the API shows it: its tiers, what each may fetch and whether it is open."""
    release = await get_release(uow, ref, version)
    rt = uow.rt
    return ReleaseDetail.of(release, rt.policy, open_tiers(rt, release.stage, release.status))
