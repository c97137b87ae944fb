"""The portal page where an external evaluator sends a result for a release: the same
service as `POST .../evaluations` and `gateway evaluate`, as the signed-in account."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from gateway.catalog.api import model_ref
from gateway.downloads.access import PortalCaller
from gateway.errors import GatewayError
from gateway.staging.evaluations import submit_evaluation
from gateway.staging.evidence_files import (
    EVIDENCE_BODY_MAX_BYTES,
    EVIDENCE_FILE_LIMIT_TEXT,
    read_upload,
)
from gateway.web import Name, Org, Uow, Version
from gateway.web.forms import field
from gateway.web.guards import SignedIn, back_to, requires_sign_in

EvaluationForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
_PAGE = "/models/{org}/{name}/releases/{version}/evaluate"
_ROUTE = "/models/{org:str}/{name:str}/releases/{version:str}/evaluate"


def _page(
    ref: str,
    version: str,
    *,
    notice: str | None = None,
    error: GatewayError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    return Template(
        "applicant/evaluate.html",
        context={
            "model": ref,
            "version": version,
            "notice": notice,
            "error": error,
            "values": values or {},
            "file_limit": EVIDENCE_FILE_LIMIT_TEXT,
        },
        status_code=error.status if error else 200,
    )


class EvaluationPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get(_ROUTE)
    async def form(self, org: Org, name: Name, version: Version) -> Template:
        return _page(str(model_ref(org, name)), version)

    @post(
        _ROUTE,
        request_max_body_size=EVIDENCE_BODY_MAX_BYTES,
        opt=back_to(_PAGE),
    )
    async def send(
        self,
        uow: Uow,
        account: SignedIn,
        org: Org,
        name: Name,
        version: Version,
        data: EvaluationForm,
    ) -> Template:
        ref = model_ref(org, name)
        shown = {key: field(data, key) for key in ("name", "result", "note")}
        try:
            row = await submit_evaluation(
                uow,
                PortalCaller(account),
                ref,
                version,
                name=shown["name"],
                result=shown["result"],
                file=await read_upload(data.get("file")),
                note=shown["note"] or None,
            )
        except GatewayError as exc:
            return _page(str(ref), version, error=exc, values=shown)
        stored = f" with {row.file_name}" if row.file_name else ""
        return _page(
            str(ref),
            version,
            notice=f"Recorded evaluation/{row.name} = {row.result}{stored}, attributed to you",
        )
