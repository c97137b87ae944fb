"""Benchmark the evidence log: sealing, export and the reference verifier, each against a
baseline measured in the same run.

    .venv/bin/python benchmarks/evidence_log.py [--rows 1000000] [--postgres URL]
                                                [--work DIR]

A fresh PostgreSQL database (dropped at the end) gets --rows evidence rows in one
INSERT ... SELECT FROM generate_series per million, which the log's trigger queues as it
would queue rows the gateway writes; the time that takes is the first baseline, the
database's own rate of writing evidence rows. Then:

- sealing: `service.seal` in units of its per-run limit until the queue is empty; rows/s
  and the ratio to the insert rate, and the most rows the evidence.seal job can seal a
  second at its interval (its limit per run over 30 s), against which the hot paths'
  evidence rate (BENCHMARKS.md) is compared;
- export: `gateway audit export` to a file, as a process; rows/s;
- verify: the reference verifier (`python -I -S reference_verify.py`, the standard library
  alone) over that file against the latest checkpoint; rows/s, its peak memory, and the
  ratio of its time to `sha256sum` of the same file (one C pass over the bytes: the
  floor of any verifier that reads them). The target is >= 200,000 rows/s in bounded
  memory.

Exit code 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hot_paths as hp

DEFAULT_WORK = hp.ROOT / "benchmarks" / ".work" / "evidence_log"
CHUNK = 1_000_000
VERIFY_TARGET = 200_000
SEAL_INTERVAL_SECONDS = 30

# Rows like production's: mostly url.issued and download.requested, a client address on
# some (a personal field the leaf holds only as a salted hash), timestamps over a year.
SEED_SQL = """
INSERT INTO evidence (at, kind, actor, account_id, data)
SELECT now() - interval '365 days' + make_interval(secs => g * 31536.0 * 1000 / CAST(:n AS bigint)),
       CASE WHEN g % 10 < 6 THEN 'url.issued' ELSE 'download.requested' END,
       'account:bench-' || (g % 2000),
       NULL,
       json_build_object(
           'grant', 'grant-' || (g % 5000),
           'release', 'bench/hot:1.0',
           'artifact', 'model-' || (g % 4) || '.safetensors',
           'client_address', CASE WHEN g % 10 >= 6 THEN '192.0.2.' || (g % 250) END,
           'user_agent', CASE WHEN g % 10 >= 6 THEN 'gateway-download/0.1' END
       )
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=hp.DEFAULT_POSTGRES)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    databases = hp.Databases(args.postgres)
    args.work.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=args.work))
    try:
        url = databases.create()
        run(url, home, args.rows)
    finally:
        databases.drop_all()
        shutil.rmtree(home, ignore_errors=True)
    return 0


