"""The operator API's exports, under `/api/v1/ops/exports/`: applications, grants and
enforcement actions as CSV or JSON Lines (`?format=csv|jsonl`; without it `Accept:
text/csv` gives CSV, anything else JSON Lines), as an attachment.

The filters are checked before the answer starts, so a bad one is a 400 with the error
body. The body is streamed after the handler has returned, when the request's unit of
work has already ended: the rows are read in a unit of the body's own, in its read phase
alone, one snapshot from the first row to the last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Stream

from gateway.api_reference import COMMON, answers
from gateway.exports import filters, service
from gateway.exports.filters import AccessQuery
from gateway.exports.formats import MEDIA_TYPES, Format, chosen_format, encoded, file_name
from gateway.keys.auth import AdminDep
from gateway.web import Uow
from stages.applications import ApplicationStatus
from stages.grants import GrantStatus

if TYPE_CHECKING:
    from gateway.db.uow import UnitOfWork
    from gateway.exports.service import Export
    from gateway.runtime import Runtime

OutputFormat = Annotated[
    str | None,
    QueryParameter(
        name="format",
        description="csv or jsonl (default: CSV for `Accept: text/csv`, else jsonl)",
        max_length=16,
    ),
]
Since = Annotated[
    str | None,
    QueryParameter(description="From this date on (YYYY-MM-DD or ISO, UTC)", max_length=64),
]
Until = Annotated[
    str | None,
    QueryParameter(description="Before this date (YYYY-MM-DD or ISO, UTC)", max_length=64),
]
_EXPORT = answers(*COMMON, 401, 403)


def provide_format(
    request: Request[Any, Any, Any], admin: AdminDep, output: OutputFormat = None
) -> Format:
    """The asked format, else the one `Accept` prefers; `*/*` or no Accept: JSON Lines.
    It takes `admin` so that the guard answers first: a 401 before any 400."""
    best = request.accept.best_match(["application/x-ndjson", "text/csv"])
    return chosen_format(output, prefers_csv=best == "text/csv")


def _attachment(
    rt: Runtime, kind: str, fmt: Format, opened: Callable[[UnitOfWork], Export]
) -> Stream:
    async def body() -> AsyncIterator[bytes]:
        async with rt.unit() as uow:
            async for chunk in encoded(fmt, opened(uow)):
                yield chunk

    name = file_name(kind, fmt, rt.clock())
    return Stream(
        body(),
        media_type=MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def provide_access_query(
    status: Annotated[
        str | None,
        QueryParameter(description="An application's or a grant's status", max_length=32),
    ] = None,
    model: Annotated[str | None, QueryParameter(description="ORG/NAME", max_length=200)] = None,
    tier: Annotated[
        str | None, QueryParameter(description="A tier of the policy", max_length=64)
    ] = None,
    since: Since = None,
    until: Until = None,
) -> AccessQuery:
    """The filters of the applications and grants exports, as asked."""
    return AccessQuery(status=status, model=model, tier=tier, since=since, until=until)


_ACCESS_QUERY = {"asked": Provide(provide_access_query, sync_to_thread=False)}


class OpsExportsController(Controller):
    path = "/exports"
    tags = ["operators: exports"]
    dependencies = {"fmt": Provide(provide_format, sync_to_thread=False)}

    @get(
        "/applications",
        summary="Every application that matches, with its review times, as CSV or JSON Lines",
        dependencies=_ACCESS_QUERY,
        responses=_EXPORT,
    )
    async def applications(
        self,
        uow: Uow,
        admin: AdminDep,
        fmt: NamedDependency[Format],
        asked: NamedDependency[AccessQuery],
    ) -> Stream:
        where = filters.access_filter(uow.rt, ApplicationStatus, asked)
        return _attachment(
            uow.rt, "applications", fmt, lambda unit: service.application_export(unit, where)
        )

    @get(
        "/grants",
        summary="Every grant that matches, with its account and standing, as CSV or JSON Lines",
        dependencies=_ACCESS_QUERY,
        responses=_EXPORT,
    )
    async def grants(
        self,
        uow: Uow,
        admin: AdminDep,
        fmt: NamedDependency[Format],
        asked: NamedDependency[AccessQuery],
    ) -> Stream:
        where = filters.access_filter(uow.rt, GrantStatus, asked)
        return _attachment(uow.rt, "grants", fmt, lambda unit: service.grant_export(unit, where))

    @get(
        "/enforcement",
        summary="Every enforcement action that matches, with its appeal, as CSV or JSON Lines",
        responses=_EXPORT,
    )
    async def enforcement(
        self,
        uow: Uow,
        admin: AdminDep,
        fmt: NamedDependency[Format],
        action: Annotated[
            str | None, QueryParameter(description="warn, suspend or terminate", max_length=32)
        ] = None,
        since: Since = None,
        until: Until = None,
    ) -> Stream:
        where = filters.enforcement_filter(action=action, since=since, until=until)
        return _attachment(
            uow.rt, "enforcement", fmt, lambda unit: service.enforcement_export(unit, where)
        )
