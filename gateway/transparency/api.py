"""Published transparency reports over HTTP, for anyone: the list, each report as JSON
(the report and its signature; schema at /transparency/schema/v1.json) and as CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import PathParameter, QueryParameter

from gateway.api_reference import COMMON, answers
from gateway.transparency import service
from gateway.web import Name, Org, Uow
from stages.transparency.report import csv_rows

PeriodPath = Annotated[
    str,
    PathParameter(
        description="A year (2026), a quarter (2026-Q4) or a month (2026-11)", max_length=16
    ),
]
# A published report never changes: caches may keep it.
_KEPT = {"cache-control": "public, max-age=3600"}
_CSV = "text/csv"


@dataclass(frozen=True)
class ReportListed:
    period: PeriodPath
    model: str | None
    published_at: datetime | None
    sha256: str
    json_url: str
    csv_url: str
    page_url: str


def base_url(report: service.Report) -> str:
    return f"/transparency/{report.period}" + (f"/{report.scope}" if report.scope else "")


def listed(report: service.Report) -> ReportListed:
    url = base_url(report)
    return ReportListed(
        period=report.period,
        model=report.scope or None,
        published_at=report.published_at,
        sha256=report.sha256,
        json_url=f"{url}/report.json",
        csv_url=f"{url}/report.csv",
        page_url=url,
    )


def csv_text(report: service.Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("figure", "breakdown", "count", "shown"))
    writer.writerows(csv_rows(report.body["figures"]))
    return buffer.getvalue()


def _schema() -> dict[str, Any]:
    text = resources.files("gateway.transparency").joinpath("report.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class TransparencyController(Controller):
    tags = ["transparency"]

    @get(
        "/api/v1/transparency/reports",
        summary="Published transparency reports, newest period first",
        responses=answers(*COMMON),
    )
    async def reports(
        self,
        uow: Uow,
        limit: Annotated[int, QueryParameter(description="At most this many", ge=1, le=500)] = 50,
        offset: Annotated[int, QueryParameter(description="Skip this many", ge=0, le=10**9)] = 0,
    ) -> list[ReportListed]:
        found = await service.reports(uow, published_only=True, limit=limit, offset=offset)
        return [listed(report) for report in found]

    @get(
        "/transparency/schema/v1.json",
        summary="The JSON Schema of a transparency report (version 1)",
        responses=answers(),
    )
    async def schema(self) -> Response[dict[str, Any]]:
        return Response(_schema(), headers=_KEPT)

    @get(
        "/transparency/{period:str}/report.json",
        summary="A published report of the whole gateway, with its signature",
        responses=answers(*COMMON, 404),
    )
    async def gateway_json(self, uow: Uow, period: PeriodPath) -> Response[dict[str, Any]]:
        report = await service.published_report(uow, period, None)
        return Response(report.document, headers=_KEPT)

    @get(
        "/transparency/{period:str}/report.csv",
        summary="A published report of the whole gateway: its counts as CSV",
        media_type=_CSV,
        responses=answers(*COMMON, 404),
    )
    async def gateway_csv(self, uow: Uow, period: PeriodPath) -> Response[str]:
        report = await service.published_report(uow, period, None)
        return Response(csv_text(report), media_type=_CSV, headers=_KEPT)

    @get(
        "/transparency/{period:str}/{org:str}/{name:str}/report.json",
        summary="A published report of one model, with its signature",
        responses=answers(*COMMON, 404),
    )
    async def model_json(
        self, uow: Uow, period: PeriodPath, org: Org, name: Name
    ) -> Response[dict[str, Any]]:
        report = await service.published_report(uow, period, f"{org}/{name}")
        return Response(report.document, headers=_KEPT)

    @get(
        "/transparency/{period:str}/{org:str}/{name:str}/report.csv",
        summary="A published report of one model: its counts as CSV",
        media_type=_CSV,
        responses=answers(*COMMON, 404),
    )
    async def model_csv(self, uow: Uow, period: PeriodPath, org: Org, name: Name) -> Response[str]:
        report = await service.published_report(uow, period, f"{org}/{name}")
        return Response(csv_text(report), media_type=_CSV, headers=_KEPT)
