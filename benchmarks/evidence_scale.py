"""Benchmark the hot paths and `gateway stage status` with 10 million evidence rows, each
against the same deployment with an empty evidence table.

    .venv/bin/python benchmarks/evidence_scale.py [--rows 10000000] [--duration 10]
                                                  [--postgres URL] [--work DIR]

Two gateway homes on PostgreSQL (fresh databases on the server at --postgres, dropped at
the end), set up alike by the CLI as in hot_paths.py: `bench/hot:1.0` (4 files on local
storage) promoted to trusted_partner, two more releases of the model, an account with a
grant and a key. One of them ("10M") then gets --rows evidence rows, seeded in SQL
(INSERT ... SELECT FROM generate_series, a million rows a statement), then VACUUM
(ANALYZE) and CHECKPOINT on both, so that neither autovacuum nor a checkpoint of the seed
runs while measuring. The seeded rows look like production's: mostly url.issued and
download.requested rows with their JSON, spread over 2,000 more accounts (the bench
account holds 5%), the three releases (the benchmarked one takes half) and a year of
timestamps in id order; a few rows of every other kind, trigger.fired included.

Both servers run `gateway serve --workers 2`. Each figure is measured on one, then the
other, in alternating order over --rounds rounds (5) (`wrk -t2 -c64`, --duration seconds
after a 2 s warm-up): release JSON, the manifest of 4 artifacts, `/d/` with
`Range: bytes=0-0` (one URL: the quota takes a unit on its first request only) and the
catalog list. `gateway stage status` is timed as a whole process (--status-runs each,
alternating) and in process (the service call, 50 times each after a warm-up). Every
figure is printed with its empty-table baseline and ratio: rates 10M / empty, times
empty / 10M, so 1.0 means as fast and the target is >= 0.9 for each.

Then the plans of the evidence reads (EXPLAIN ANALYZE on the 10M database): the trigger
re-check's reads of a release's and of an account's trigger.fired rows.

Exit code 2 if wrk is missing, otherwise 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hot_paths as hp

DEFAULT_WORK = hp.ROOT / "benchmarks" / ".work" / "evidence_scale"
REF = f"{hp.MODEL}:{hp.VERSION}"
OTHER_VERSIONS = ("0.9", "1.1")  # more releases of the model, for the rows' spread
SEED_ACCOUNTS = 2_000
CHUNK = 1_000_000
TARGET = 0.9
SIDES = ("empty", "10M")

# One statement per chunk: :lo and :hi are the row numbers (1-based) of the chunk, :n the
# total, so timestamps rise with the id over a year, as they would have been written.
# Kinds by share: 55% url.issued, 30% download.requested, 4% download.manifest_refused,
# 3% account.signed_in, then key, grant, license, application, incident and stage rows;
# trigger.fired 1 in 10,000. Release rows: half the benchmarked release, the rest the two
# others; account rows carry no release. Accounts: the bench account 5%, the rest skewed
# (a few heavy users) over the seeded ones.
SEED_SQL = """
WITH refs AS (
    SELECT (SELECT array_agg(id ORDER BY id) FROM releases) AS releases,
           (SELECT id FROM releases WHERE version = $3) AS hot,
           (SELECT model_id FROM releases WHERE version = $3) AS model,
           (SELECT array_agg(id ORDER BY id) FROM accounts WHERE email LIKE 'seed-%') AS accts,
           (SELECT id FROM accounts WHERE email = $4) AS bench
), rows AS (
    SELECT g AS i,
           abs(hashint8extended(g, 1)) % 10000 AS k,
           abs(hashint8extended(g, 2)) % 1000 AS r,
           abs(hashint8extended(g, 3)) % 1000000 AS a
    FROM generate_series($1::bigint, $2::bigint) AS g
), shaped AS (
    SELECT i,
           CASE
               WHEN k < 5500 THEN 'url.issued'
               WHEN k < 8500 THEN 'download.requested'
               WHEN k < 8900 THEN 'download.manifest_refused'
               WHEN k < 9200 THEN 'account.signed_in'
               WHEN k < 9350 THEN 'key.created'
               WHEN k < 9500 THEN 'license.accepted'
               WHEN k < 9650 THEN 'grant.issued'
               WHEN k < 9750 THEN 'application.submitted'
               WHEN k < 9850 THEN 'grant.renewed'
               WHEN k < 9900 THEN 'incident.reported'
               WHEN k < 9950 THEN 'incident.note_added'
               WHEN k < 9999 THEN 'stage.promoted'
               ELSE 'trigger.fired'
           END AS kind,
           r, a, k
    FROM rows
)
INSERT INTO evidence (at, kind, actor, model_id, release_id, account_id, data)
SELECT now() - make_interval(secs => ($5::bigint - i) * 31536000.0 / $5::bigint),
       kind,
       CASE WHEN kind IN ('stage.promoted', 'trigger.fired') THEN 'system:trigger'
            WHEN kind = 'incident.note_added' THEN 'cli:ops@gateway-1'
            ELSE 'account:' || acct END,
       CASE WHEN rel IS NULL THEN NULL ELSE refs.model END,
       rel,
       acct,
       CASE
           WHEN kind IN ('url.issued', 'download.requested') THEN json_build_object(
               'grant', md5('grant' || acct),
               'artifact', 1 + r % 4,
               'path', 'part-' || r % 4 || '.bin',
               'tier', 'trusted_partner',
               'download', md5('download' || i),
               'expires_at', to_char(now() + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               'key', 'rgk_' || left(md5('key' || acct), 8),
               'method', 'GET',
               'range', CASE WHEN r % 3 = 0 THEN 'bytes=0-1048575' END,
               'outcome', 'served',
               'new_download', r % 5 = 0,
               'client_address', '10.' || r % 250 || '.' || a % 250 || '.' || k % 250,
               'user_agent', 'gateway-client/1.4 (python 3.11)')
           WHEN kind = 'trigger.fired' THEN json_build_object(
               'incident', md5('incident' || i), 'rule', 'confirmed-high',
               'action', 'suspend_accounts', 'tier', NULL, 'account', acct,
               'severity', 'high', 'outcome', 'suspended')
           ELSE json_build_object('reason', 'seeded ' || kind, 'key', md5('k' || i),
                                  'client_address', '10.0.' || r % 250 || '.1')
       END
FROM shaped
CROSS JOIN refs
CROSS JOIN LATERAL (
    SELECT CASE WHEN a < 50000 THEN refs.bench
                ELSE refs.accts[1 + ((a * a) / 1000000 * cardinality(refs.accts)) / 1000000]
           END AS acct,
           CASE WHEN kind IN ('account.signed_in', 'key.created', 'application.submitted')
                THEN NULL
                WHEN r < 500 THEN refs.hot
                ELSE refs.releases[1 + r % cardinality(refs.releases)]
           END AS rel
) AS picked
"""

SEED_ACCOUNTS_SQL = """
INSERT INTO accounts (id, email, display_name, is_operator, status, created_at,
                      email_verified_at, affiliation)
SELECT gen_random_uuid()::text, 'seed-' || n || '@lab' || n % 300 || '.example.org',
       'Seeded ' || n, false, 'active', now() - interval '400 days',
       now() - interval '399 days', 'Lab ' || n % 300
FROM generate_series(1, $1::int) AS n
"""


@dataclass(frozen=True)
class Settings:
    rows: int
    duration: int
    warm: int
    rounds: int
    status_runs: int
    postgres: str
    work: Path


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # "req/s" (higher is better) or "ms" (lower is better)
    values: dict[str, list[float]]

    def median(self, side: str) -> float:
        return statistics.median(self.values[side])

    @property
    def ratios(self) -> list[float]:
        """10M over empty for a rate, empty over 10M for a time (1.0: as fast), of each
        pair of runs made back to back: the machine's load drifts less within a pair."""
        pairs = zip(self.values["empty"], self.values["10M"], strict=True)
        if self.unit == "req/s":
            return [full / empty if empty else 0.0 for empty, full in pairs]
        return [empty / full if full else 0.0 for empty, full in pairs]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


@dataclass(frozen=True)
class Side:
    name: str
    env: dict[str, str]
    key: str
    url: str  # the database's URL, for asyncpg


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tools = hp.find_tools()
    if tools is None:
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg.work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cfg.work))
    procs = hp.Procs()
    databases = hp.Databases(cfg.postgres)
    loads = [os.getloadavg()]
    figures: list[Figure] = []
    notes: list[str] = []
    try:
        hp.print_machine(tools)
        figures, notes = run(cfg, tools, run_dir, procs, databases)
    finally:
        procs.stop_all()
        databases.drop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    loads.append(os.getloadavg())
    report(cfg, figures, notes, loads)
    return 0


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="evidence rows to seed")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument("--status-runs", type=int, default=7, help="CLI runs per side (7)")
    parser.add_argument("--postgres", default=hp.DEFAULT_POSTGRES, help="an admin URL")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"({DEFAULT_WORK})")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.duration < 1 or args.rounds < 1 or args.status_runs < 1:
        parser.error("--rows, --duration, --rounds and --status-runs are at least 1")
    return Settings(
        rows=args.rows,
        duration=args.duration,
        warm=2,
        rounds=args.rounds,
        status_runs=args.status_runs,
        postgres=args.postgres,
        work=args.work.absolute(),
    )


