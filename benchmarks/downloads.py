"""Benchmark the download side of the gateway, each figure against a baseline of the same run.

    .venv/bin/python benchmarks/downloads.py [--quick] [--workers 1,2] [--repeat N]
                                             [--work DIR] [--clean]

Four figures, each a ratio to a baseline measured in the same run, on the same machine:

  (a) manifests/s   `wrk` POST .../releases/1.0/downloads (API key, 2 artifacts, so two
                    signed URLs and two `url.issued` evidence rows per call)
                    vs `wrk` GET /healthz on the same server.           target >= 0.5
  (b) redirects/s   `wrk` GET /d/<token> on a gateway whose storage is S3 (a loopback
                    moto_server): every request checks the token, reads the grant, writes a
                    `download.requested` row and answers 302 to a presigned URL
                    vs `wrk` GET /healthz on that server.               target >= 0.6
  (c) stream MB/s   `curl -o /dev/null` of the 1 GiB artifact from /d/ (local storage)
                    vs nginx (sendfile on) serving the same stored file. target >= 0.8
  (d) client MB/s   `gateway download bench/model:1.0` (fetch + verify)
                    vs `curl -o FILE` of the same 1 GiB artifact URL.   target >= 0.9

Quota: the trusted_partner tier allows 20 downloads per artifact per 30 days. One download
id uses one unit on its first /d/ request and none after (retries are free by design), so
(b) and (c) mint a manifest once per server and reuse its URL for every request.

Every figure is measured once per `--workers` value (granian worker processes of
`gateway serve`). Setup happens in a fresh folder under benchmarks/.work/downloads/ and
is removed at the end; only the generated source folder (1 GiB) is kept for reuse, unless
--clean. Every process started here is stopped (process groups) on the way out. Loopback
only. The exit code is 0 whether or not targets are met: this is a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000
BIG_SIZE = GIB
BLOCK_SIZE = 64 * MIB
MODEL = "bench/model"
VERSION = "1.0"
BIG_NAME = "model.safetensors"
SMALL_NAME = "README.md"
ACCOUNT = "bench@example.org"
TIER = "trusted_partner"
QUOTA = 20  # the tier's downloads per artifact per period, in the shipped policy
BUCKET = "bench-downloads"
DEFAULT_WORK = Path(__file__).resolve().parent / ".work" / "downloads"
TARGETS = {"a": 0.5, "b": 0.6, "c": 0.8, "d": 0.9}
LABELS = {
    "a": "(a) manifests/s vs /healthz",
    "b": "(b) /d/ 302s/s (S3) vs /healthz",
    "c": "(c) /d/ stream vs nginx",
    "d": "(d) gateway download vs curl",
}
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
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

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# --- results ---------------------------------------------------------------------------


@dataclass
class Figure:
    key: str  # a, b, c, d
    workers: int
    value: float | None  # the gateway side
    baseline: float | None
    unit: str
    note: str = ""
    # For transfers: the median of the ratios of back-to-back pairs, which a slow phase of
    # the machine (it is shared, and swings) affects less than a ratio of two medians.
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "n/a"
        return "PASS" if self.ratio >= TARGETS[self.key] else "MISS"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
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
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"
        )
        return text + (f", errors {errs})" if errs else ")")


@dataclass
class Settings:
    quick: bool
    workers: list[int]
    stream_repeat: int
    client_repeat: int
    wrk_seconds: int
    warm_seconds: int
    connections: int
    threads: int
    work: Path
    clean: bool


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


# --- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tools = find_tools()
    cfg.work.mkdir(parents=True, exist_ok=True)
    source = ensure_source(cfg.work)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cfg.work))
    procs = Procs()
    figures: list[Figure] = []
    try:
        print_machine(tools)
        figures = run_all(cfg, tools, source, run_dir, procs)
    finally:
        procs.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
        if cfg.clean:
            shutil.rmtree(cfg.work, ignore_errors=True)
    report(cfg, figures)
    return 0


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short wrk runs, fewer repeats")
    parser.add_argument("--workers", default="1,2", help="granian worker counts to try (1,2)")
    parser.add_argument(
        "--repeat", type=int, help="transfers per side: (c) 11, (d) 3; quick: 3 and 2"
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"({DEFAULT_WORK})")
    parser.add_argument("--clean", action="store_true", help="also remove the generated source")
    args = parser.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers: a comma-separated list of numbers, like 1,2")
    if not workers or min(workers) < 1:
        parser.error("--workers: at least one positive number")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be positive")
    client_repeat = args.repeat or (2 if args.quick else 3)
    # Each (d) run starts new downloads (one quota unit each) and (c) takes one per server,
    # all on the one local home: stay inside the tier's 20 downloads per artifact.
    if (client_repeat + 1) * len(workers) > QUOTA:
        parser.error(f"--repeat x workers would use more than the tier's quota of {QUOTA}")
    return Settings(
        quick=args.quick,
        workers=workers,
        stream_repeat=args.repeat or (3 if args.quick else 11),
        client_repeat=client_repeat,
        wrk_seconds=3 if args.quick else 10,
        warm_seconds=1 if args.quick else 2,
        connections=32,
        threads=2,
        work=args.work.absolute(),
        clean=args.clean,
    )


@dataclass(frozen=True)
class Tools:
    gateway: Path
    moto_server: Path
    wrk: str
    nginx: str
    curl: str


def find_tools() -> Tools:
    beside = Path(sys.executable).parent
    gateway = beside / "gateway"
    moto = beside / "moto_server"
    missing = [str(p) for p in (gateway, moto) if not p.is_file()]
    found = {
        name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        for name in ("wrk", "nginx", "curl")
    }
    missing += [name for name, path in found.items() if path is None]
    if missing:
        sys.exit(
            "missing: " + ", ".join(missing) + "\n(run with .venv/bin/python from a venv with "
            "'.[test]' installed; `apt-get install -y wrk nginx-light curl`)"
        )
    return Tools(gateway, moto, found["wrk"] or "", found["nginx"] or "", found["curl"] or "")


def run_all(cfg: Settings, tools: Tools, source: Path, run_dir: Path, procs: Procs) -> list[Figure]:
    lua = run_dir / "bench.lua"
    lua.write_text(WRK_LUA, encoding="utf-8")

    print("\n== setup: local-storage gateway home (publishing 1 GiB) ...", flush=True)
    local_env = gateway_env(run_dir / "home-local")
    local_key = setup_home(tools, local_env, source / "big", source / "LICENSE")

    print("== setup: moto_server + S3-storage gateway home ...", flush=True)
    moto_port = free_port()
    moto_env = {**base_env(), **S3_ENV}
    moto = procs.start(
        "moto_server",
        [str(tools.moto_server), "-H", "127.0.0.1", "-p", str(moto_port)],
        moto_env,
        run_dir / "moto.log",
    )
    wait_http(f"http://127.0.0.1:{moto_port}/", moto, run_dir / "moto.log", any_status=True)
    create_bucket(moto_port)
    s3_env = gateway_env(run_dir / "home-s3")
    s3_env.update(S3_ENV)
    s3_env["GATEWAY_STORAGE_URL"] = f"s3://{BUCKET}/gateway"
    s3_env["GATEWAY_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
    s3_env["GATEWAY_S3_REGION"] = "us-east-1"
    s3_key = setup_home(tools, s3_env, source / "small", source / "LICENSE")

    nginx = start_nginx(tools, run_dir, procs, local_object(run_dir / "home-local", source))
    client_ok = client_available(tools)
    figures: list[Figure] = []
    for workers in cfg.workers:
        print(f"\n== workers={workers}: local-storage gateway", flush=True)
        with serving(tools, procs, local_env, workers, run_dir) as base:
            figures.append(
                guarded("a", workers, measure_manifests, cfg, tools, lua, base, local_key, workers)
            )
            big = artifact(mint(base, local_key), BIG_NAME)
            figures.append(guarded("c", workers, measure_stream, cfg, tools, big, nginx, workers))
            figures.append(
                guarded(
                    "d",
                    workers,
                    measure_client,
                    cfg,
                    tools,
                    base,
                    local_key,
                    big,
                    run_dir,
                    workers,
                    client_ok,
                )
            )
        print(f"\n== workers={workers}: S3-storage gateway", flush=True)
        with serving(tools, procs, s3_env, workers, run_dir) as base:
            figures.append(
                guarded("b", workers, measure_redirects, cfg, tools, lua, base, s3_key, workers)
            )
    return figures


def guarded(key: str, workers: int, measure: Any, *args: Any) -> Figure:
    """One figure; a failure is reported in its row instead of ending the whole run."""
    try:
        figure: Figure = measure(*args)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"   {LABELS[key]}: FAILED: {exc}", flush=True)
        return Figure(key, workers, None, None, "", f"failed: {first[:120]}")
    return figure


# --- the source folder -------------------------------------------------------------------


def ensure_source(work: Path) -> Path:
    """work/source/{big,small}/ and a LICENSE; the 1 GiB file is kept between runs."""
    source = work / "source"
    big, small = source / "big", source / "small"
    for folder in (big, small):
        folder.mkdir(parents=True, exist_ok=True)
    (source / "LICENSE").write_text("Benchmark license: random bytes, licensed to no one.\n")
    readme = "# bench/model\n\nRandom bytes for the downloads benchmark.\n"
    (big / SMALL_NAME).write_text(readme)
    (small / SMALL_NAME).write_text(readme)
    write_random(small / BIG_NAME, MIB, b"small benchmark weights\n")
    target = big / BIG_NAME
    if target.is_file() and target.stat().st_size == BIG_SIZE:
        print(f"reusing {target} (1 GiB)")
    else:
        print(f"generating {target} (1 GiB) ...", flush=True)
        write_random(target, BIG_SIZE, b"benchmark weights\n")
    return source


def write_random(path: Path, size: int, prefix: bytes) -> None:
    """One block of random bytes, repeated: fast, and incompressible enough."""
    if path.is_file() and path.stat().st_size == size:
        return
    block = memoryview(os.urandom(min(BLOCK_SIZE, size)))
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        written = out.write(prefix)
        while written < size:
            written += out.write(block[: size - written])
    partial.replace(path)


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
    return env


def gw(tools: Tools, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(tools.gateway), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = "\n".join((done.stderr + done.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"gateway {' '.join(args)} failed ({done.returncode}):\n{last}")
    return done.stdout


def setup_home(tools: Tools, env: dict[str, str], folder: Path, license_file: Path) -> str:
    """Migrate, publish, promote, account, grant and key; returns the API key."""
    gw(tools, env, "db", "upgrade")
    gw(
        tools,
        env,
        "release",
        "publish",
        MODEL,
        VERSION,
        str(folder),
        "--license",
        str(license_file),
    )
    gw(
        tools,
        env,
        "stage",
        "promote",
        f"{MODEL}:{VERSION}",
        "--to",
        TIER,
        "--override",
        "--reason",
        "benchmark",
    )
    gw(tools, env, "accounts", "create", ACCOUNT)
    gw(tools, env, "grants", "create", "--account", ACCOUNT, "--model", MODEL, "--tier", TIER)
    out = gw(tools, env, "keys", "create", "--account", ACCOUNT, "--scope", "download")
    match = re.search(r"rgk_[A-Za-z0-9]+", out)
    if match is None:
        raise RuntimeError(f"`gateway keys create` printed no key: {out!r}")
    return match.group(0)


def local_object(home: Path, source: Path) -> Path:
    """The stored copy of the 1 GiB file: objects/ab/cd/<sha256> of the largest object."""
    objects = [p for p in (home / "objects" / "objects").rglob("*") if p.is_file()]
    big = max(objects, key=lambda p: p.stat().st_size)
    if big.stat().st_size != (source / "big" / BIG_NAME).stat().st_size:
        raise RuntimeError(f"cannot find the stored 1 GiB object under {home}")
    return big


@contextlib.contextmanager
def serving(
    tools: Tools, procs: Procs, env: dict[str, str], workers: int, run_dir: Path
) -> Iterator[str]:
    port = free_port()
    log = run_dir / f"serve-{Path(env['GATEWAY_HOME']).name}-w{workers}.log"
    cmd = [str(tools.gateway), "serve", "--port", str(port), "--workers", str(workers)]
    proc = procs.start("gateway", cmd, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", proc, log)
        yield base
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


def mint(base: str, key: str) -> dict[str, Any]:
    """One download manifest (POST .../downloads)."""
    url = f"{base}/api/v1/models/{MODEL}/releases/{VERSION}/downloads"
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url,
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        manifest: dict[str, Any] = json.load(response)
    return manifest


def artifact(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    for item in manifest["artifacts"]:
        if item["path"] == path:
            return dict(item)
    raise RuntimeError(f"the manifest lists no {path}: {manifest}")


# --- nginx ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nginx:
    url: str
    size: int


def start_nginx(tools: Tools, run_dir: Path, procs: Procs, stored: Path) -> Nginx:
    """nginx in the foreground of its own process group, serving the stored 1 GiB object."""
    prefix = run_dir / "nginx"
    (prefix / "logs").mkdir(parents=True)
    port = free_port()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /{BIG_NAME} {{
            default_type application/octet-stream;
            alias {stored};
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    log = prefix / "logs" / "stdout.log"
    proc = procs.start("nginx", [tools.nginx, "-c", str(conf), "-p", str(prefix)], base_env(), log)
    url = f"http://127.0.0.1:{port}/{BIG_NAME}"
    wait_http(url.replace(BIG_NAME, ""), proc, prefix / "logs" / "error.log", any_status=True)
    return Nginx(url=url, size=stored.stat().st_size)


# --- (a) and (b): wrk -------------------------------------------------------------------


def wrk(
    cfg: Settings,
    tools: Tools,
    lua: Path,
    url: str,
    *,
    seconds: int,
    method: str = "GET",
    body: str = "",
    auth: str = "",
) -> WrkResult:
    env = {**base_env(), "BENCH_METHOD": method, "BENCH_BODY": body, "BENCH_AUTH": auth}
    cmd = [
        tools.wrk,
        "-t",
        str(cfg.threads),
        "-c",
        str(cfg.connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
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
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def wrk_pair(
    cfg: Settings, tools: Tools, lua: Path, base: str, url: str, **target: str
) -> tuple[WrkResult, WrkResult]:
    """Warm both, then /healthz and the target back to back, each for wrk_seconds."""
    health = f"{base}/healthz"
    wrk(cfg, tools, lua, health, seconds=cfg.warm_seconds)
    wrk(cfg, tools, lua, url, seconds=cfg.warm_seconds, **target)
    baseline = wrk(cfg, tools, lua, health, seconds=cfg.wrk_seconds)
    print(f"   /healthz        {baseline.describe()}", flush=True)
    measured = wrk(cfg, tools, lua, url, seconds=cfg.wrk_seconds, **target)
    return baseline, measured


def wrk_note(result: WrkResult) -> str:
    errs = {k: v for k, v in result.errors.items() if v}
    note = f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms"
    return note + (f"; errors {errs}" if errs else "")


def measure_manifests(
    cfg: Settings, tools: Tools, lua: Path, base: str, key: str, workers: int
) -> Figure:
    url = f"{base}/api/v1/models/{MODEL}/releases/{VERSION}/downloads"
    manifest = mint(base, key)  # fails loudly if the setup is wrong
    assert len(manifest["artifacts"]) == 2, manifest
    baseline, measured = wrk_pair(
        cfg, tools, lua, base, url, method="POST", body="{}", auth=f"Bearer {key}"
    )
    print(f"   POST /downloads {measured.describe()}", flush=True)
    return Figure(
        "a",
        workers,
        measured.good_per_second,
        baseline.good_per_second,
        "req/s",
        wrk_note(measured),
    )


def measure_redirects(
    cfg: Settings, tools: Tools, lua: Path, base: str, key: str, workers: int
) -> Figure:
    url = artifact(mint(base, key), BIG_NAME)["url"]
    # The first request starts the download (one quota unit); every later one is free.
    status, location = head_status(url)
    if status != 302 or not location.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"/d/ in S3 mode answered {status} {location!r}, expected a 302")
    baseline, measured = wrk_pair(cfg, tools, lua, base, url)
    print(f"   GET /d/ (302)   {measured.describe()}", flush=True)
    return Figure(
        "b",
        workers,
        measured.good_per_second,
        baseline.good_per_second,
        "req/s",
        wrk_note(measured),
    )


def head_status(url: str) -> tuple[int, str]:
    """Status and Location of a GET that is not followed."""
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    code, _, location = done.stdout.partition(" ")
    return int(code), location


# --- (c) and (d): 1 GiB transfers --------------------------------------------------------


def curl_time(url: str, out: str, size: int) -> float:
    """Seconds for one `curl -o OUT URL` (curl's own time_total), checked for status and size."""
    done = subprocess.run(
        ["curl", "-s", "-o", out, "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    code, got, seconds = done.stdout.split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"curl {url}: status {code}, {got} bytes (expected 200, {size})")
    return float(seconds)


def measure_stream(
    cfg: Settings, tools: Tools, big: dict[str, Any], nginx: Nginx, workers: int
) -> Figure:
    size = int(big["size"])
    assert size == nginx.size
    # Untimed: the first /d/ request takes the quota unit, and both reads warm the cache.
    curl_time(big["url"], "/dev/null", size)
    curl_time(nginx.url, "/dev/null", size)
    gateway_s: list[float] = []
    nginx_s: list[float] = []
    for i in range(cfg.stream_repeat):
        order = ("nginx", "gateway") if i % 2 == 0 else ("gateway", "nginx")
        for side in order:
            if side == "nginx":
                nginx_s.append(curl_time(nginx.url, "/dev/null", size))
            else:
                gateway_s.append(curl_time(big["url"], "/dev/null", size))
    gw_rate = size / statistics.median(gateway_s) / MB
    ng_rate = size / statistics.median(nginx_s) / MB
    print(f"   nginx           {ng_rate:9.0f} MB/s  (runs: {fmt_runs(nginx_s)} s)")
    print(f"   /d/ local       {gw_rate:9.0f} MB/s  (runs: {fmt_runs(gateway_s)} s)")
    pairs = " ".join(f"{n / g:.2f}" for n, g in zip(nginx_s, gateway_s, strict=True))
    print(f"   pair ratios     {pairs}", flush=True)
    return Figure(
        "c",
        workers,
        gw_rate,
        ng_rate,
        "MB/s",
        f"median of {cfg.stream_repeat} pairs; curl -o /dev/null",
        paired(nginx_s, gateway_s),
    )


def client_available(tools: Tools) -> bool:
    done = subprocess.run(
        [str(tools.gateway), "download", "--help"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def measure_client(
    cfg: Settings,
    tools: Tools,
    base: str,
    key: str,
    big: dict[str, Any],
    run_dir: Path,
    workers: int,
    available: bool,
) -> Figure:
    if not available:
        print("   gateway download: client not available")
        return Figure("d", workers, None, None, "MB/s", "client not available")
    size = int(big["size"])
    env = base_env()
    client_s: list[float] = []
    curl_s: list[float] = []
    for i in range(cfg.client_repeat):
        order = ("curl", "client") if i % 2 == 0 else ("client", "curl")
        for side in order:
            # A fresh parent folder each run: the client keeps DIR.sig, DIR.pub.pem and
            # DIR.download.json beside DIR, and an existing file would be skipped.
            parent = run_dir / f"dl-{i}-{side}"
            parent.mkdir()
            try:
                subprocess.run(["sync"], check=True)
                if side == "curl":
                    start = time.perf_counter()
                    curl_time(big["url"], str(parent / BIG_NAME), size)
                    curl_s.append(time.perf_counter() - start)
                else:
                    cmd = [
                        str(tools.gateway),
                        "download",
                        f"{MODEL}:{VERSION}",
                        "--to",
                        str(parent / "out"),
                        "--key",
                        key,
                        "--server",
                        base,
                    ]
                    start = time.perf_counter()
                    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                    client_s.append(time.perf_counter() - start)
                    got = parent / "out" / BIG_NAME
                    if done.returncode != 0 or not got.is_file() or got.stat().st_size != size:
                        raise RuntimeError(
                            f"gateway download failed ({done.returncode}):\n"
                            f"{done.stderr}{done.stdout}"
                        )
            finally:
                shutil.rmtree(parent, ignore_errors=True)
    client_rate = size / statistics.median(client_s) / MB
    curl_rate = size / statistics.median(curl_s) / MB
    print(f"   curl -o FILE    {curl_rate:9.0f} MB/s  (runs: {fmt_runs(curl_s)} s)")
    print(f"   gateway download{client_rate:9.0f} MB/s  (runs: {fmt_runs(client_s)} s)", flush=True)
    return Figure(
        "d",
        workers,
        client_rate,
        curl_rate,
        "MB/s",
        f"median of {cfg.client_repeat} pairs; wall clock incl. start-up and verification",
        paired(curl_s, client_s),
    )


def paired(baseline_s: list[float], measured_s: list[float]) -> float:
    """Median over back-to-back pairs of baseline time / measured time (a speed ratio)."""
    return statistics.median(b / m for b, m in zip(baseline_s, measured_s, strict=True))


def fmt_runs(runs: list[float]) -> str:
    return " ".join(f"{r:.2f}" for r in runs)


# --- report -----------------------------------------------------------------------------


def print_machine(tools: Tools) -> None:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = []
    for cmd in ([tools.wrk, "-v"], [tools.nginx, "-v"]):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        first = (done.stdout + done.stderr).strip().splitlines()
        versions.append(first[0] if first else "?")
    try:
        from importlib.metadata import version

        granian = version("granian")
    except Exception:  # noqa: BLE001 - only for the report
        granian = "?"
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), {mem} RAM, {platform.platform()}")
    print(
        f"tools: {versions[0]}; {versions[1]}; granian {granian}; python "
        f"{platform.python_version()}"
    )


def report(cfg: Settings, figures: list[Figure]) -> None:
    print()
    print(
        f"Downloads benchmark ({'quick' if cfg.quick else 'full'}: wrk -t {cfg.threads} "
        f"-c {cfg.connections} -d {cfg.wrk_seconds}s; transfers per side: "
        f"(c) {cfg.stream_repeat}, (d) {cfg.client_repeat})"
    )
    header = (
        f"  {'figure':<33} {'workers':>7} {'gateway':>10} {'baseline':>10} {'unit':<6}"
        f" {'ratio':>6} {'target':>7}  result"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    footnote = "  ratio: gateway/baseline; for (c) and (d) the median of back-to-back pairs"
    for f in sorted(figures, key=lambda f: (f.key, f.workers)):
        value = f"{f.value:10.1f}" if f.value is not None else f"{'-':>10}"
        base = f"{f.baseline:10.1f}" if f.baseline is not None else f"{'-':>10}"
        ratio = f"{f.ratio:6.3f}" if f.ratio is not None else f"{'-':>6}"
        print(
            f"  {LABELS[f.key]:<33} {f.workers:>7} {value} {base} {f.unit:<6} {ratio} "
            f">= {TARGETS[f.key]:.1f}  {f.verdict}  {f.note}"
        )
    print(footnote)
    print()
    print("Best worker count per figure:")
    for key in sorted(TARGETS):
        rows = [f for f in figures if f.key == key and f.ratio is not None]
        if not rows:
            note = next((f.note for f in figures if f.key == key), "not measured")
            print(f"  {LABELS[key]:<33} n/a ({note})")
            continue
        best = max(rows, key=lambda f: f.ratio or 0.0)
        print(
            f"  {LABELS[key]:<33} workers={best.workers}: ratio {best.ratio:.3f} "
            f"(target >= {TARGETS[key]:.1f}) {best.verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
