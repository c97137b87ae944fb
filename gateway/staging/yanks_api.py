"""The operator API of yanks: yank a release with a reason, and take the yank back. The
same service functions as `gateway yank`, `gateway unyank` and the console's release
page; the acting operator is the account of the `admin` key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Controller, post
from litestar.params import JSONBody

from gateway.api_reference import COMMON, answers
from gateway.catalog.api import model_ref
from gateway.keys.auth import AdminDep
from gateway.staging.api import RELEASE
from gateway.staging.yanks import YankState, unyank, yank
from gateway.web import Name, Org, Uow, Version
from stages.actors import Actor


@dataclass
class YankIn:
    """`reason`: why, shown in the catalog, the manifest and the client's warning."""

    reason: str


@dataclass(frozen=True)
class YankOut:
    release: str
    yanked: bool
    reason: str | None
    yanked_at: datetime | None
    yanked_by: str | None
    grantees_notified: int

    @classmethod
    def of(cls, state: YankState) -> YankOut:
        return cls(
            state.ref, state.yanked, state.reason, state.at, state.by, state.grantees_notified
        )


class OpsYanksController(Controller):
    tags = ["operators: stages"]

    @post(
        RELEASE + "/yank",
        summary="Yank a release: no longer latest, still downloadable by its exact version",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def yank(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[YankIn],
    ) -> YankOut:
        state = await yank(
            uow,
            model_ref(org, name),
            version,
            reason=data.reason,
            actor=Actor.account(admin.account.id),
        )
        return YankOut.of(state)

    @post(
        RELEASE + "/unyank",
        summary="Take a yank back: the release is what it was before",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def unyank(
        self, uow: Uow, admin: AdminDep, org: Org, name: Name, version: Version
    ) -> YankOut:
        state = await unyank(
            uow, model_ref(org, name), version, actor=Actor.account(admin.account.id)
        )
        return YankOut.of(state)