def run(url: str, home: Path, rows: int) -> None:
    from gateway.db.migrate import upgrade

    upgrade(url)
    env = hp.gateway_env(home)
    env["GATEWAY_DATABASE_URL"] = url
    print(f"evidence log, {rows:,} rows, PostgreSQL, this machine ({os.cpu_count()} cores)")
    inserted = asyncio.run(seed(url, rows))
    print(f"  insert (baseline)   {rows / inserted:>12,.0f} rows/s  ({inserted:.1f} s)")
    sealed, runs, slowest = asyncio.run(seal_all(url, home))
    from gateway.evidence_log.service import MAX_PER_RUN

    print(
        f"  seal                {rows / sealed:>12,.0f} rows/s  ({sealed:.1f} s, {runs} runs, "
        f"slowest {slowest:.1f} s)  ÷ insert {inserted / sealed:.2f}"
    )
    # A run seals at most MAX_PER_RUN rows and the next starts 30 s after this one did,
    # or when it ends if it took longer: what the job can keep up with.
    per_run = min(MAX_PER_RUN, rows / runs if runs else MAX_PER_RUN)
    capacity = per_run / max(SEAL_INTERVAL_SECONDS, slowest)
    print(
        f"  the job's capacity  {capacity:>12,.0f} rows/s  (at most {MAX_PER_RUN:,} a run, "
        f"one run every {SEAL_INTERVAL_SECONDS} s or as long as the slowest run took)"
    )
    export = home / "evidence.jsonl"
    gateway = Path(sys.executable).with_name("gateway")
    start = time.perf_counter()
    with export.open("wb") as stream:
        subprocess.run([str(gateway), "audit", "export"], env=env, stdout=stream, check=True)
    exported = time.perf_counter() - start
    size = export.stat().st_size
    print(
        f"  export              {rows / exported:>12,.0f} rows/s  ({exported:.1f} s, "
        f"{size / 2**20:,.0f} MiB, {size / rows:.0f} bytes a row)"
    )
    checkpoint, key = home / "checkpoint.txt", home / "key.txt"
    checkpoint.write_bytes(_output(gateway, env, "checkpoint"))
    key.write_bytes(_output(gateway, env, "public-key"))
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(export)], check=True, capture_output=True)
    hashed = time.perf_counter() - start
    verifier = hp.ROOT / "gateway" / "evidence_log" / "reference_verify.py"
    start = time.perf_counter()
    # The verifier's own peak memory, from /usr/bin/time: a process forked from this one
    # would report this one's as its own until it replaced it.
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    done = subprocess.run(
        [
            *timer,
            sys.executable,
            "-I",
            "-S",
            str(verifier),
            str(export),
            "--checkpoint",
            str(checkpoint),
            "--public-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    verified = time.perf_counter() - start
    *problem, peak_kib = done.stderr.strip().splitlines() if timer else ["0"]
    outcome = "verified" if done.returncode == 0 else f"FAILED: {' '.join(problem)}"
    rate = rows / verified
    met = "met" if rate >= VERIFY_TARGET and done.returncode == 0 else "missed"
    print(
        f"  verify              {rate:>12,.0f} rows/s  ({verified:.1f} s, {outcome}; "
        f"target {VERIFY_TARGET:,}: {met})"
    )
    print(
        f"  sha256sum (floor)   {rows / hashed:>12,.0f} rows/s  ({hashed:.1f} s)  "
        f"verify ÷ sha256sum {hashed / verified:.2f}"
    )
    print(f"  the verifier's peak memory: {int(peak_kib) / 1024:,.1f} MiB")


def _output(gateway: Path, env: dict[str, str], command: str) -> bytes:
    return subprocess.run(
        [str(gateway), "audit", command], env=env, capture_output=True, check=True
    ).stdout


async def seed(url: str, rows: int) -> float:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        start = time.perf_counter()
        for lo in range(1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            async with engine.begin() as connection:
                await connection.execute(text(SEED_SQL), {"lo": lo, "hi": hi, "n": rows})
        took = time.perf_counter() - start
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM (ANALYZE) evidence"))
            await connection.execute(text("VACUUM (ANALYZE) evidence_unsealed"))
        return took
    finally:
        await engine.dispose()


async def seal_all(url: str, home: Path) -> tuple[float, int, float]:
    from gateway.config import load_settings
    from gateway.db.uow import unit_of_work
    from gateway.evidence_log.service import seal
    from gateway.runtime import build_runtime

    settings = load_settings({"GATEWAY_HOME": str(home), "GATEWAY_DATABASE_URL": url})
    rt = build_runtime(settings)
    try:
        await rt.prepare()
        start = time.perf_counter()
        runs, slowest = 0, 0.0
        while True:
            began = time.perf_counter()
            async with unit_of_work(rt) as uow:
                done = await seal(uow)
            runs += 1
            slowest = max(slowest, time.perf_counter() - began)
            if done.sealed == 0:
                break
        return time.perf_counter() - start, runs, slowest
    finally:
        await rt.close()


if __name__ == "__main__":
    sys.exit(main())
