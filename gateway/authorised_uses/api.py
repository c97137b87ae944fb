"""The public list of authorised uses as JSON, and an applicant's withdrawal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Controller, delete, get
from litestar.params import QueryParameter

from gateway.api_reference import BEARER, COMMON, answers
from gateway.applications.api import ApplicationId, require_apply
from gateway.authorised_uses.service import authorised_uses, withdraw
from gateway.keys.auth import CallerDep
from gateway.web import Limit, Offset, Uow


@dataclass(frozen=True)
class AuthorisedUseOut:
    model: str
    tier: str
    approved_at: datetime | None
    institution: str
    project_title: str
    use_statement: str


@dataclass(frozen=True)
class AuthorisedUsePage:
    items: list[AuthorisedUseOut]
    total: int
    limit: int
    offset: int


class AuthorisedUsesController(Controller):
    tags = ["authorised uses"]

    @get(
        "/api/v1/authorised-uses",
        summary="Approved uses whose applicants agreed to be listed, newest first",
        responses=answers(*COMMON, 404),
    )
    async def listed(
        self,
        uow: Uow,
        model: Annotated[
            str | None, QueryParameter(description="Only this model (ORG/NAME)", max_length=200)
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AuthorisedUsePage:
        items, total = await authorised_uses(uow, model=model, limit=limit, offset=offset)
        return AuthorisedUsePage(
            items=[AuthorisedUseOut(**vars(item)) for item in items],
            total=total,
            limit=limit,
            offset=offset,
        )

    @delete(
        "/api/v1/applications/{application_id:str}/public-listing",
        summary="Take your use off the public list of authorised uses",
        security=BEARER,
        status_code=204,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def withdraw(self, uow: Uow, caller: CallerDep, application_id: ApplicationId) -> None:
        require_apply(caller, uow.rt.clock())
        await withdraw(uow, application_id, account_id=caller.account.id)
