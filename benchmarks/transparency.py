"""Benchmark a transparency report over many evidence rows: computing its figures from
the log at a checkpoint's size, against the rollup's count of the same rows.

    .venv/bin/python benchmarks/transparency.py [--rows 10000000] [--postgres URL]

A fresh PostgreSQL database (dropped at the end) is seeded as benchmarks/usage.py seeds
it (--rows download.requested rows over a year, with their leaves), plus 20,000
applications with their decisions, grants and 2,000 incidents with their moves, and
rolled up. Then, 3 runs each, the median:

- the report's figures for the last year (`transparency.service.figures_at`: the fold
  of every application, grant, incident, stage and enforcement row below the size, plus
  the rollups' downloads by stage and account), and suppressed: the target is 5 s;
- the baseline: one `SELECT count(*)` of the rollups' download rows for that year, the
  least a report of downloads reads.

Sealing and the rollup are not in the figure: their jobs keep up with the log (see
benchmarks/evidence_log.py and usage.py), so a build finds them at most a minute behind.
Exit code 0 whether or not the target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hot_paths as hp
import usage

TARGET_SECONDS = 5.0
RUNS = 3
APPLICATIONS = 20_000
INCIDENTS = 2_000

ACCESS_SQL = """
INSERT INTO evidence (at, kind, actor, model_id, release_id, account_id, data)
SELECT now() - interval '300 days' + make_interval(secs => g * 600 + s.offset_s),
       s.kind, 'account:seed-' || (1 + g % 2000), r.model_id, NULL, 'seed-' || (1 + g % 2000),
       CASE WHEN s.kind = 'grant.issued'
            THEN json_build_object('grant', 'grant-' || g, 'tier', 'trusted_partner',
                                   'expires_at', '2030-01-01T00:00:00+00:00',
                                   'application', 'a-' || g)
            ELSE json_build_object('application', 'a-' || g, 'tier', 'trusted_partner',
                                   'renewal_of', NULL, 'from_', 'in_review', 'to', 'x',
                                   'reason', CASE WHEN g % 3 = 0 THEN 'Not a research use' END,
                                   'grant', NULL)
       END
FROM generate_series(1, :n) AS g
CROSS JOIN LATERAL (SELECT model_id FROM releases WHERE version = :version) AS r
CROSS JOIN LATERAL (VALUES
    ('application.submitted', 0),
    (CASE WHEN g % 3 = 0 THEN 'application.denied' ELSE 'application.approved' END,
     86400 + g % 7200),
    (CASE WHEN g % 3 = 0 THEN 'application.expired' ELSE 'grant.issued' END, 86401 + g % 7200)
) AS s(kind, offset_s)
WHERE s.kind <> 'application.expired'
"""
INCIDENT_SQL = """
INSERT INTO evidence (at, kind, actor, model_id, release_id, account_id, data)
SELECT now() - interval '300 days' + make_interval(secs => g * 6000 + s.offset_s),
       s.kind, 'public', r.model_id, r.id, NULL,
       json_build_object('incident', 'i-' || g, 'category',
                         (ARRAY['misuse', 'safety', 'security', 'leak'])[1 + g % 4],
                         'links', 0, 'from_', 'reported', 'to', s.status,
                         'severity', (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4],
                         'assignee', NULL, 'resolution', NULL)
FROM generate_series(1, :n) AS g
CROSS JOIN LATERAL (SELECT id, model_id FROM releases WHERE version = :version) AS r
CROSS JOIN LATERAL (VALUES
    ('incident.reported', 0, 'reported'),
    ('incident.triaged', 3600 + g % 3600, 'triaged'),
    ('incident.resolved', 86400 + g % 86400, 'resolved')
) AS s(kind, offset_s, status)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--postgres", default=hp.DEFAULT_POSTGRES)
    parser.add_argument("--work", type=Path, default=hp.ROOT / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    databases = hp.Databases(args.postgres)
    args.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="transparency-", dir=args.work))
    try:
        url = databases.create()
        usage.prepare(url, root)
        print(f"transparency report, {args.rows:,} download rows, PostgreSQL")
        seeded = asyncio.run(usage.seed(url, args.rows))
        extra = asyncio.run(seed_access(url))
        print(f"  seed              {seeded + extra:8.1f} s (with leaves)")
        rolled, _ = asyncio.run(usage.roll_up_all(url, root / "home"))
        print(f"  rollup            {rolled:8.1f} s")
        asyncio.run(measure(url, root / "home"))
    finally:
        databases.drop_all()
        shutil.rmtree(root, ignore_errors=True)
    return 0


async def seed_access(url: str) -> float:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        start = time.perf_counter()
        async with engine.begin() as connection:
            base = await connection.scalar(text("SELECT count(*) FROM evidence_leaves"))
            await connection.execute(text(ACCESS_SQL), {"n": APPLICATIONS, "version": hp.VERSION})
            await connection.execute(text(INCIDENT_SQL), {"n": INCIDENTS, "version": hp.VERSION})
            await connection.execute(text(usage.LEAVES_SQL), {"base": base})
            await connection.execute(text("DELETE FROM evidence_unsealed"))
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM (ANALYZE) evidence"))
            await connection.execute(text("VACUUM (ANALYZE) evidence_leaves"))
        return time.perf_counter() - start
    finally:
        await engine.dispose()


async def _median(call: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


async def measure(url: str, home: Path) -> None:
    from sqlalchemy import func, select

    from gateway.config import load_settings
    from gateway.db.models import EvidenceLeaf, UsageDaily
    from gateway.db.uow import unit_of_work
    from gateway.runtime import build_runtime
    from gateway.transparency.service import figures_at
    from stages.transparency.report import Period

    settings = load_settings({"GATEWAY_HOME": str(home), "GATEWAY_DATABASE_URL": url})
    rt = build_runtime(settings)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(1)
    period = Period("last-year", end - timedelta(days=366), end)
    try:
        async with unit_of_work(rt) as uow:
            size = int(await uow.session.scalar(select(func.count()).select_from(EvidenceLeaf)))

        async def baseline() -> object:
            async with unit_of_work(rt) as uow:
                return await uow.session.scalar(
                    select(func.count()).where(
                        UsageDaily.measure == "download",
                        UsageDaily.day >= period.start.date(),
                    )
                )

        async def report() -> object:
            async with unit_of_work(rt) as uow:
                return await figures_at(uow, period, None, size, 10)

        base, rows = await _median(baseline)
        took, figures = await _median(report)
        assert isinstance(figures, dict)
        met = "met" if took <= TARGET_SECONDS else "missed"
        print(f"  rollup rows read (baseline)  {base:6.2f} s  ({rows:,} rows)")
        print(
            f"  report figures               {took:6.2f} s  (÷ baseline {took / base:.1f}; "
            f"target ≤ {TARGET_SECONDS:.0f} s: {met}); log of {size:,} leaves"
        )
        print(
            f"  downloads {figures['downloads']['shown']}, decisions "
            f"{figures['decisions']['shown']}, incidents {figures['incidents']['shown']}"
        )
    finally:
        await rt.close()


if __name__ == "__main__":
    sys.exit(main())
