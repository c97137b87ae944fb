"""Releases on the operator console: the stage, the gates of the next one, and the moves.

The same service functions as `gateway stage ...` and `gateway recall ...`; the acting
operator is the signed-in account, so approvals by two operators are two people.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, URLEncodedBody
from litestar.response import Template

from gateway.errors import GatewayError, NotFound, Unavailable
from gateway.staging.evidence_files import (
    EVIDENCE_BODY_MAX_BYTES,
    EVIDENCE_FILE_LIMIT_TEXT,
    read_upload,
)
from gateway.staging.promotion import attach_evidence, promote, stage_status
from gateway.staging.quarantine import lift_quarantine, quarantine
from gateway.staging.recalls import recall, reinstate
from gateway.staging.service import list_releases, move_release
from gateway.staging.yanks import unyank, yank
from gateway.web import Name, Org, Uow, Version
from gateway.web.forms import field
from gateway.web.guards import Operator, back_to, requires_operator
from stages.actors import Actor
from stages.names import ModelRef
from stages.release import Move

Form = URLEncodedBody[dict[str, Any]]
# The evidence form sends a file; the rest of the form is a few short fields.
EvidenceForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


# Signing in from a release's forms comes back to the release's page.
_RELEASE_PAGE = "/ops/releases/{org}/{name}/{version}"


def _base(org: str, name: str, version: str) -> str:
    return f"/ops/releases/{org}/{name}/{version}"


async def _page(
    uow: Uow,
    org: str,
    name: str,
    version: str,
    *,
    notice: str | None = None,
    error: GatewayError | None = None,
) -> Template:
    status = await stage_status(uow, ModelRef(org, name), version)
    return Template(
        "ops/release.html",
        context={
            "status": status,
            "ladder": uow.rt.policy.ladder.names,
            "base": _base(org, name, version),
            "notice": notice,
            "error": error.message if error else None,
            "file_limit": EVIDENCE_FILE_LIMIT_TEXT,
        },
        status_code=error.status if error else 200,
        headers=_retry_after(error),
    )


def _retry_after(error: GatewayError | None) -> dict[str, str]:
    # A part that is down (the store, the database) may be back soon: say when to retry.
    if isinstance(error, Unavailable):
        return {"retry-after": str(error.retry_after_seconds)}
    return {}


class ReleaseOpsPages(Controller):
    include_in_schema = False
    guards = [requires_operator]

    @get("/ops/releases")
    async def releases(self, uow: Uow) -> Template:
        return Template("ops/releases.html", context={"releases": await list_releases(uow)})

    @get("/ops/releases/{org:str}/{name:str}/{version:str}")
    async def release(self, uow: Uow, org: Org, name: Name, version: Version) -> Template:
        return await _page(uow, org, name, version)

    @post(
        "/ops/releases/{org:str}/{name:str}/{version:str}/evidence",
        request_max_body_size=EVIDENCE_BODY_MAX_BYTES,
        opt=back_to(_RELEASE_PAGE),
    )
    async def evidence(
        self,
        uow: Uow,
        operator: Operator,
        org: Org,
        name: Name,
        version: Version,
        data: EvidenceForm,
    ) -> Template:
        try:
            attached = await attach_evidence(
                uow,
                ModelRef(org, name),
                version,
                kind=field(data, "kind"),
                name=field(data, "name"),
                result=field(data, "result"),
                file=await read_upload(data.get("file")),
                note=field(data, "note") or None,
                actor=Actor.account(operator.id),
            )
        except GatewayError as exc:
            return await _page(uow, org, name, version, error=exc)
        stored = f" with {attached.file_name}" if attached.file_name else ""
        return await _page(uow, org, name, version, notice=f"Evidence attached{stored}")

    @post(
        "/ops/releases/{org:str}/{name:str}/{version:str}/{action:str}", opt=back_to(_RELEASE_PAGE)
    )
    async def act(
        self,
        uow: Uow,
        operator: Operator,
        org: Org,
        name: Name,
        version: Version,
        action: Annotated[str, PathParameter()],
        data: Form,
    ) -> Template:
        actor = Actor.account(operator.id)
        model = ModelRef(org, name)
        reason = field(data, "reason") or None
        try:
            notice = await _perform(uow, model, version, action, actor, reason, data)
        except GatewayError as exc:
            return await _page(uow, org, name, version, error=exc)
        return await _page(uow, org, name, version, notice=notice)


async def _perform(
    uow: Uow,
    model: ModelRef,
    version: str,
    action: str,
    actor: str,
    reason: str | None,
    data: dict[str, Any],
) -> str:
    """Carry out one of the release page's forms; the notice that says what happened."""
    perform = _ACTIONS.get(action)
    if perform is None:
        raise NotFound(f"no action {action!r}", code="not_found")
    return await perform(uow, model, version, actor, reason, data)


async def _promote(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, data: dict[str, Any]
) -> str:
    outcome = await promote(
        uow,
        model,
        version,
        target=None,
        actor=actor,
        override_reason=reason if field(data, "override") == "on" else None,
    )
    if outcome.moved:
        return f"Promoted to {outcome.target}" + (
            " (gates overridden)" if outcome.overridden else ""
        )
    return f"Not promoted yet: {outcome.refusal()}"


async def _rollback(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, data: dict[str, Any]
) -> str:
    moved = await move_release(
        uow, model, version, Move.ROLLBACK, target=field(data, "to"), actor=actor, reason=reason
    )
    return f"Rolled back to {moved.to_stage}"


async def _recall(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, data: dict[str, Any]
) -> str:
    tier = field(data, "tier") or None
    done = await recall(uow, model, version, reason=reason or "", tier=tier, actor=actor)
    return (
        f"Recalled; {done.grantees_notified} grantee(s) notified"
        if done.releases
        else "Already recalled"
    )


async def _reinstate(
    uow: Uow, model: ModelRef, version: str, actor: str, _reason: str | None, data: dict[str, Any]
) -> str:
    tier = field(data, "tier") or None
    lifted = await reinstate(uow, model, version, tier=tier, actor=actor)
    return "Recall lifted" if lifted.lifted else f"Approval recorded; {'; '.join(lifted.unmet)}"


async def _yank(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, _data: dict[str, Any]
) -> str:
    yanked = await yank(uow, model, version, reason=reason or "", actor=actor)
    return f"Yanked; {yanked.grantees_notified} grantee(s) notified"


async def _quarantine(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, _data: dict[str, Any]
) -> str:
    await quarantine(uow, model, version, reason=reason or "", actor=actor)
    return "Quarantined; the operators are told"


async def _lift_quarantine(
    uow: Uow, model: ModelRef, version: str, actor: str, reason: str | None, _data: dict[str, Any]
) -> str:
    await lift_quarantine(uow, model, version, reason=reason or "", actor=actor)
    return "Quarantine lifted"


async def _unyank(
    uow: Uow, model: ModelRef, version: str, actor: str, _reason: str | None, _data: dict[str, Any]
) -> str:
    await unyank(uow, model, version, actor=actor)
    return "No longer yanked"


_ACTIONS: dict[
    str, Callable[[Uow, ModelRef, str, str, str | None, dict[str, Any]], Awaitable[str]]
] = {
    "promote": _promote,
    "rollback": _rollback,
    "recall": _recall,
    "reinstate": _reinstate,
    "yank": _yank,
    "unyank": _unyank,
    "quarantine": _quarantine,
    "lift-quarantine": _lift_quarantine,
}
