"""Names for what handlers receive, so every handler declares its inputs the same way."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromPath, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.ratelimits import RateLimiter
from gateway.runtime import Runtime

Db: TypeAlias = NamedDependency[AsyncSession]
Rt: TypeAlias = NamedDependency[Runtime]
Limiter: TypeAlias = NamedDependency[RateLimiter]
PathStr: TypeAlias = FromPath[str]
Org: TypeAlias = Annotated[str, PathParameter(description="Organisation, e.g. `acme`")]
Name: TypeAlias = Annotated[str, PathParameter(description="Model name, e.g. `tiny-lm`")]
Version: TypeAlias = Annotated[str, PathParameter(description="Release version, e.g. `1.0`")]
Limit: TypeAlias = Annotated[int, QueryParameter(ge=1, le=500, description="Page size")]
Offset: TypeAlias = Annotated[int, QueryParameter(ge=0, le=10_000_000, description="Items to skip")]
Page: TypeAlias = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number")]
