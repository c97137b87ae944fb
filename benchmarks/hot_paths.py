"""Benchmark the gateway's hot paths, each against /healthz of the same server, and profile
the manifest.

    .venv/bin/python benchmarks/hot_paths.py [--quick] [--backends postgres,sqlite]
                                             [--postgres URL] [--no-profile] [--work DIR]

Two backends, each with its own deployment shape: PostgreSQL (a fresh database on the
server at --postgres, dropped at the end) under `gateway serve --workers 2`, and embedded
SQLite under `--workers 1`. `wrk -t2 -c64` drives every rate, for 10 s (--quick: 3 s)
after a 2 s warm-up (--quick: 1 s), and each one follows its own /healthz run on the same
server, so every ratio compares two runs a few seconds apart:

  GET /api/v1/models                          the catalog list            (no target)
  GET /api/v1/models/{org}/{name}/releases/V  release JSON                >= 0.30 x /healthz
  POST .../releases/V/downloads               a manifest of 4 artifacts   >= 0.10 x /healthz
                                              (API key; 4 signed URLs)
  GET /d/<token>, S3 storage                  302 to a presigned URL      >= 0.20 x /healthz
                                              (a loopback moto_server)
  GET /d/<token>, local storage, bytes=0-0    206 of one byte             >= 0.20 x /healthz
  p99 latency of the manifest under -c64      (wrk --latency)             <= 50 ms
  cost per extra artifact of a manifest       (mean latency of a 200-artifact manifest
                                              minus a 4-artifact one, at -c1, / 196)
                                                                          <= 0.1 ms

SQLite's targets are half as demanding: half the ratios, twice the latencies.

If `gateway config show` lists a `cache_seconds` setting, every figure is measured a
second time on servers started with GATEWAY_CACHE_SECONDS=0 ("cold").

Quota and rate limits: the trusted_partner tier counts one download unit per download id,
on its first /d/ request, so each /d/ figure reuses one URL. Manifests are limited per API
key (`manifests_per_key`); each gateway home raises that limit to its most in gateway.toml.
The scheduler is off (GATEWAY_SCHEDULER=off): its jobs are not a hot path.

Profile (unless --no-profile or py-spy is missing), on each backend's servers and their
workers (`py-spy record --subprocesses`), under wrk, one path at a time:

  - the 4-artifact manifest, release JSON and /d/ (local, then on the S3 server), each
    under -c64: `--gil` (the samples that hold the GIL, i.e. the workers' Python CPU
    time), with the CPU time of every process on the machine over the same seconds (from
    /proc: the workers' event loops and other threads, postgres, wrk, everything else,
    idle); then `--native --idle --threads` (every thread, waits included), summarised as
    the seconds each kind of thread spends in each state (an event loop running or idle
    in epoll; an aiosqlite thread running a statement, idle, or sleeping in SQLite's busy
    handler for the write lock);
  - the 200-artifact manifest under -c2: `--gil` alone, where the cost per artifact
    shows.

Each `--gil` record is summarised as the top 15 frames by own and by total samples, and
each group's share (SQLAlchemy ORM and core, asyncpg, aiosqlite, Litestar/msgspec, JWT
and crypto, the gateway's own code, asyncio and the standard library, ...). The
speedscope and raw files are kept in the --work folder (open them at
https://www.speedscope.app/).

Setup happens in a fresh folder under benchmarks/.work/hot_paths/, removed at the end.
Every process started here is stopped (by process group) on the way out, and the
databases created here are dropped. Loopback only. Exit code 2 if wrk is missing,
otherwise 0 whether or not targets are met: this is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK = ROOT / "benchmarks" / ".work" / "hot_paths"
DEFAULT_POSTGRES = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MODEL = "bench/hot"
VERSION = "1.0"  # 4 artifacts
WIDE_VERSION = "2.0"  # 200 artifacts, for the cost per artifact
ARTIFACTS = 4
WIDE_ARTIFACTS = 200
ACCOUNT = "bench@example.org"
TIER = "trusted_partner"
BUCKET = "bench-hot-paths"
WORKERS = {"postgres": 2, "sqlite": 1}
# The most `[rate_limits]` accepts (gateway/ratelimits/rules.py MAX_LIMIT).
MANIFEST_LIMIT = 1_000_000
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Keep a developer's own AWS configuration and the instance metadata service out.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

# One Lua script for every wrk run: method, body and headers come from the environment, and
# done() prints the summary as one JSON line, so nothing is scraped from wrk's text output.
WRK_LUA = r"""
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local range = os.getenv("BENCH_RANGE")
if range and range ~= "" then
  wrk.headers["Range"] = range
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %f, "p50_us": %d, ' ..
    '"p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99)))
end
"""


# --- figures and targets ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A floor for a ratio to /healthz, or a ceiling for a latency in ms."""

    value: float
    at_most: bool = False

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.at_most else measured >= self.value

    def describe(self) -> str:
        return f"<= {self.value:g} ms" if self.at_most else f">= {self.value:.2f}"

    def relaxed(self) -> Target:
        """Half as demanding: half the ratio, twice the latency."""
        return Target(self.value * 2 if self.at_most else self.value / 2, self.at_most)


