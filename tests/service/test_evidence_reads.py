"""The reads of the evidence table find their rows through an index, whatever else the
table holds: the trigger re-check reads a release's or an account's trigger.fired rows,
and an account that downloads has thousands of other rows (millions in production).

The plans are read on a table of a few thousand rows after ANALYZE, as the planner
sees a table too big to scan: the index named must be the one whose prefix is the whole
filter, with nothing read and thrown away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Evidence
from gateway.incidents.repository import fired_evidence, fired_evidence_query
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.backends import on_each_database
from tests.sample import publish
from tests.units import reading

pytestmark = [pytest.mark.anyio, on_each_database()]
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
DOWNLOADS = 4_000  # the heavy account's url.issued and download.requested rows


def row(n: int, kind: str, account_id: str, release_id: int | None, **data: Any) -> dict[str, Any]:
    return {
        "at": AT + timedelta(seconds=n),
        "kind": kind,
        "actor": f"account:{account_id}",
        "model_id": None,
        "release_id": release_id,
        "account_id": account_id,
        "data": data,
    }


async def seeded(runtime: Runtime, tmp_path: Path) -> tuple[int, str, str]:
    """A release, a heavy downloader and a light one, their evidence; then ANALYZE.
    Returns (release id, heavy account id, light account id)."""
    release_id = (await publish(runtime, tmp_path)).release_id
    heavy = await create_account(runtime, "heavy@example.org", operator=False, actor="test")
    light = await create_account(runtime, "light@example.org", operator=False, actor="test")
    rows = [
        row(n, ("url.issued", "download.requested")[n % 2], heavy.id, release_id, download=str(n))
        for n in range(DOWNLOADS)
    ]
    rows += [row(n, "account.signed_in", light.id, None) for n in range(300)]
    # Two actions for the heavy account, of two incidents; one for the release.
    rows += [
        row(1, "trigger.fired", heavy.id, None, incident="i1", action="suspend_accounts"),
        row(2, "trigger.fired", heavy.id, None, incident="i2", action="suspend_accounts"),
        row(3, "trigger.fired", light.id, release_id, incident="i3", action="recall"),
    ]
    async with runtime.engine.begin() as connection:
        await connection.execute(insert(Evidence), rows)
    async with runtime.engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    return release_id, heavy.id, light.id


async def plan(session: AsyncSession, query: Any) -> str:
    dialect = session.get_bind().dialect
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
    result = await session.execute(text(explain + sql))
    return "\n".join(str(r[-1]) for r in result.all())


async def test_an_accounts_trigger_rows_come_from_the_account_kind_index(
    runtime: Runtime, tmp_path: Path
) -> None:
    _, heavy, _ = await seeded(runtime, tmp_path)
    async with reading(runtime) as session:
        shown = await plan(session, fired_evidence_query(None, [heavy]))
        fired = await fired_evidence(session, None, {heavy: None})
    assert "ix_evidence_account_kind" in shown, shown
    if runtime.engine.dialect.name == "sqlite":
        assert "(account_id=? AND kind=?)" in shown, shown
    else:
        assert "Seq Scan" not in shown, shown
        assert "Filter" not in shown, shown  # both columns in the index condition
    assert sorted(d["incident"] for d in fired) == ["i1", "i2"]


async def test_a_releases_trigger_rows_come_from_the_release_kind_index(
    runtime: Runtime, tmp_path: Path
) -> None:
    release_id, heavy, light = await seeded(runtime, tmp_path)
    async with reading(runtime) as session:
        shown = await plan(session, fired_evidence_query(release_id, []))
        fired = await fired_evidence(session, release_id, {heavy: None, light: None})
    assert "ix_evidence_release_kind" in shown, shown
    if runtime.engine.dialect.name == "sqlite":
        assert "(release_id=? AND kind=?)" in shown, shown
    else:
        assert "Seq Scan" not in shown, shown
        assert "Filter" not in shown, shown
    # A release's rows are read by the release alone, whoever they name.
    assert [d["incident"] for d in fired] == ["i3"]


async def test_no_release_and_no_account_reads_nothing(runtime: Runtime) -> None:
    assert fired_evidence_query(None, []) is None
    async with reading(runtime) as session:
        assert await fired_evidence(session, None, {}) == []