def run(
    cfg: Settings, tools: hp.Tools, run_dir: Path, procs: hp.Procs, databases: hp.Databases
) -> tuple[list[Figure], list[str]]:
    lua = run_dir / "bench.lua"
    lua.write_text(hp.WRK_LUA, encoding="utf-8")
    sources = hp.make_sources(run_dir / "source")
    sides = []
    for name in SIDES:
        print(f"\n== setup: the {name} home", flush=True)
        env = hp.gateway_env(run_dir / f"home-{name.lower()}")
        url = databases.create()
        env["GATEWAY_DATABASE_URL"] = url
        key = hp.setup_home(tools, env, sources, wide=False)
        for version in OTHER_VERSIONS:
            hp.gw(tools, env, "release", "publish", hp.MODEL, version, str(sources.small),
                  "--license", str(sources.license_file))  # fmt: skip
        sides.append(Side(name, env, key, url.replace("+asyncpg", "", 1)))
    full = sides[1]
    notes = [asyncio.run(seed(cfg, full.url))]
    for side in sides:
        asyncio.run(settle(side.url))
    notes.append(asyncio.run(sizes(full.url)))
    figures = measure_rates(cfg, tools, lua, run_dir, procs, sides)
    figures += measure_status(cfg, tools, sides)
    print("\n== plans of the evidence reads, on the 10M database", flush=True)
    notes.append(asyncio.run(explain_reads(full.url)))
    return figures, notes