LABELS = {
    "healthz": "/healthz (baseline)",
    "models": "GET /api/v1/models",
    "release": "release JSON",
    "manifest": f"manifest ({ARTIFACTS} artifacts)",
    "d_s3": "/d/ S3 302",
    "d_local": "/d/ local bytes=0-0",
    "p99": "manifest p99, -c64",
    "per_artifact": "manifest ms per extra artifact",
}
TARGETS: dict[str, Target | None] = {
    "healthz": None,
    "models": None,
    "release": Target(0.30),
    "manifest": Target(0.10),
    "d_s3": Target(0.20),
    "d_local": Target(0.20),
    "p99": Target(50, at_most=True),
    "per_artifact": Target(0.1, at_most=True),
}
LATENCY_KEYS = frozenset({"p99", "per_artifact"})


def target_for(backend: str, key: str) -> Target | None:
    target = TARGETS[key]
    if target is None or backend == "postgres":
        return target
    return target.relaxed()


@dataclass
class Row:
    backend: str
    mode: str  # "" or "cold"
    key: str
    value: float | None  # req/s, or ms for the latency figures
    baseline: float | None  # req/s of the /healthz run just before, on the same server
    note: str = ""

    @property
    def compared(self) -> float | None:
        """What the target is checked against: the ratio, or the latency itself."""
        if self.key in LATENCY_KEYS:
            return self.value
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        target = target_for(self.backend, self.key)
        if self.compared is None:
            return "n/a"
        if target is None:
            return "-"
        return "met" if target.met(self.compared) else "MISSED"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    mean_ms: float
    p50_ms: float
    p99_ms: float

    @property
    def good_per_second(self) -> float:
        """Responses per second that were not errors (wrk counts status >= 400 as errors)."""
        bad = self.errors["status"] + self.errors["timeout"]
        return max(0, self.requests - bad) / self.seconds

    def describe(self) -> str:
        errs = {k: v for k, v in self.errors.items() if v}
        text = (
            f"{self.good_per_second:9.1f} req/s  ({self.requests} in {self.seconds:.1f} s, "
            f"mean {self.mean_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"
        )
        return text + (f", errors {errs})" if errs else ")")


@dataclass
class Settings:
    quick: bool
    backends: list[str]
    postgres: str
    profile: bool
    wrk_seconds: int
    warm_seconds: int
    profile_seconds: int
    connections: int
    threads: int
    work: Path


@dataclass
class Procs:
    """Every process started here, stopped by process group on the way out."""

    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> Any:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        self.running = [(n, p) for n, p in self.running if p is not proc]
        _kill_group(proc)

    def stop_all(self) -> None:
        while self.running:
            _, proc = self.running.pop()
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no worker of its group outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


