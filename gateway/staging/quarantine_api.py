"""The operator API of quarantine: hold a release by hand, and lift a hold (one made by
hand or by the trusted reporters' incidents). The same service functions as `gateway
quarantine` and the console's release page; the acting operator is the account of the
`admin` key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Controller, post
from litestar.params import JSONBody

from gateway.api_reference import COMMON, answers
from gateway.catalog.api import model_ref
from gateway.keys.auth import AdminDep
from gateway.staging.api import RELEASE
from gateway.staging.quarantine import QuarantineState, lift_quarantine, quarantine
from gateway.web import Name, Org, Uow, Version
from stages.actors import Actor


@dataclass
class QuarantineIn:
    """`reason`: why, recorded as evidence and told to the operators."""

    reason: str


@dataclass(frozen=True)
class QuarantineOut:
    release: str
    quarantined: bool
    reason: str | None
    quarantined_at: datetime | None
    quarantined_by: str | None  # an operator's actor, or `system:trigger` (trusted reporters)

    @classmethod
    def of(cls, state: QuarantineState) -> QuarantineOut:
        return cls(state.ref, state.quarantined, state.reason, state.at, state.by)


class OpsQuarantineController(Controller):
    tags = ["operators: stages"]

    @post(
        RELEASE + "/quarantine",
        summary="Quarantine a release: no new download links or API use until lifted",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def hold(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[QuarantineIn],
    ) -> QuarantineOut:
        state = await quarantine(
            uow,
            model_ref(org, name),
            version,
            reason=data.reason,
            actor=Actor.account(admin.account.id),
        )
        return QuarantineOut.of(state)

    @post(
        RELEASE + "/quarantine/lift",
        summary="Lift a quarantine: the operator's decision, with a reason",
        status_code=200,
        responses=answers(*COMMON, 401, 403, 404, 409),
    )
    async def lift(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        data: JSONBody[QuarantineIn],
    ) -> QuarantineOut:
        state = await lift_quarantine(
            uow,
            model_ref(org, name),
            version,
            reason=data.reason,
            actor=Actor.account(admin.account.id),
        )
        return QuarantineOut.of(state)
