"""Benchmark key verification for inference services against /healthz of the same server.

    .venv/bin/python benchmarks/verification.py [--quick] [--backends postgres,sqlite]
                                                [--postgres URL] [--work DIR]

Each backend in its deployment shape: PostgreSQL (a fresh database on the server at
--postgres, dropped at the end) under `gateway serve --workers 2`, embedded SQLite under
`--workers 1`. The home runs the shipped policy with the api_preview tier's terms raised
so that no answer is a 429 (requests_per_minute 1,000,000, credits_per_month
1,000,000,000): every request is a valid verification, which spends one request of its
key's minute and one credit of its grant's month.

Each backend is measured twice: with the counts in the database (the default), and in
Redis (`redis_url`, --redis; '' skips it).

`wrk -t2 -c64` drives each rate for 10 s (--quick: 3 s) after a 2 s warm-up (--quick:
1 s), right after a /healthz run of the same length on the same server, so each ratio
compares two runs seconds apart. Targets: verification >= 0.30 x /healthz, warm, at
saturation; and p99 <= 20 ms at that load: a paced run of 16 connections, each waiting
between its requests so that together they offer 0.30 x the /healthz rate just measured
(wrk --latency; the saturated -c64 run's p99 is queueing, printed too). On SQLite under
one worker the targets are half the ratio and twice the latency. Also printed: the
verification of a revoked key (no counting: the refusal path).

Every process started here is stopped on the way out and every database created here is
dropped. Loopback only. Exit code 2 if wrk is missing, else 0 whether or not the targets
are met: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = Path(sys.executable).with_name("gateway")
SHIPPED = ROOT / "policies" / "default.toml"
TERMS = "requests_per_minute = 60\ncredits_per_month = 100000"
RAISED = "requests_per_minute = 1000000\ncredits_per_month = 1000000000"
MODEL = "bench/api"
RATIO_TARGET = 0.30
P99_TARGET_MS = 20.0
PACED_CONNECTIONS = 64

WRK_LUA = r"""
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  delay = function() return pause end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status": %d, "other": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
HEALTH_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status": %d, "other": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Wrk:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def describe(self) -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        rate = f"{self.rate:>9,.0f} req/s"
        return f"{rate}  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms{errors}"


