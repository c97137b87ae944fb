"""`/report-key`: report API keys found where they should not be, without signing in."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from gateway.errors import GatewayError
from gateway.keys.found import MAX_KEYS, report_found_keys
from gateway.web import Limiter, Uow
from gateway.web.forms import Form, field, form_page
from gateway.web.pages import client_address

Count = Annotated[int | None, QueryParameter(ge=0, le=MAX_KEYS)]


def _page(values: Any = None, error: GatewayError | None = None, **done: Any) -> Template:
    return form_page(
        "keys/report_found.html", values=values, error=error, max_keys=MAX_KEYS, **done
    )


class FoundKeyPages(Controller):
    include_in_schema = False

    @get("/report-key")
    async def form(self, received: Count = None, revoked: Count = None) -> Template:
        return _page(received=received, revoked=revoked)

    @post("/report-key")
    async def report(
        self, request: Request[Any, Any, Any], uow: Uow, limiter: Limiter, data: Form
    ) -> Template | Redirect:
        keys = (field(data, "keys") or "").split()
        try:
            done = await report_found_keys(
                uow,
                keys,
                found_at=field(data, "found_at") or None,
                address=client_address(request),
                limiter=limiter,
            )
        except GatewayError as exc:
            return _page(values=data, error=exc)
        # See-other: a reload must not send the report again.
        return Redirect(
            f"/report-key?received={done.received}&revoked={done.revoked}", status_code=303
        )
