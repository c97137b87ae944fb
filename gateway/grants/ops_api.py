"""The operator API of grants: the list (cursor pages, filtered by account, model, tier
and status), one grant, a new grant, and the moves suspend, revoke and reinstate. The
same service functions as `gateway grants`; the acting operator is the account of the
`admin` key, and is the actor of the evidence each change records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.api_reference import COMMON, answers
from gateway.applications.reviewing import checked_model
from gateway.errors import InvalidInput
from gateway.grants import service
from gateway.keys.auth import AdminDep
from gateway.pagination import DEFAULT_LIMIT
from gateway.web import Cursor, PageLimit, Uow
from stages.actors import Actor
from stages.grants import GrantMove, GrantStatus

if TYPE_CHECKING:
    from gateway.db.models import Grant

GrantId = Annotated[str, PathParameter(description="The grant's id")]
STATUS_HELP = ", ".join(status.value for status in GrantStatus)


@dataclass(frozen=True)
class GrantOut:
    id: str
    account_id: str
    account: str  # the grantee's email
    model: str  # ORG/NAME
    tier: str
    status: str
    status_reason: str | None  # why it was last suspended, reinstated or revoked
    starts_at: datetime
    expires_at: datetime
    download_quota: int
    quota_period_days: int
    created_at: datetime
    created_by: str  # as stored: `account:<id>`, `cli:user@host`, `system:...`
    status_changed_at: datetime

    @classmethod
    def of(cls, grant: Grant) -> GrantOut:
        return cls(
            id=grant.id,
            account_id=grant.account_id,
            account=grant.account.email,
            model=grant.model.ref,
            tier=grant.tier,
            status=grant.status,
            status_reason=grant.status_reason,
            starts_at=grant.starts_at,
            expires_at=grant.expires_at,
            download_quota=grant.download_quota,
            quota_period_days=grant.quota_period_days,
            created_at=grant.created_at,
            created_by=grant.created_by,
            status_changed_at=grant.status_changed_at,
        )


@dataclass(frozen=True)
class GrantPage:
    items: list[GrantOut]
    next_cursor: str | None


@dataclass
class NewGrantIn:
    """`model` is ORG/NAME; `days` the grant's length (default: the tier's grant_days)."""

    email: str
    model: str
    tier: str
    days: int | None = None


@dataclass
class GrantMoveIn:
    reason: str  # recorded with the move


def _actor(admin: AdminDep) -> Actor:
    return Actor.account(admin.account.id)


async def _moved(
    uow: Uow, admin: AdminDep, grant_id: str, move: GrantMove, data: GrantMoveIn
) -> GrantOut:
    """The grant after `move`, as `gateway grants suspend|revoke|reinstate` makes it."""
    grant = await service.change_grant(uow, grant_id, move, reason=data.reason, actor=_actor(admin))
    return GrantOut.of(grant)


class OpsGrantsController(Controller):
    path = "/grants"
    tags = ["operators: grants"]

    @get(
        "/",
        summary="Grants, newest first, filtered as `gateway grants list`",
        responses=answers(*COMMON, 401, 403),
    )
    async def listing(
        self,
        uow: Uow,
        admin: AdminDep,
        email: Annotated[str, QueryParameter(description="The grantee's email")] = "",
        model: Annotated[str, QueryParameter(description="ORG/NAME")] = "",
        tier: Annotated[str, QueryParameter(description="A tier")] = "",
        status: Annotated[str, QueryParameter(description=STATUS_HELP)] = "",
        cursor: Cursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> GrantPage:
        where = service.grant_filter(uow.rt, email=email, model=model, tier=tier, status=status)
        page = await service.grants_page(uow, where, cursor=cursor, limit=limit)
        return GrantPage([GrantOut.of(grant) for grant in page.items], page.next_cursor)

    @post(
        "/",
        summary="Grant an account access to a model at a tier, as `gateway grants create`",
        status_code=201,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def create(self, uow: Uow, admin: AdminDep, data: JSONBody[NewGrantIn]) -> GrantOut:
        ref = checked_model(data.model.strip())
        if ref is None:
            raise InvalidInput("model: expected ORG/NAME", code="invalid_model")
        grant = await service.create_grant(
            uow, email=data.email, model=ref, tier=data.tier, days=data.days, actor=_actor(admin)
        )
        return GrantOut.of(grant)

    @get(
        "/{grant_id:str}",
        summary="One grant",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def show(self, uow: Uow, admin: AdminDep, grant_id: GrantId) -> GrantOut:
        return GrantOut.of(await service.get_grant(uow, grant_id))

    @post(
        "/{grant_id:str}/suspend",
        summary="Suspend a grant; its download URLs stop working at once",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def suspend(
        self, uow: Uow, admin: AdminDep, grant_id: GrantId, data: JSONBody[GrantMoveIn]
    ) -> GrantOut:
        return await _moved(uow, admin, grant_id, GrantMove.SUSPEND, data)

    @post(
        "/{grant_id:str}/revoke",
        summary="Revoke a grant for good; its download URLs stop working at once",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def revoke(
        self, uow: Uow, admin: AdminDep, grant_id: GrantId, data: JSONBody[GrantMoveIn]
    ) -> GrantOut:
        return await _moved(uow, admin, grant_id, GrantMove.REVOKE, data)

    @post(
        "/{grant_id:str}/reinstate",
        summary="Lift a grant's suspension",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def reinstate(
        self, uow: Uow, admin: AdminDep, grant_id: GrantId, data: JSONBody[GrantMoveIn]
    ) -> GrantOut:
        return await _moved(uow, admin, grant_id, GrantMove.REINSTATE, data)
