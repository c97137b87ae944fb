"""Names for what handlers receive, so every handler declares its inputs the same way."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromPath, PathParameter, QueryParameter

from gateway.db.uow import UnitOfWork
from gateway.ratelimits import RateLimiter
from gateway.runtime import Runtime

Rt: TypeAlias = NamedDependency[Runtime]
# The request's unit of work (gateway/web/unit.py): one session, committed at the end.
Uow: TypeAlias = NamedDependency[UnitOfWork]
Limiter: TypeAlias = NamedDependency[RateLimiter]
PathStr: TypeAlias = FromPath[str]
# The rules of stages/names.py, for the API reference: the services check them (400
# invalid_name), so the document states them without a second check here.
_PART = {"pattern": r"^[A-Za-z0-9](?:(?:\.?[A-Za-z0-9_-])*\.?[A-Za-z0-9])?$", "maxLength": 64}
_VERSION = {"pattern": r"^[A-Za-z0-9](?:(?:\.?[A-Za-z0-9_+-])*\.?[A-Za-z0-9])?$", "maxLength": 64}
Org: TypeAlias = Annotated[
    str, PathParameter(description="Organisation, e.g. `acme`", schema_extra=_PART)
]
Name: TypeAlias = Annotated[
    str, PathParameter(description="Model name, e.g. `tiny-lm`", schema_extra=_PART)
]
Version: TypeAlias = Annotated[
    str, PathParameter(description="Release version, e.g. `1.0`", schema_extra=_VERSION)
]
Limit: TypeAlias = Annotated[int, QueryParameter(ge=1, le=500, description="Page size")]
Offset: TypeAlias = Annotated[int, QueryParameter(ge=0, le=10_000_000, description="Items to skip")]
Page: TypeAlias = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number")]
# The operator API's lists (gateway/pagination.py): a cursor from the previous page.
Cursor: TypeAlias = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page, unchanged; none for the first page",
        max_length=512,
    ),
]
PageLimit: TypeAlias = Annotated[
    int, QueryParameter(ge=1, le=200, description="Page size (at most 200)")
]
