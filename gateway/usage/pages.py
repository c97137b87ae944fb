"""The console's usage page of a release: charts and tables over a range of days."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter
from litestar.response import Template

from gateway.errors import InvalidInput
from gateway.usage import charts
from gateway.usage.service import usage_page
from gateway.web import Name, Org, Uow, Version
from gateway.web.guards import requires_operator

Day = Annotated[str | None, QueryParameter(description="A day, e.g. 2026-10-01")]


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not a date such as 2026-10-01") from None


class UsagePages(Controller):
    include_in_schema = False
    guards = [requires_operator]

    @get("/ops/releases/{org:str}/{name:str}/{version:str}/usage")
    async def usage(
        self,
        uow: Uow,
        org: Org,
        name: Name,
        version: Version,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> Template:
        page = await usage_page(
            uow, f"{org}/{name}:{version}", start=_day(start, "from"), end=_day(end, "to")
        )
        days = [row.key for row in page.days]
        context = {
            "page": page,
            "base": f"/ops/releases/{org}/{name}/{version}",
            "downloads": charts.columns(
                "Downloads started a day, with distinct grantees (line)",
                [(day, row.downloads) for day, row in zip(days, page.days, strict=True)],
                line=[row.grantees for row in page.days],
            ),
            "bytes": charts.columns(
                "Bytes of the files downloaded a day",
                [(day, row.bytes / 2**30) for day, row in zip(days, page.days, strict=True)],
                unit=" GiB",
            ),
            "refusals": charts.columns(
                "Refusals a day",
                [(day, row.refusals) for day, row in zip(days, page.days, strict=True)],
            ),
            "incidents": charts.columns(
                "Incidents reported a day",
                list(zip(days, page.incidents, strict=True)),
            ),
        }
        return Template("ops/usage.html", context=context)