def measure_rates(
    cfg: Settings, tools: hp.Tools, lua: Path, run_dir: Path, procs: hp.Procs, sides: list[Side]
) -> list[Figure]:
    """Both servers up; each figure on one, then the other, alternating by round."""
    wrk_cfg = hp.Settings(
        quick=False,
        backends=["postgres"],
        postgres=cfg.postgres,
        profile=False,
        wrk_seconds=cfg.duration,
        warm_seconds=cfg.warm,
        profile_seconds=0,
        connections=64,
        threads=2,
        work=cfg.work,
    )
    figures = [
        Figure("release", "release JSON", "req/s", {s: [] for s in SIDES}),
        Figure("manifest", f"manifest ({hp.ARTIFACTS} artifacts)", "req/s", {s: [] for s in SIDES}),
        Figure("d_local", "/d/ local bytes=0-0", "req/s", {s: [] for s in SIDES}),
        Figure("models", "GET /api/v1/models", "req/s", {s: [] for s in SIDES}),
    ]
    empty, full = sides
    with (
        hp.serving(tools, procs, empty.env, 2, run_dir) as (empty_base, _),
        hp.serving(tools, procs, full.env, 2, run_dir) as (full_base, _),
    ):
        targets = {
            "empty": targets_of(empty_base, empty.key),
            "10M": targets_of(full_base, full.key),
        }
        for n in range(cfg.rounds):
            order = SIDES if n % 2 == 0 else SIDES[::-1]
            print(f"\n== round {n + 1} of {cfg.rounds}: {' then '.join(order)}", flush=True)
            for figure in figures:
                for side in order:
                    url, extra = targets[side][figure.key]
                    hp.wrk(wrk_cfg, tools, lua, url, seconds=cfg.warm, **extra)
                    got = hp.wrk(wrk_cfg, tools, lua, url, seconds=cfg.duration, **extra)
                    figure.values[side].append(got.good_per_second)
                    print(f"   {figure.label:<24} {side:<5} {got.describe()}", flush=True)
    return figures


