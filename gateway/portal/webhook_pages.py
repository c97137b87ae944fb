"""Webhooks on the operator console: each endpoint's circuit and its waiting deliveries."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from gateway.notify.endpoint_health import console
from gateway.web import Rt
from gateway.web.session import Viewer, require_operator


class WebhookPages(Controller):
    include_in_schema = False

    @get("/ops/webhooks")
    async def webhooks(self, runtime: Rt, viewer: Viewer) -> Template:
        require_operator(viewer, "/ops/webhooks")
        return Template(
            "ops/webhooks.html",
            context={"endpoints": await console(runtime), "now": runtime.clock()},
        )
