"""Webhooks on the operator console: each endpoint's circuit and its waiting deliveries."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from gateway.notify.endpoint_health import console
from gateway.web import Uow
from gateway.web.guards import requires_operator


class WebhookPages(Controller):
    include_in_schema = False
    guards = [requires_operator]

    @get("/ops/webhooks")
    async def webhooks(self, uow: Uow) -> Template:
        return Template(
            "ops/webhooks.html",
            context={"endpoints": await console(uow), "now": uow.rt.clock()},
        )
