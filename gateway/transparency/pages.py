"""The public transparency pages: the list of published reports and each report."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from gateway.transparency import service
from gateway.transparency.api import PeriodPath, base_url, listed
from gateway.web import Name, Org, Uow


def hours(seconds: int | None) -> str:
    if seconds is None:
        return "not published (too few cases)"
    if seconds < 2 * 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _page(report: service.Report) -> Template:
    return Template(
        "transparency/report.html",
        context={"report": report, "body": report.body, "url": base_url(report), "hours": hours},
    )


class TransparencyPages(Controller):
    include_in_schema = False

    @get("/transparency")
    async def index(self, uow: Uow) -> Template:
        found = await service.reports(uow, published_only=True, limit=500)
        return Template("transparency/index.html", context={"reports": [listed(r) for r in found]})

    @get("/transparency/{period:str}")
    async def gateway_report(self, uow: Uow, period: PeriodPath) -> Template:
        return _page(await service.published_report(uow, period, None))

    @get("/transparency/{period:str}/{org:str}/{name:str}")
    async def model_report(self, uow: Uow, period: PeriodPath, org: Org, name: Name) -> Template:
        return _page(await service.published_report(uow, period, f"{org}/{name}"))
