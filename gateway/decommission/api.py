"""The operator API of decommissions: announce the end of a release's hosting, as
`gateway decommission` does (the same service function, the same date forms), the
acting operator being the account of the `admin` key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Controller, post
from litestar.params import JSONBody

from gateway.api_reference import COMMON, answers
from gateway.catalog.api import model_ref
from gateway.decommission import announce
from gateway.keys.auth import AdminDep
from gateway.web import Name, Org, Uow, Version
from stages.actors import Actor


@dataclass
class DecommissionIn:
    """`at`: YYYY-MM-DD (midnight UTC) or an ISO date and time (UTC unless it has an
    offset). `successor`: the version that replaces it. `license_text`: a new license
    that applies from the date."""

    at: str
    reason: str
    successor: str | None = None
    license_text: str | None = None


@dataclass(frozen=True)
class DecommissionOut:
    release: str
    phase: str  # announced, decommissioned or purged
    effective_at: datetime
    reason: str
    successor: str | None
    new_license_sha256: str | None
    reminders: list[datetime]
    grantees_notified: int
    purge_at: datetime


class OpsDecommissionController(Controller):
    tags = ["operators: stages"]

    @post(
        "/releases/{org:str}/{name:str}/{version:str}/decommission",
        summary="Announce the end of a release's hosting to every grantee of its model",
        status_code=201,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def decommission(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[DecommissionIn],
    ) -> DecommissionOut:
        shown = await announce.announce_with_status(
            uow,
            model_ref(org, name),
            version,
            at=data.at,
            reason=data.reason,
            successor=data.successor,
            license_text=data.license_text,
            actor=Actor.account(admin.account.id),
        )
        return DecommissionOut(
            release=shown.ref,
            phase=shown.phase,
            effective_at=shown.effective_at,
            reason=shown.reason,
            successor=shown.successor,
            new_license_sha256=shown.new_license_sha256,
            reminders=list(shown.reminders),
            grantees_notified=shown.grantees_notified,
            purge_at=shown.purge_at,
        )