def env_for(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(proxy, None)
    env |= {"GATEWAY_HOME": str(home), "GATEWAY_SCHEDULER": "off", "NO_PROXY": "127.0.0.1"}
    if database_url:
        env["GATEWAY_DATABASE_URL"] = database_url
    return env


def gw(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(GATEWAY), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def set_up(env: dict[str, str], work: Path, redis_url: str | None) -> tuple[str, str, str]:
    """A release open to api_preview, a grantee's key, a revoked key and a service key."""
    home = Path(env["GATEWAY_HOME"])
    home.mkdir(parents=True)
    policy = work / "policy.toml"
    text = SHIPPED.read_text()
    assert TERMS in text, "the shipped policy's api_preview terms changed"
    policy.write_text(text.replace(TERMS, RAISED))
    config = f'policy_file = "{policy}"\n'
    if redis_url:
        config += f'redis_url = "{redis_url}"\n'
    (home / "gateway.toml").write_text(config)
    folder = work / "release"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    (folder / "LICENSE.txt").write_text("license\n")
    gw(env, "db", "upgrade")
    gw(
        env,
        "release",
        "publish",
        MODEL,
        "1.0",
        str(folder),
        "--license",
        str(folder / "LICENSE.txt"),
    )
    ref = f"{MODEL}:1.0"
    gw(
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
    gw(env, "stage", "promote", ref, "--to", "api_preview")
    keys = []
    for email in ("bench@lab.example", "gone@lab.example"):
        gw(env, "accounts", "create", email)
        gw(env, "grants", "create", "--account", email, "--model", MODEL, "--tier", "api_preview")
        keys.append(gw(env, "keys", "create", "--account", email, "--scope", "download"))
    listed = gw(env, "keys", "list", "--account", "gone@lab.example")
    key_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", listed)
    assert key_id is not None, listed
    gw(env, "keys", "revoke", "--account", "gone@lab.example", key_id.group(0))
    service = gw(env, "services", "create", "bench-inference")
    return keys[0], keys[1], service


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str], workers: int, log: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [str(GATEWAY), "serve", "--port", str(port), "--workers", str(workers)],
            env={**env, "GATEWAY_PUBLIC_URL": base, "GATEWAY_LOG_LEVEL": "warning"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2):  # noqa: S310
                    break
            except (OSError, urllib.error.HTTPError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not up after 60 s:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def wrk(script: Path, url: str, seconds: int, connections: int, **env: str) -> Wrk:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    done = subprocess.run(
        [*cmd, "-s", str(script), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return Wrk(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["status"] + data["other"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def paced_run(script: Path, url: str, seconds: int, offered: float, **env: str) -> Wrk:
    """PACED_CONNECTIONS connections that together send about `offered` requests a second:
    each waits between an answer and its next request. Short probes first measure how far
    the rate falls short (each answer's own time adds to the wait) and shorten the wait by
    that much, up to three times."""
    cycle_ms = PACED_CONNECTIONS * 1000 / offered
    pause_ms = cycle_ms
    for _ in range(3):
        probe = wrk(script, url, 2, PACED_CONNECTIONS, BENCH_DELAY_MS=f"{pause_ms:.1f}", **env)
        short_ms = PACED_CONNECTIONS * 1000 / probe.rate - cycle_ms
        if abs(short_ms) < 0.03 * cycle_ms:
            break
        pause_ms = max(0.0, pause_ms - short_ms)
    return wrk(script, url, seconds, PACED_CONNECTIONS, BENCH_DELAY_MS=f"{pause_ms:.1f}", **env)


def report(
    label: str,
    health: Wrk,
    valid: Wrk,
    paced: Wrk,
    refused: Wrk,
    ratio_target: float,
    p99_target: float,
) -> tuple[str, str, str]:
    ratio = valid.rate / health.rate
    offered = ratio_target * health.rate
    print(f"\n{label}")
    print(f"  /healthz, -c64                 {health.describe()}")
    print(f"  verify (valid), -c64           {valid.describe()}")
    print(f"  verify at {offered:,.0f}/s offered, -c{PACED_CONNECTIONS}  {paced.describe()}")
    print(f"  verify (revoked key), -c64     {refused.describe()}  (403s, as expected)")
    met = "met" if ratio >= ratio_target else "MISS"
    print(f"  ratio to /healthz              {ratio:.3f}  (target >= {ratio_target:.2f}: {met})")
    met = "met" if paced.p99_ms <= p99_target and paced.errors == 0 else "MISS"
    print(f"  p99 at {paced.rate:,.0f}/s                {paced.p99_ms:.1f} ms", end="")
    print(f"  (target <= {p99_target:g} ms: {met})")
    return (label, f"{ratio:.3f}", f"{paced.p99_ms:.1f} ms")


def measure(
    backend: str, redis_url: str | None, args: argparse.Namespace, work: Path
) -> list[tuple[str, str, str]]:
    database_url = None
    database = None
    if backend == "postgres":
        database = f"gw_bench_verify_{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["psql", "-q", "-d", args.postgres, "-c", f"CREATE DATABASE {database}"], check=True
        )
        database_url = (
            args.postgres.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
            + f"/{database}"
        )
    try:
        where = work / f"{backend}-{'redis' if redis_url else 'database'}"
        env = env_for(where / "home", database_url)
        grantee, revoked, service = set_up(env, where, redis_url)
        scripts = where
        verify_lua, health_lua = scripts / "verify.lua", scripts / "health.lua"
        verify_lua.write_text(WRK_LUA)
        health_lua.write_text(HEALTH_LUA)
        auth = f"Bearer {service}"
        body = json.dumps({"key": grantee, "model": MODEL})
        gone = json.dumps({"key": revoked, "model": MODEL})
        workers = 2 if backend == "postgres" else 1
        seconds, warm = (3, 1) if args.quick else (10, 2)
        rows = []
        with serving(env, workers, where / "serve.log") as base:
            url = f"{base}/api/v1/keys/verify"
            check = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", f"authorization: {auth}", "-H", "content-type: application/json",
                 "-d", body, url],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert check.stdout == "200", f"verification answered {check.stdout}"
            wrk(verify_lua, url, warm, 64, BENCH_BODY=body, BENCH_AUTH=auth)
            health = wrk(health_lua, f"{base}/healthz", seconds, 64)
            valid = wrk(verify_lua, url, seconds, 64, BENCH_BODY=body, BENCH_AUTH=auth)
            ratio_target = RATIO_TARGET if backend == "postgres" else RATIO_TARGET / 2
            offered = ratio_target * health.rate
            paced = paced_run(verify_lua, url, seconds, offered, BENCH_BODY=body, BENCH_AUTH=auth)
            refused = wrk(verify_lua, url, seconds, 64, BENCH_BODY=gone, BENCH_AUTH=auth)
        counts = "Redis" if redis_url else "the database"
        label = f"{backend}, {workers} worker{'s' if workers > 1 else ''}, counted in {counts}"
        p99_target = P99_TARGET_MS if backend == "postgres" else P99_TARGET_MS * 2
        rows.append(report(label, health, valid, paced, refused, ratio_target, p99_target))
        return rows
    finally:
        if database:
            subprocess.run(
                [
                    "psql",
                    "-q",
                    "-d",
                    args.postgres,
                    "-c",
                    f"DROP DATABASE IF EXISTS {database} WITH (FORCE)",
                ],
                check=False,
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--work", type=Path)
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="also measure with the counts in this Redis ('' for the database only)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"{python}, {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        for backend in args.backends.split(","):
            for redis_url in (None, args.redis or None) if args.redis else (None,):
                measure(backend.strip(), redis_url, args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
