"""The schema's migrations, for `gateway db`: which are pending, and applying them; and
whether the database answers at all, for /readyz."""

from __future__ import annotations

from sqlalchemy import text

from gateway.config import Settings
from gateway.db import migrate
from gateway.runtime import Runtime


async def check_database(rt: Runtime) -> None:
    """Raise unless the database answers a query, on a connection of its own: readiness
    asks about the database, not about a request's unit of work."""
    async with rt.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def pending_migrations(settings: Settings) -> list[str]:
    """The revisions not yet applied to the configured database, oldest first."""
    return list(migrate.pending_revisions(settings.database_url))


def apply_migrations(settings: Settings) -> list[str]:
    """Apply every pending migration (creating the home folder first); the ones applied."""
    settings.home.mkdir(parents=True, exist_ok=True)
    pending = pending_migrations(settings)
    if pending:
        migrate.upgrade(settings.database_url)
    return pending