def measure_status(cfg: Settings, tools: hp.Tools, sides: list[Side]) -> list[Figure]:
    """`gateway stage status` as a process, then its service call in one process."""
    print("\n== gateway stage status", flush=True)
    cli = Figure("status_cli", "`gateway stage status` (process)", "ms", {s: [] for s in SIDES})
    call = Figure("status_call", "stage status, service call", "ms", {s: [] for s in SIDES})
    by_name = {s.name: s for s in sides}
    for side in sides:  # warm the page cache and the CLI's imports alike
        time_status(tools, side.env)
    for n in range(cfg.status_runs):
        for name in SIDES if n % 2 == 0 else SIDES[::-1]:
            cli.values[name].append(time_status(tools, by_name[name].env))
    for n in range(2):
        for name in SIDES if n % 2 == 0 else SIDES[::-1]:
            call.values[name].extend(asyncio.run(time_status_calls(by_name[name].env)))
    for figure in (cli, call):
        for name in SIDES:
            print(f"   {figure.label:<34} {name:<5} median {figure.median(name):8.2f} ms")
    return [cli, call]


def targets_of(base: str, key: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The URL and wrk options of each figure on one server; takes the /d/ quota unit."""
    release = f"{base}/api/v1/models/{hp.MODEL}/releases/{hp.VERSION}"
    hp.expect(release, 200)
    one = hp.mint(base, key, hp.VERSION, hp.ARTIFACTS)[0]["url"]
    hp.expect(one, 206, Range="bytes=0-0")
    return {
        "release": (release, {}),
        "manifest": (
            hp.manifest_url(base, hp.VERSION),
            {"method": "POST", "auth": f"Bearer {key}"},
        ),
        "d_local": (str(one), {"byte_range": "bytes=0-0"}),
        "models": (f"{base}/api/v1/models", {}),
    }


# --- the seed ---------------------------------------------------------------------------


async def seed(cfg: Settings, url: str) -> str:
    """Accounts, then the evidence rows, a chunk per statement; returns a note of the time."""
    import asyncpg

    print(f"\n== seeding {cfg.rows:,} evidence rows", flush=True)
    connection = await asyncpg.connect(url, timeout=30)
    began = time.perf_counter()
    try:
        await connection.execute(SEED_ACCOUNTS_SQL, SEED_ACCOUNTS)
        # The rows refer to accounts and releases that exist; the per-row foreign-key
        # checks would double the seed's time and check nothing that can be wrong.
        await connection.execute("SET session_replication_role = replica")
        for lo in range(1, cfg.rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, cfg.rows)
            await connection.execute(SEED_SQL, lo, hi, hp.VERSION, hp.ACCOUNT, cfg.rows)
            print(f"   {hi:>12,} rows  {time.perf_counter() - began:7.1f} s", flush=True)
        await connection.execute("SET session_replication_role = DEFAULT")
    finally:
        await connection.close()
    seconds = time.perf_counter() - began
    return f"seeded {cfg.rows:,} rows in {seconds:.0f} s"


async def settle(url: str) -> None:
    """VACUUM (ANALYZE) and CHECKPOINT: no autovacuum nor seed write-out while measuring."""
    import asyncpg

    connection = await asyncpg.connect(url, timeout=30)
    try:
        began = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE) evidence")
        await connection.execute("ANALYZE")
        await connection.execute("CHECKPOINT")
        print(f"   VACUUM (ANALYZE), CHECKPOINT: {time.perf_counter() - began:.1f} s", flush=True)
    finally:
        await connection.close()


async def sizes(url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=30)
    try:
        rows = await connection.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND (c.relname = 'evidence' OR c.relname IN "
            "(SELECT indexname FROM pg_indexes WHERE tablename = 'evidence')) ORDER BY 1"
        )
        count = await connection.fetchval("SELECT reltuples::bigint FROM pg_class "
                                          "WHERE relname = 'evidence'")  # fmt: skip
    finally:
        await connection.close()
    parts = ", ".join(f"{r['relname']} {r['bytes'] / 2**20:,.0f} MiB" for r in rows)
    return f"evidence: about {count:,} rows; {parts}"


# --- stage status -----------------------------------------------------------------------


def time_status(tools: hp.Tools, env: dict[str, str]) -> float:
    """Wall milliseconds of one `gateway stage status`, as an operator runs it."""
    began = time.perf_counter()
    out = hp.gw(tools, env, "stage", "status", REF)
    elapsed = (time.perf_counter() - began) * 1000
    if "trusted_partner" not in out:
        raise RuntimeError(f"`gateway stage status {REF}` printed {out!r}")
    return elapsed


async def time_status_calls(env: dict[str, str], calls: int = 25) -> list[float]:
    """Milliseconds of the command's service call in one process (start-up left out)."""
    from gateway.config import load_settings
    from gateway.db.uow import run_unit
    from gateway.runtime import build_runtime
    from gateway.staging.promotion import stage_status
    from stages.names import parse_model_ref

    model = parse_model_ref(hp.MODEL)
    rt = build_runtime(load_settings(env))
    try:
        for _ in range(5):
            await run_unit(rt, lambda uow: stage_status(uow, model, hp.VERSION))
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            await run_unit(rt, lambda uow: stage_status(uow, model, hp.VERSION))
            times.append((time.perf_counter() - began) * 1000)
        return times
    finally:
        await rt.close()


# --- plans ------------------------------------------------------------------------------


async def explain_reads(url: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the evidence reads, as the repository builds them;
    the account's read also under 0011's index (built in a transaction rolled back)."""
    import asyncpg
    from sqlalchemy.dialects import postgresql

    from gateway.incidents.repository import fired_evidence_query

    def sql(query: Any) -> str:
        literal = {"literal_binds": True}
        return str(query.compile(dialect=postgresql.dialect(), compile_kwargs=literal))

    connection = await asyncpg.connect(url, timeout=30)
    try:
        release_id = await connection.fetchval(
            "SELECT id FROM releases WHERE version = $1", hp.VERSION
        )
        account_id = await connection.fetchval(
            "SELECT id FROM accounts WHERE email = $1", hp.ACCOUNT
        )
        by_release = sql(fired_evidence_query(release_id, []))
        by_account = sql(fired_evidence_query(None, [account_id]))
        await explain(connection, "a release's trigger.fired rows", by_release)
        await explain(connection, "an account's trigger.fired rows", by_account)
        rolled_back = connection.transaction()
        await rolled_back.start()
        try:
            began = time.perf_counter()
            await connection.execute("DROP INDEX ix_evidence_account_kind")
            await connection.execute("CREATE INDEX ix_evidence_account_id ON evidence (account_id)")
            built = time.perf_counter() - began
            await explain(connection, "the same, with 0011's index on account_id", by_account)
        finally:
            await rolled_back.rollback()  # the schema stays as the migrations left it
    finally:
        await connection.close()
    return f"building an index on evidence (account_id) took {built:.0f} s"


async def explain(connection: Any, title: str, sql: str) -> None:
    rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
    plan = "\n".join(f"     {r[0]}" for r in rows)
    print(f"\n   {title}:\n   {' '.join(sql.split())}\n{plan}", flush=True)


# --- the report -------------------------------------------------------------------------


def report(
    cfg: Settings,
    figures: list[Figure],
    notes: list[str],
    loads: list[tuple[float, float, float]],
) -> None:
    print("\n== results")
    for note in notes:
        print(f"   {note}")
    print(f"   load average at the start {hp.fmt_load(loads[0])}, at the end "
          f"{hp.fmt_load(loads[-1])}")  # fmt: skip
    print(f"\n| figure | empty table | {cfg.rows:,} rows | ratio (of pairs) | target | result |")
    print("|---|---:|---:|---:|---|---|")
    for f in figures:
        if not all(f.values[s] for s in SIDES):
            print(f"| {f.label} | n/a | n/a | | >= {TARGET} | failed |")
            continue
        verdict = "PASS" if f.ratio >= TARGET else "MISS"
        print(
            f"| {f.label} | {f.median('empty'):,.1f} {f.unit} | {f.median('10M'):,.1f} {f.unit} "
            f"| {f.ratio:.2f} | >= {TARGET} | {verdict} |"
        )
    print("\nEach run (empty; 10M) and the ratio of each pair, or for the service call ranges:")
    for f in figures:
        if len(f.values["empty"]) > cfg.status_runs:
            runs = "; ".join(f"{min(f.values[s]):.1f} - {max(f.values[s]):.1f}" for s in SIDES)
            runs += f"; ratios {min(f.ratios):.2f} - {max(f.ratios):.2f}"
        else:
            runs = "; ".join(", ".join(f"{v:,.1f}" for v in f.values[s]) for s in SIDES)
            runs += "; ratios " + ", ".join(f"{r:.2f}" for r in f.ratios)
        print(f"   {f.label:<34} {runs}")


if __name__ == "__main__":
    sys.exit(main())
