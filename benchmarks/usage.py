"""Benchmark usage reports over many evidence rows: the rollup's rate, and how long
`gateway usage` takes to answer, each dimension, against the same command's start alone.

    .venv/bin/python benchmarks/usage.py [--rows 10000000] [--postgres URL] [--work DIR]

A fresh PostgreSQL database (dropped at the end) gets the benchmark release (published
and promoted by the CLI, as in hot_paths.py), 2,000 accounts of 200 organisations, and
--rows download.requested rows over a year (one in ten a download started, one in fifty
refused), with their leaves of the evidence log written in SQL (the rollup reads leaves
in order; sealing itself is benchmarks/evidence_log.py's). Then:

- the rollup (`usage.service.roll_up`, run by run until it has read every leaf): rows/s;
- `gateway usage bench/hot:1.0 --by D --format json` for each dimension, and over one
  month: the whole process, 3 runs each, the median; the baseline is `gateway usage
  --help`, the same process without the report. The target is under 2 s each.

Exit code 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hot_paths as hp

DEFAULT_WORK = hp.ROOT / "benchmarks" / ".work" / "usage"
CHUNK = 1_000_000
TARGET_SECONDS = 2.0
RUNS = 3
REF = f"{hp.MODEL}:{hp.VERSION}"

ACCOUNTS_SQL = """
INSERT INTO accounts (id, email, display_name, is_operator, status, created_at, affiliation)
SELECT 'seed-' || g, 'seed-' || g || '@bench.example', '', false, 'active', now(),
       'Organisation ' || (g % 200)
FROM generate_series(1, 2000) AS g
"""
EVIDENCE_SQL = """
INSERT INTO evidence (at, kind, actor, model_id, release_id, account_id, data)
SELECT now() - interval '365 days' + make_interval(secs => g * 31536000.0 / CAST(:n AS bigint)),
       'download.requested', 'account:seed-' || (1 + g % 2000), r.model_id, r.id,
       'seed-' || (1 + g % 2000),
       json_build_object(
           'grant', 'grant-' || (g % 2000), 'artifact', a.id, 'path', a.path,
           'tier', 'trusted_partner', 'download', 'd-' || g, 'key', 'k', 'method', 'GET',
           'range', NULL,
           'outcome', CASE WHEN g % 50 = 0 THEN 'quota_exhausted' ELSE 'allowed' END,
           'new_download', g % 10 = 0 AND g % 50 <> 0,
           'client_address', '192.0.2.1', 'user_agent', 'bench')
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
CROSS JOIN LATERAL (SELECT id, model_id FROM releases WHERE version = :version) AS r
CROSS JOIN LATERAL (
    SELECT id, path FROM artifacts WHERE release_id = r.id ORDER BY id
    OFFSET (g % 4) LIMIT 1
) AS a
"""
LEAVES_SQL = """
INSERT INTO evidence_leaves (leaf_index, evidence_id, leaf_hash)
SELECT row_number() OVER (ORDER BY id) - 1 + :base, id, sha256(int8send(id))
FROM evidence WHERE id IN (SELECT evidence_id FROM evidence_unsealed)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--postgres", default=hp.DEFAULT_POSTGRES)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    databases = hp.Databases(args.postgres)
    args.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="usage-", dir=args.work))
    try:
        url = databases.create()
        run(url, root, args.rows)
    finally:
        databases.drop_all()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def prepare(url: str, root: Path) -> dict[str, str]:
    """The benchmark release published and at trusted_partner, by the CLI; its env."""
    gateway = Path(sys.executable).with_name("gateway")
    env = hp.gateway_env(root / "home")
    env["GATEWAY_DATABASE_URL"] = url
    sources = hp.make_sources(root / "sources")
    (root / "home").mkdir()
    for args in (
        ("db", "upgrade"),
        (
            "release",
            "publish",
            hp.MODEL,
            hp.VERSION,
            str(sources.small),
            "--license",
            str(sources.license_file),
        ),
        (
            "evidence",
            "attach",
            REF,
            "--kind",
            "evaluation",
            "--name",
            "internal-safety",
            "--result",
            "pass",
        ),
        ("stage", "promote", REF, "--to", "trusted_partner"),
    ):
        subprocess.run([str(gateway), *args], env=env, check=True, capture_output=True)
    return env


def run(url: str, root: Path, rows: int) -> None:
    gateway = Path(sys.executable).with_name("gateway")
    env = prepare(url, root)
    print(f"usage, {rows:,} evidence rows, PostgreSQL")
    seeded = asyncio.run(seed(url, rows))
    print(f"  seed                {rows / seeded:>12,.0f} rows/s  ({seeded:.1f} s, with leaves)")
    rolled, runs = asyncio.run(roll_up_all(url, root / "home"))
    print(f"  rollup              {rows / rolled:>12,.0f} rows/s  ({rolled:.1f} s, {runs} runs)")
    baseline = _median(
        lambda: subprocess.run(
            [str(gateway), "usage", "--help"], env=env, check=True, capture_output=True
        )
    )
    print(f"  `gateway usage --help` (baseline)            {baseline:6.2f} s")
    month = ("--from", "2026-06-01", "--to", "2026-06-30")
    for by, extra in [
        (d, ()) for d in ("day", "stage", "tier", "organisation", "artifact", "reason")
    ] + [("day", month)]:
        command = [str(gateway), "usage", REF, "--by", by, "--format", "json", *extra]
        took = _median(
            lambda c=command: subprocess.run(
                c,
                env=env,
                check=True,  # type: ignore[misc]
                capture_output=True,
            )
        )
        met = "met" if took < TARGET_SECONDS else "missed"
        label = f"--by {by}" + (" over June" if extra else "")
        print(
            f"  gateway usage {label:<24} {took:6.2f} s  (report alone {took - baseline:5.2f} s; "
            f"target < {TARGET_SECONDS:.0f} s: {met})"
        )


def _median(call: object) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def seed(url: str, rows: int) -> float:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        start = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(text(ACCOUNTS_SQL))
        base = 0
        for lo in range(1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            async with engine.begin() as connection:
                await connection.execute(
                    text(EVIDENCE_SQL), {"lo": lo, "hi": hi, "n": rows, "version": hp.VERSION}
                )
                # Earlier rows (the release's own) are sealed here too, in the same order.
                done = await connection.execute(text(LEAVES_SQL), {"base": base})
                base += done.rowcount
                await connection.execute(text("DELETE FROM evidence_unsealed"))
        took = time.perf_counter() - start
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("evidence", "evidence_leaves", "accounts"):
                await connection.execute(text(f"VACUUM (ANALYZE) {table}"))
        return took
    finally:
        await engine.dispose()


async def roll_up_all(url: str, home: Path) -> tuple[float, int]:
    from gateway.config import load_settings
    from gateway.db.uow import unit_of_work
    from gateway.runtime import build_runtime
    from gateway.usage.service import roll_up

    settings = load_settings({"GATEWAY_HOME": str(home), "GATEWAY_DATABASE_URL": url})
    rt = build_runtime(settings)
    try:
        start = time.perf_counter()
        runs = 0
        while True:
            async with unit_of_work(rt) as uow:
                read = await roll_up(uow)
            runs += 1
            if read == 0:
                return time.perf_counter() - start, runs
    finally:
        await rt.close()


if __name__ == "__main__":
    sys.exit(main())
