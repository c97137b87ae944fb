"""The console's transparency pages: build a draft, review it, publish it."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from gateway.errors import GatewayError
from gateway.transparency import service
from gateway.transparency.api import base_url
from gateway.transparency.pages import hours
from gateway.web import PathStr, Uow
from gateway.web.forms import Form, field
from gateway.web.guards import Operator, back_to, requires_operator
from stages.actors import Actor


async def _index(
    uow: Uow, *, error: GatewayError | None = None, values: Form | None = None
) -> Template:
    found = await service.reports(uow, published_only=False, limit=200)
    return Template(
        "transparency/ops_index.html",
        context={
            "current": "transparency",
            "reports": found,
            "error": error,
            "period": field(values, "period") if values else "",
            "model": field(values, "model") if values else "",
            "url_of": base_url,
        },
        status_code=error.status if error else 200,
    )


class TransparencyOpsPages(Controller):
    include_in_schema = False
    guards = [requires_operator]

    @get("/ops/transparency")
    async def index(self, uow: Uow) -> Template:
        return await _index(uow)

    @post("/ops/transparency", opt=back_to("/ops/transparency"))
    async def build(self, uow: Uow, operator: Operator, data: Form) -> Template | Redirect:
        try:
            draft = await service.build(
                uow,
                field(data, "period") or "",
                field(data, "model") or None,
                actor=Actor.account(operator.id),
            )
        except GatewayError as exc:
            return await _index(uow, error=exc, values=data)
        return Redirect(f"/ops/transparency/{draft.id}", status_code=303)

    @get("/ops/transparency/{report_id:str}")
    async def report(self, uow: Uow, report_id: PathStr) -> Template:
        found = await service.get(uow, report_id)
        return Template(
            "transparency/report.html",
            context={
                "report": found,
                "body": found.body,
                "url": base_url(found),
                "hours": hours,
                "review": True,
            },
        )

    @post(
        "/ops/transparency/{report_id:str}/publish",
        opt=back_to("/ops/transparency/{report_id}"),
    )
    async def publish(
        self, uow: Uow, operator: Operator, report_id: PathStr
    ) -> Template | Redirect:
        try:
            done = await service.publish(uow, report_id, actor=Actor.account(operator.id))
        except GatewayError as exc:
            if exc.code == "report_not_found":
                raise
            return await _index(uow, error=exc)
        return Redirect(base_url(done), status_code=303)