@dataclass
class Databases:
    """The PostgreSQL databases created here, dropped on the way out."""

    admin_url: str
    names: list[str] = field(default_factory=list)

    def create(self) -> str:
        """A new empty database; returns the gateway's URL for it."""
        name = f"gw_bench_hot_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(self.admin_url, f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"

    def drop_all(self) -> None:
        while self.names:
            name = self.names.pop()
            try:
                asyncio.run(
                    _admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
            except Exception as exc:  # noqa: BLE001 - report and go on dropping the others
                print(f"could not drop database {name}: {exc}", file=sys.stderr)


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# --- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tools = find_tools()
    if tools is None:
        return 2
    # A TERM (a CI timeout, say) unwinds through the finally below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg.work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cfg.work))
    procs = Procs()
    databases = Databases(cfg.postgres)
    rows: list[Row] = []
    profiles: dict[str, ProfileSummary] = {}
    loads = [os.getloadavg()]
    try:
        print_machine(tools)
        rows, profiles = run_all(cfg, tools, run_dir, procs, databases, loads)
    finally:
        procs.stop_all()
        databases.drop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    loads.append(os.getloadavg())
    report(cfg, rows, profiles, loads)
    return 0


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="wrk -d3s, 1 s warm-up")
    parser.add_argument(
        "--backends", default="postgres,sqlite", help="postgres and/or sqlite (both)"
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin URL")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"({DEFAULT_WORK})")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - set(WORKERS):
        parser.error("--backends: a comma-separated list of postgres and sqlite")
    return Settings(
        quick=args.quick,
        backends=backends,
        postgres=args.postgres,
        profile=not args.no_profile,
        wrk_seconds=3 if args.quick else 10,
        warm_seconds=1 if args.quick else 2,
        profile_seconds=5 if args.quick else 10,
        connections=64,
        threads=2,
        work=args.work.absolute(),
    )


@dataclass(frozen=True)
class Tools:
    gateway: Path
    moto_server: Path
    wrk: str
    py_spy: str | None


def find_tools() -> Tools | None:
    beside = Path(sys.executable).parent
    gateway, moto = beside / "gateway", beside / "moto_server"
    missing = [str(p) for p in (gateway, moto) if not p.is_file()]
    if missing:
        sys.exit(
            "missing: " + ", ".join(missing) + "\n(run with .venv/bin/python from a venv with "
            "'.[test]' installed)"
        )
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: `apt-get install -y wrk` (Debian), then run again.")
        return None
    py_spy = shutil.which("py-spy", path=f"{beside}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        print(f"py-spy is not installed (`{beside / 'pip'} install py-spy`): no profile.")
    return Tools(gateway, moto, wrk, py_spy)


def run_all(
    cfg: Settings,
    tools: Tools,
    run_dir: Path,
    procs: Procs,
    databases: Databases,
    loads: list[tuple[float, float, float]],
) -> tuple[list[Row], dict[str, ProfileSummary]]:
    lua = run_dir / "bench.lua"
    lua.write_text(WRK_LUA, encoding="utf-8")
    sources = make_sources(run_dir / "source")

    print("\n== moto_server (S3 on loopback)", flush=True)
    moto_port = free_port()
    moto = procs.start(
        "moto_server",
        [str(tools.moto_server), "-H", "127.0.0.1", "-p", str(moto_port)],
        {**base_env(), **S3_ENV},
        run_dir / "moto.log",
    )
    wait_http(f"http://127.0.0.1:{moto_port}/", moto, run_dir / "moto.log", any_status=True)
    create_bucket(moto_port)

    rows: list[Row] = []
    profiles: dict[str, ProfileSummary] = {}
    for backend in cfg.backends:
        try:
            measure_backend(
                cfg,
                tools,
                lua,
                run_dir,
                procs,
                databases,
                backend,
                sources,
                moto_port,
                rows,
                profiles,
            )
        except Exception as exc:  # noqa: BLE001 - reported in its row; the next backend runs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"   {backend}: FAILED: {exc}", flush=True)
            rows.append(Row(backend, "", "healthz", None, None, f"failed: {first[:120]}"))
        loads.append(os.getloadavg())
    return rows, profiles


@dataclass(frozen=True)
class Sources:
    small: Path  # 4 artifacts
    wide: Path  # 200 artifacts
    license_file: Path


def make_sources(root: Path) -> Sources:
    small, wide = root / "small", root / "wide"
    for folder in (small, wide):
        folder.mkdir(parents=True)
    for n in range(ARTIFACTS):
        (small / f"part-{n}.bin").write_bytes(os.urandom(4096))
    for n in range(WIDE_ARTIFACTS):
        (wide / f"shard-{n:03d}.bin").write_bytes(os.urandom(1024))
    license_file = root / "LICENSE"
    license_file.write_text("Benchmark license: random bytes, licensed to no one.\n")
    return Sources(small, wide, license_file)


def measure_backend(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    run_dir: Path,
    procs: Procs,
    databases: Databases,
    backend: str,
    sources: Sources,
    moto_port: int,
    rows: list[Row],
    profiles: dict[str, ProfileSummary],
) -> None:
    workers = WORKERS[backend]
    print(f"\n== {backend}: setup (two gateway homes: local storage, S3 storage)", flush=True)
    local_env = gateway_env(run_dir / f"{backend}-local")
    s3_env = gateway_env(run_dir / f"{backend}-s3")
    s3_env.update(S3_ENV)
    s3_env["GATEWAY_STORAGE_URL"] = f"s3://{BUCKET}/{backend}"
    s3_env["GATEWAY_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
    s3_env["GATEWAY_S3_REGION"] = "us-east-1"
    if backend == "postgres":
        local_env["GATEWAY_DATABASE_URL"] = databases.create()
        s3_env["GATEWAY_DATABASE_URL"] = databases.create()
    local_key = setup_home(tools, local_env, sources, wide=True)
    s3_key = setup_home(tools, s3_env, sources, wide=False)

    modes = [""]
    if "cache_seconds" in config_names(tools, local_env):
        modes.append("cold")
    else:
        print("   `gateway config show` has no cache_seconds setting: no cold figures")
    for mode in modes:
        extra = {"GATEWAY_CACHE_SECONDS": "0"} if mode == "cold" else {}
        title = f"{backend}, --workers {workers}" + (", cold" if mode else "")
        print(f"\n== {title}: local-storage gateway", flush=True)
        with serving(tools, procs, {**local_env, **extra}, workers, run_dir) as (base, server):
            add = _adder(rows, backend, mode)
            d_local = measure_local(cfg, tools, lua, base, local_key, add)
            if cfg.profile and not mode and tools.py_spy:
                auth = f"Bearer {local_key}"
                release = f"{base}/api/v1/models/{MODEL}/releases/{VERSION}"
                probes = [
                    # Under the load of the rate figure, waits included; then the wide
                    # manifest on two connections, where the cost per artifact shows.
                    Probe(
                        f"manifest-{backend}-{ARTIFACTS}",
                        LABELS["manifest"],
                        manifest_url(base, VERSION),
                        cfg.connections,
                        wall=True,
                        method="POST",
                        auth=auth,
                    ),
                    Probe(
                        f"manifest-{backend}-{WIDE_ARTIFACTS}",
                        f"manifest ({WIDE_ARTIFACTS} artifacts)",
                        manifest_url(base, WIDE_VERSION),
                        2,
                        method="POST",
                        auth=auth,
                    ),
                    Probe(
                        f"release-{backend}",
                        LABELS["release"],
                        release,
                        cfg.connections,
                        wall=True,
                    ),
                    Probe(
                        f"d-local-{backend}",
                        LABELS["d_local"],
                        d_local,
                        cfg.connections,
                        wall=True,
                        byte_range="bytes=0-0",
                    ),
                ]
                profile_all(cfg, tools, lua, procs, server, probes, backend, profiles)
        print(f"\n== {title}: S3-storage gateway", flush=True)
        with serving(tools, procs, {**s3_env, **extra}, workers, run_dir) as (base, server):
            d_s3 = measure_s3(cfg, tools, lua, base, s3_key, _adder(rows, backend, mode))
            if cfg.profile and not mode and tools.py_spy:
                probe = Probe(f"d-s3-{backend}", LABELS["d_s3"], d_s3, cfg.connections, wall=True)
                profile_all(cfg, tools, lua, procs, server, [probe], backend, profiles)


def profile_all(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    procs: Procs,
    server: subprocess.Popen[bytes],
    probes: list[Probe],
    backend: str,
    profiles: dict[str, ProfileSummary],
) -> None:
    for probe in probes:
        title = f"{probe.what}, {backend} --workers {WORKERS[backend]}, -c{probe.connections}"
        summary = guarded_profile(cfg, tools, lua, procs, server, probe, title)
        if summary is not None:
            profiles[title] = summary


def _adder(rows: list[Row], backend: str, mode: str) -> Any:
    def add(key: str, value: float | None, baseline: float | None, note: str = "") -> None:
        rows.append(Row(backend, mode, key, value, baseline, note))

    return add


# --- gateway homes and servers -----------------------------------------------------------


def base_env() -> dict[str, str]:
    drop = ("GATEWAY_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(proxy, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def gateway_env(home: Path) -> dict[str, str]:
    env = base_env()
    env["GATEWAY_HOME"] = str(home)
    env["GATEWAY_SCHEDULER"] = "off"
    return env


def gw(tools: Tools, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(tools.gateway), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = "\n".join((done.stderr + done.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"gateway {' '.join(args)} failed ({done.returncode}):\n{last}")
    return done.stdout


def setup_home(tools: Tools, env: dict[str, str], sources: Sources, *, wide: bool) -> str:
    """Migrate; publish, attach evidence to and promote the release(s); an account with a
    grant and a key. Returns the API key."""
    home = Path(env["GATEWAY_HOME"])
    home.mkdir(parents=True)
    (home / "gateway.toml").write_text(
        "[rate_limits]\n"
        f"manifests_per_key = {{ limit = {MANIFEST_LIMIT}, window_seconds = 600 }}\n",
        encoding="utf-8",
    )
    gw(tools, env, "db", "upgrade")
    releases = [(VERSION, sources.small)] + ([(WIDE_VERSION, sources.wide)] if wide else [])
    for version, folder in releases:
        ref = f"{MODEL}:{version}"
        license_file = str(sources.license_file)
        gw(tools, env, "release", "publish", MODEL, version, str(folder), "--license", license_file)
        gw(
            tools,
            env,
            "evidence",
            "attach",
            ref,
            "--kind",
            "evaluation",
            "--name",
            "internal-safety",
            "--result",
            "pass",
        )
        gw(tools, env, "stage", "promote", ref, "--to", TIER)
    gw(tools, env, "accounts", "create", ACCOUNT)
    gw(tools, env, "grants", "create", "--account", ACCOUNT, "--model", MODEL, "--tier", TIER)
    out = gw(tools, env, "keys", "create", "--account", ACCOUNT, "--scope", "download")
    match = re.search(r"rgk_[A-Za-z0-9]+", out)
    if match is None:
        raise RuntimeError(f"`gateway keys create` printed no key: {out!r}")
    return match.group(0)


def config_names(tools: Tools, env: dict[str, str]) -> set[str]:
    """The setting names `gateway config show` lists."""
    out = gw(tools, env, "config", "show")
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+=", out, re.MULTILINE)}


@contextlib.contextmanager
def serving(
    tools: Tools, procs: Procs, env: dict[str, str], workers: int, run_dir: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = run_dir / f"serve-{Path(env['GATEWAY_HOME']).name}-{port}.log"
    cmd = [str(tools.gateway), "serve", "--port", str(port), "--workers", str(workers)]
    proc = procs.start("gateway", cmd, {**env, "GATEWAY_PUBLIC_URL": base}, log)
    try:
        wait_http(f"{base}/readyz", proc, log)
        yield base, proc
    finally:
        procs.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: Any, log: Path, *, any_status: bool = False) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: not up after 60 s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def create_bucket(port: int) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
    )
    s3.create_bucket(Bucket=BUCKET)


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    """One request, redirects not followed: (status, headers, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = b"{}" if method == "POST" else None
        sent = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body=body, headers={**sent, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def expect(url: str, status: int, method: str = "GET", **headers: str) -> Any:
    got, answer_headers, body = request(url, method, headers)
    if got != status:
        raise RuntimeError(f"{method} {url} answered {got}, expected {status}: {body[:300]!r}")
    return answer_headers, body


def manifest_url(base: str, version: str) -> str:
    return f"{base}/api/v1/models/{MODEL}/releases/{version}/downloads"


def mint(base: str, key: str, version: str, artifacts: int) -> list[dict[str, Any]]:
    """One manifest, checked for its number of artifacts."""
    _, body = expect(manifest_url(base, version), 200, "POST", Authorization=f"Bearer {key}")
    items: list[dict[str, Any]] = json.loads(body)["artifacts"]
    if len(items) != artifacts:
        raise RuntimeError(f"the {version} manifest lists {len(items)} artifacts, not {artifacts}")
    return items


# --- wrk --------------------------------------------------------------------------------


def wrk(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    url: str,
    *,
    seconds: int,
    connections: int | None = None,
    method: str = "GET",
    auth: str = "",
    byte_range: str = "",
) -> WrkResult:
    conns = connections or cfg.connections
    env = {
        **base_env(),
        "BENCH_METHOD": method,
        "BENCH_BODY": "{}" if method == "POST" else "",
        "BENCH_AUTH": auth,
        "BENCH_RANGE": byte_range,
    }
    cmd = [
        tools.wrk,
        *("-t", str(min(cfg.threads, conns)), "-c", str(conns), "-d", f"{seconds}s"),
        *("--timeout", "10s", "--latency", "-s", str(lua), url),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout")},
        mean_ms=data["mean_us"] / 1000,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def paired(
    cfg: Settings, tools: Tools, lua: Path, base: str, url: str, label: str, **target: Any
) -> tuple[WrkResult, WrkResult]:
    """Warm the target, then /healthz and the target back to back, each for wrk_seconds."""
    wrk(cfg, tools, lua, url, seconds=cfg.warm_seconds, **target)
    baseline = wrk(cfg, tools, lua, f"{base}/healthz", seconds=cfg.wrk_seconds)
    measured = wrk(cfg, tools, lua, url, seconds=cfg.wrk_seconds, **target)
    print(f"   /healthz          {baseline.describe()}", flush=True)
    print(f"   {label:<17} {measured.describe()}", flush=True)
    return baseline, measured


def errors_note(result: WrkResult) -> str:
    errs = {k: v for k, v in result.errors.items() if v}
    return f"errors {errs}" if errs else ""


def measure_local(cfg: Settings, tools: Tools, lua: Path, base: str, key: str, add: Any) -> str:
    """/healthz, the catalog, the release, the manifest, /d/ local, p99 and per artifact;
    returns the /d/ URL it used."""
    auth = f"Bearer {key}"
    release = f"{base}/api/v1/models/{MODEL}/releases/{VERSION}"
    expect(f"{base}/api/v1/models", 200)
    expect(release, 200)
    items = mint(base, key, VERSION, ARTIFACTS)
    mint(base, key, WIDE_VERSION, WIDE_ARTIFACTS)
    one = items[0]["url"]
    # The first /d/ request of the download id takes its quota unit; every later one is free.
    expect(one, 206, Range="bytes=0-0")

    wrk(cfg, tools, lua, f"{base}/healthz", seconds=cfg.warm_seconds)
    healthz: list[float] = []
    figures: list[tuple[str, str, dict[str, Any]]] = [
        ("models", f"{base}/api/v1/models", {}),
        ("release", release, {}),
        ("manifest", manifest_url(base, VERSION), {"method": "POST", "auth": auth}),
        ("d_local", one, {"byte_range": "bytes=0-0"}),
    ]
    for key_, url, target in figures:
        baseline, measured = paired(cfg, tools, lua, base, url, LABELS[key_][:17], **target)
        healthz.append(baseline.good_per_second)
        add(key_, measured.good_per_second, baseline.good_per_second, errors_note(measured))
        if key_ == "manifest":
            note = f"at {measured.good_per_second:.0f} req/s, p50 {measured.p50_ms:.0f} ms"
            add("p99", measured.p99_ms, None, note)
    add("healthz", statistics.median(healthz), statistics.median(healthz), "median of 4 runs")

    # The cost per artifact: one connection, so the latency is the work, not a queue.
    small: dict[str, Any] = {"method": "POST", "auth": auth, "connections": 1}
    wide = {**small, "url": manifest_url(base, WIDE_VERSION)}
    small["url"] = manifest_url(base, VERSION)
    for spec in (small, wide):
        wrk(cfg, tools, lua, seconds=cfg.warm_seconds, **spec)
    one_small = wrk(cfg, tools, lua, seconds=cfg.wrk_seconds, **small)
    one_wide = wrk(cfg, tools, lua, seconds=cfg.wrk_seconds, **wide)
    print(f"   manifest x{ARTIFACTS} -c1  {one_small.describe()}")
    print(f"   manifest x{WIDE_ARTIFACTS} -c1 {one_wide.describe()}", flush=True)
    per = (one_wide.mean_ms - one_small.mean_ms) / (WIDE_ARTIFACTS - ARTIFACTS)
    add(
        "per_artifact",
        per,
        None,
        f"-c1 mean {one_small.mean_ms:.1f} ms (x{ARTIFACTS}) vs {one_wide.mean_ms:.1f} ms "
        f"(x{WIDE_ARTIFACTS}); x{ARTIFACTS} -c1 p99 {one_small.p99_ms:.1f} ms",
    )
    return str(one)


def measure_s3(cfg: Settings, tools: Tools, lua: Path, base: str, key: str, add: Any) -> str:
    """/d/ on S3 storage against /healthz; returns the /d/ URL it used."""
    url: str = mint(base, key, VERSION, ARTIFACTS)[0]["url"]
    headers, _ = expect(url, 302)  # takes the download's quota unit
    location = headers.get("location", headers.get("Location", ""))
    if not location.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"/d/ in S3 mode redirected to {location!r}, not the moto_server")
    wrk(cfg, tools, lua, f"{base}/healthz", seconds=cfg.warm_seconds)
    baseline, measured = paired(cfg, tools, lua, base, url, "/d/ S3 302")
    add("d_s3", measured.good_per_second, baseline.good_per_second, errors_note(measured))
    return url


# --- the profile ------------------------------------------------------------------------

# Groups of code, by the path of a frame's file; the first match wins.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQLAlchemy ORM", ("/sqlalchemy/orm/",)),
    ("SQLAlchemy core", ("/sqlalchemy/", "<sqlalchemy generated")),
    ("asyncpg", ("/asyncpg/",)),
    ("aiosqlite/sqlite3", ("/aiosqlite/", "/sqlite3/")),
    ("Litestar/msgspec", ("/litestar/", "/msgspec/")),
    ("JWT/crypto signing", ("/jwt/", "/cryptography/")),
    ("our code", (f"{ROOT}/gateway/", f"{ROOT}/stages/", f"{ROOT}/policies/")),
    ("granian", ("/granian/",)),
    ("other libraries", ("/site-packages/",)),
    ("asyncio/stdlib", ("/lib/python3",)),
)


def group_of(path: str) -> str:
    for name, needles in GROUPS:
        if any(needle in path for needle in needles):
            return name
    return "other"


def short_path(path: str) -> str:
    for marker in ("/site-packages/", f"{ROOT}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    match = re.search(r"/lib/python3\.\d+/(.*)", path)
    return match.group(1) if match else path


# Where a thread of a worker is, from its native and Python stack (py-spy --native --idle
# --threads): the thread's kind from its name, then the first state whose frame names
# appear on the stack.
LOOP_STATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting for the GIL", ("take_gil", "PyEval_RestoreThread")),
    ("idle in epoll (waiting for clients or the database)", ("EpollSelector.select",)),
)
SQLITE_STATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting for the write lock (SQLite's busy handler, sleeping)", ("sqlite3InvokeBusyHandler",)),
    ("waiting for the GIL", ("take_gil", "PyEval_RestoreThread")),
    ("running a statement in SQLite", ("_pysqlite_query_execute", "pysqlite_cursor_")),
    ("idle, waiting for work", ("_queue_SimpleQueue_get",)),
)
# Frames that run whatever was queued: a stack is read from the innermost one down, so
# "total" counts the request's own work rather than the server's start-up chain.
RUNNERS = frozenset({"Handle._run", "Thread.run"})
# The chain every HTTP request passes through on its way to the route handler (granian's
# task, Litestar's app, router and middleware, the gateway's two middlewares): its frames
# are left out of the top frames by total. SQLAlchemy runs each statement in a greenlet
# whose stack starts at greenlet_spawn, so a frame above a query (a route handler, a
# service) counts only the samples outside the query.
CHAIN = re.compile(
    r"/granian/|/litestar/(app|_asgi/|middleware/|routes/)|/gateway/web/(request_guard|secret_pages)"
)


@dataclass
class ProfileSummary:
    samples: int
    seconds: float
    rate: int
    processes: dict[str, int]  # samples per process: how busy each worker's GIL was
    own: list[tuple[str, str, int]]  # (frame, group, samples), by own samples
    total: list[tuple[str, str, int]]  # by samples with the frame anywhere on the stack
    groups_own: Counter[str]
    groups_total: Counter[str]
    wrk_line: str
    path: Path
    states: dict[str, dict[str, float]] = field(default_factory=dict)  # pid -> state -> s
    cpu: dict[str, float] = field(default_factory=dict)  # who -> % of one core


@dataclass(frozen=True)
class Probe:
    """What to profile: one request under `connections`; `wall`: also the state of every
    thread (waits included). `name` names the files kept in the work folder."""

    name: str
    what: str
    url: str
    connections: int
    wall: bool = False
    method: str = "GET"
    auth: str = ""
    byte_range: str = ""


def guarded_profile(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    procs: Procs,
    server: subprocess.Popen[bytes],
    probe: Probe,
    title: str,
) -> ProfileSummary | None:
    try:
        return profile_path(cfg, tools, lua, procs, server, probe, title)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        print(f"   profile: FAILED: {exc}", flush=True)
        return None


def profile_path(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    procs: Procs,
    server: subprocess.Popen[bytes],
    probe: Probe,
    title: str,
) -> ProfileSummary:
    """py-spy on the server and its workers while wrk sends the probe's request: first
    the samples that hold the GIL (Python's CPU time, by frame) with the CPU time of every
    process on the machine, then (probe.wall) every thread's state, waits included."""
    assert tools.py_spy is not None
    seconds = cfg.profile_seconds
    then = ", then --native --idle --threads" if probe.wall else ""
    print(f"   profile {title}: py-spy record --gil{then}, {seconds} s each", flush=True)
    out = cfg.work / f"{probe.name}.speedscope.json"
    wrk_out = cfg.work / f"{probe.name}.wrk.txt"
    wrk_out.unlink(missing_ok=True)
    env = {
        **base_env(),
        "BENCH_METHOD": probe.method,
        "BENCH_BODY": "{}" if probe.method == "POST" else "",
        "BENCH_AUTH": probe.auth,
        "BENCH_RANGE": probe.byte_range,
    }
    cmd = [
        tools.wrk,
        *("-t", str(min(cfg.threads, probe.connections)), "-c", str(probe.connections)),
        *("-d", f"{(2 if probe.wall else 1) * seconds + 5}s", "--timeout", "10s"),
        *("-s", str(lua), probe.url),
    ]
    # py-spy stops the process for each sample (and unwinds every thread's native stack
    # for the wall view): a low rate there disturbs less.
    rate, wall_rate = 100, 25
    load = procs.start("wrk", cmd, env, wrk_out)
    try:
        time.sleep(1.5)
        before = cpu_times(server.pid, load.pid)
        py_spy(tools, server, seconds, ["--gil", "--rate", str(rate)], "speedscope", out)
        cpu = cpu_share(before, cpu_times(server.pid, load.pid))
        wall = cfg.work / f"{probe.name}.wall.txt"
        if probe.wall:
            py_spy(
                tools,
                server,
                seconds,
                ["--native", "--idle", "--threads", "--rate", str(wall_rate)],
                "raw",
                wall,
            )
        load.wait(timeout=seconds + 30)  # its summary comes at the end
    finally:
        procs.stop(load)
    wrk_text = wrk_out.read_text(errors="replace")
    wrk_line = next(
        (ln.strip() for ln in wrk_text.splitlines() if ln.startswith("WRKJSON")), "wrk: no summary"
    )
    summary = summarise(out, seconds, rate, wrk_line)
    if probe.wall:
        # The main process only waits for its workers.
        states = thread_states(wall, wall_rate)
        summary.states = {k: v for k, v in states.items() if not k.startswith(f"{server.pid}|")}
    summary.cpu = cpu
    return summary


def py_spy(
    tools: Tools,
    server: subprocess.Popen[bytes],
    seconds: int,
    options: list[str],
    form: str,
    out: Path,
) -> None:
    assert tools.py_spy is not None
    cmd = [
        tools.py_spy,
        "record",
        *("--pid", str(server.pid), "--subprocesses", "--duration", str(seconds)),
        *options,
        *("--format", form, "--output", str(out)),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr.strip()[-400:]}")


def summarise(
    path: Path, seconds: float, rate: int, wrk_line: str, top: int = 15
) -> ProfileSummary:
    """Own and total samples per frame and per group, from a speedscope file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    frames = data["shared"]["frames"]
    keys = [f"{f['name']} ({short_path(f.get('file') or '?')})" for f in frames]
    groups = [group_of(f.get("file") or "") for f in frames]
    # py-spy puts a frame for each process at the root of its stacks: not code.
    real = [bool(f.get("file")) for f in frames]
    runner = [f["name"] in RUNNERS for f in frames]
    chain = [bool(CHAIN.search(f.get("file") or "")) for f in frames]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    groups_own: Counter[str] = Counter()
    groups_total: Counter[str] = Counter()
    processes: Counter[str] = Counter()
    group_by_key: dict[str, str] = {}
    samples = 0
    for profile in data["profiles"]:
        for stack in profile["samples"]:
            code = [i for i in stack if real[i]]
            if not code:
                continue
            samples += 1
            named = [frames[i]["name"] for i in stack if not real[i]]
            pid = re.match(r"process (\d+)", named[-1]) if named else None
            processes[pid.group(1) if pid else "?"] += 1
            leaf = code[-1]
            own[keys[leaf]] += 1
            groups_own[groups[leaf]] += 1
            inner = max((n for n, i in enumerate(code) if runner[i]), default=-1)
            work = code[inner + 1 :] or code[-1:]
            for name in {keys[i] for i in work if not chain[i]}:
                total[name] += 1
            for name in {groups[i] for i in work}:
                groups_total[name] += 1
            for i in code:
                group_by_key.setdefault(keys[i], groups[i])
    return ProfileSummary(
        samples=samples,
        seconds=seconds,
        rate=rate,
        processes=dict(processes),
        own=[(k, group_by_key[k], n) for k, n in own.most_common(top)],
        total=[(k, group_by_key[k], n) for k, n in total.most_common(top)],
        groups_own=groups_own,
        groups_total=groups_total,
        wrk_line=wrk_line,
        path=path,
    )


def thread_states(path: Path, rate: int) -> dict[str, dict[str, float]]:
    """Per process and kind of thread, thread-seconds per state, from py-spy's raw
    (collapsed) output with thread names."""
    states: dict[str, Counter[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        thread = re.search(r";thread \((\d+)\): ([^;]*)", stack)
        if not stack or not count.isdigit() or thread is None:
            continue
        pids = re.findall(r"process (\d+):", stack)
        name = thread.group(2)
        if name == "MainThread":
            kind, table, rest = "event loop (main thread)", LOOP_STATES, "running"
        elif "_connection_worker_thread" in name:
            kind, table, rest = "aiosqlite connection threads", SQLITE_STATES, "other"
        else:
            kind, table, rest = "other threads (granian, monitors, executors)", (), "all states"
        state = next((st for st, needles in table if any(n in stack for n in needles)), rest)
        key = f"{pids[-1] if pids else '?'}|{kind}"
        states.setdefault(key, Counter())[state] += int(count)
    return {key: {k: n / rate for k, n in c.items()} for key, c in sorted(states.items())}


# One reading of the CPU time used so far: per (process, who) the seconds, and the idle
# seconds of the whole machine.
CpuReading = tuple[float, dict[tuple[int, str], float]]


def cpu_times(server_pid: int, wrk_pid: int) -> CpuReading:
    """Now, and the CPU seconds so far of every process, each labelled with who it is
    (a worker's event loop, its main thread whose id is the pid, apart from its other
    threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[tuple[int, str], float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        pgrp, ticks = int(rest[2]), int(rest[11]) + int(rest[12])
        if pgrp == server_pid and pid != server_pid:
            with contextlib.suppress(OSError, ValueError, IndexError):
                loop = (entry / "task" / entry.name / "stat").read_text()
                fields_ = loop[loop.rindex(")") + 2 :].split()
                loop_ticks = int(fields_[11]) + int(fields_[12])
                used[(pid, "gateway workers' event loops")] = loop_ticks / tick
                ticks -= loop_ticks
            who = "gateway workers' other threads"
        elif pgrp == server_pid:
            who = "gateway main process"
        elif pgrp == wrk_pid:
            who = "wrk"
        elif comm.startswith(("postgres", "postmaster")):
            who = "postgres"
        elif comm.startswith("py-spy"):
            who = "py-spy"
        else:
            who = "everything else"
        used[(pid, who)] = ticks / tick
    fields_ = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    used[(0, "idle")] = (int(fields_[3]) + int(fields_[4])) / tick
    return time.monotonic(), used


def cpu_share(before: CpuReading, after: CpuReading) -> dict[str, float]:
    """Per who, the CPU used between the two readings as % of one core (2 cores: 200%).
    A process that started in between counts from zero; one that ended is not seen, and
    its share is in "not accounted"."""
    seconds = after[0] - before[0]
    shares: dict[str, float] = {}
    for (pid, who), spent in after[1].items():
        delta = spent - before[1].get((pid, who), 0.0)
        shares[who] = shares.get(who, 0.0) + 100 * delta / seconds
    shares = dict(sorted(shares.items(), key=lambda kv: -kv[1]))
    shares["not accounted (ended processes such as py-spy, interrupts, steal)"] = max(
        0.0, 100 * (os.cpu_count() or 1) - sum(shares.values())
    )
    return shares


# --- report -----------------------------------------------------------------------------


def print_machine(tools: Tools) -> None:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    done = subprocess.run([tools.wrk, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout + done.stderr).strip().splitlines()
    try:
        from importlib.metadata import version

        granian = version("granian")
    except Exception:  # noqa: BLE001 - only for the report
        granian = "?"
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.platform()}")
    print(
        f"tools: {first[0] if first else '?'}; granian {granian}; "
        f"python {platform.python_version()}; load average {fmt_load(os.getloadavg())}"
    )


def fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def report(
    cfg: Settings,
    rows: list[Row],
    profiles: dict[str, ProfileSummary],
    loads: list[tuple[float, float, float]],
) -> None:
    print()
    print(
        f"Hot paths ({'quick' if cfg.quick else 'full'}: wrk -t{cfg.threads} "
        f"-c{cfg.connections} -d{cfg.wrk_seconds}s after a {cfg.warm_seconds} s warm-up; "
        f"load average (1, 5, 15 min) at start {fmt_load(loads[0])}, "
        f"at end {fmt_load(loads[-1])})"
    )
    header = (
        f"  {'backend':<12} {'figure':<31} {'value':>9} {'/healthz':>9} {'ratio':>7} "
        f"{'target':>10}  result"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    order = list(LABELS)
    for row in sorted(
        rows, key=lambda r: (cfg.backends.index(r.backend), r.mode, order.index(r.key))
    ):
        backend = f"{row.backend} w{WORKERS[row.backend]}" + (" cold" if row.mode else "")
        target = target_for(row.backend, row.key)
        if row.key in LATENCY_KEYS:
            value = f"{row.value:6.3f} ms" if row.value is not None else f"{'-':>9}"
            base, ratio = f"{'':>9}", f"{'':>7}"
        else:
            value = f"{row.value:9.1f}" if row.value is not None else f"{'-':>9}"
            base = f"{row.baseline:9.1f}" if row.baseline is not None else f"{'-':>9}"
            ratio = f"{row.compared:7.3f}" if row.compared is not None else f"{'-':>7}"
        shown = target.describe() if target else "-"
        print(
            f"  {backend:<12} {LABELS[row.key]:<31} {value} {base} {ratio} {shown:>10}  "
            f"{row.verdict:<6} {row.note}"
        )
    print(
        "  value: req/s (good answers) or ms; /healthz: req/s of the /healthz run just before,"
        "\n  on the same server; SQLite's targets are half as demanding as PostgreSQL's."
    )
    for title, summary in profiles.items():
        print_profile(title, summary)


def print_profile(title: str, s: ProfileSummary) -> None:
    print()
    busy = ", ".join(
        f"pid {pid} {100 * n / (s.seconds * s.rate):.0f}%" for pid, n in sorted(s.processes.items())
    )
    print(
        f"Profile of {title}: {s.samples} samples "
        f"holding the GIL in {s.seconds:g} s at {s.rate}/s (GIL held: {busy})"
    )
    print(f"  load: {s.wrk_line.removeprefix('WRKJSON ')}")
    print(f"  speedscope file: {s.path}")
    if s.cpu:
        shares = ", ".join(f"{who} {share:.0f}%" for who, share in s.cpu.items())
        print(f"  CPU during the GIL record, % of one core ({os.cpu_count()} cores): {shares}")
    if s.states:
        print(f"  thread-seconds per state in {s.seconds:g} s (py-spy --native --idle):")
    for key, states in s.states.items():
        pid, kind = key.split("|")
        if kind.startswith("other"):
            continue  # granian's own threads and idle helpers
        parts = ", ".join(
            f"{state} {spent:.1f} s"
            for state, spent in sorted(states.items(), key=lambda kv: -kv[1])
        )
        print(f"    pid {pid} {kind}: {parts}")
    print("  groups          own    incl.")
    for name in [*(g for g, _ in GROUPS), "other"]:
        if s.groups_total[name]:
            print(
                f"  {name:<20} {pct(s.groups_own[name], s.samples):>6} "
                f"{pct(s.groups_total[name], s.samples):>6}"
            )
    chain = "granian, Litestar's app, router and middleware, the gateway's middlewares"
    for by, frames in (("own samples", s.own), (f"total samples ({chain} left out)", s.total)):
        print(f"  top {len(frames)} frames by {by}:")
        for name, group, count in frames:
            print(f"    {pct(count, s.samples):>6}  {name[:96]:<96}  [{group}]")


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


if __name__ == "__main__":
    sys.exit(main())
