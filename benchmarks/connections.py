"""Check that a burst of first requests from new API keys cannot exhaust the database pool.

    .venv/bin/python benchmarks/connections.py [--keys 200] [--workers 2]
                                               [--postgres URL] [--work DIR]

Against a real `gateway serve --workers N` on PostgreSQL (default pool: 10 connections
plus 10 overflow per worker), it fires two rounds of concurrent manifest requests
(POST .../releases/1.0/downloads), one per key, all at once:

  (1) first use   every key is new: its first request authenticates, notes the key's
                  last use (a write), signs URLs with a key the worker has not cached
                  yet, and writes the `url.issued` evidence.
  (2) baseline    the same keys again: the last use is fresh, so it is not written, and
                  the signing key is cached.

Each request may use one pooled connection at a time, so with K requests on a worker of
P connections the pool queues them rather than deadlocking: every answer of both rounds
must be 200. The figure is round (1)'s wall time as a ratio to round (2)'s, measured in
the same run. Exit code 1 if any answer was not 200 (a deadlocked pool answers 500 after
its 30 s timeout), 0 otherwise.

Setup: a fresh database on the PostgreSQL server (dropped at the end), a fresh
GATEWAY_HOME under benchmarks/.work/connections/ (removed at the end), a small release
opened to researchers, and one account with a researcher grant and an API key per request.
The server is stopped (its process group) on the way out. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK = ROOT / "benchmarks" / ".work" / "connections"
DEFAULT_POSTGRES = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MODEL = "bench/burst"
MANIFEST = f"/api/v1/models/{MODEL}/releases/1.0/downloads"


@dataclass
class Round:
    name: str
    statuses: Counter[int]
    latencies: list[float]
    seconds: float
    failures: list[str]

    def describe(self) -> str:
        ordered = sorted(self.latencies)
        p95 = ordered[int(len(ordered) * 0.95) - 1] if ordered else 0.0
        answers = ", ".join(f"{n}x {code}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.name:<12} {answers:<22} {self.seconds:7.2f} s   "
            f"p50 {statistics.median(ordered):6.2f} s   p95 {p95:6.2f} s"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def database_url(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def prepare_release_and_keys(env: dict[str, str], work: Path, count: int) -> list[str]:
    """Publish and open the release; one account, grant and key per request."""
    from gateway.config import load_settings
    from gateway.db.uow import run_unit
    from gateway.grants.service import create_grant
    from gateway.identity.accounts import add_account
    from gateway.keys.service import create_key
    from gateway.publishing.service import PublishRequest, publish_release
    from gateway.runtime import build_runtime
    from gateway.staging.service import move_release
    from stages.actors import Actor
    from stages.names import parse_model_ref
    from stages.release import Move

    ref = parse_model_ref(MODEL)
    folder = work / "release"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    (folder / "README.md").write_text("# Burst\n")
    license_file = work / "LICENSE.txt"
    license_file.write_text("Benchmark licence.\n")
    rt = build_runtime(load_settings(env))
    try:
        await run_unit(
            rt,
            lambda uow: publish_release(
                uow,
                PublishRequest(model=ref, version="1.0", folder=folder, license_file=license_file),
                actor="bench",
            ),
        )
        for stage in ("trusted_partner", "researcher"):
            await run_unit(
                rt,
                lambda uow, stage=stage: move_release(
                    uow, ref, "1.0", Move.PROMOTE, target=stage, actor="bench"
                ),
            )
        secrets = []
        for n in range(count):
            email = f"burst{n}@example.org"
            account = await run_unit(
                rt,
                lambda uow, email=email: add_account(
                    uow, email, operator=False, actor=Actor.parse("bench")
                ),
            )
            await run_unit(
                rt,
                lambda uow, email=email: create_grant(
                    uow, email=email, model=ref, tier="researcher", days=None, actor="bench"
                ),
            )
            created = await run_unit(
                rt,
                lambda uow, account_id=account.id: create_key(
                    uow,
                    account_id=account_id,
                    scopes=["download"],
                    days=None,
                    name="",
                    actor="bench",
                ),
            )
            secrets.append(created.secret)
        return secrets
    finally:
        await rt.close()


async def fire(base: str, name: str, secrets: list[str]) -> Round:
    """One request per key, all started at once."""
    limits = httpx.Limits(max_connections=len(secrets), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        gate = asyncio.Event()

        async def one(secret: str) -> tuple[int, float, str]:
            await gate.wait()
            began = time.perf_counter()
            try:
                response = await client.post(
                    MANIFEST, headers={"authorization": f"Bearer {secret}"}
                )
            except httpx.HTTPError as exc:
                return 0, time.perf_counter() - began, f"{type(exc).__name__}: {exc}"
            text = "" if response.status_code == 200 else response.text[:200]
            return response.status_code, time.perf_counter() - began, text

        tasks = [asyncio.create_task(one(s)) for s in secrets]
        await asyncio.sleep(0.2)  # every task is waiting at the gate
        started = time.perf_counter()
        gate.set()
        results = await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    return Round(
        name=name,
        statuses=Counter(code for code, _, _ in results),
        latencies=[latency for _, latency, _ in results],
        seconds=seconds,
        failures=[text for code, _, text in results if code != 200],
    )


def serve(env: dict[str, str], workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--port",
                str(port),
                "--workers",
                f"{workers}",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGTERM)
            raise SystemExit(f"the gateway did not start:\n{log.read_text()}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=200, help="concurrent requests, one key each")
    parser.add_argument("--workers", type=int, default=2, help="gateway serve --workers")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin URL")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()

    name = f"gw_bench_burst_{uuid.uuid4().hex[:8]}"
    work: Path = args.work / name
    work.mkdir(parents=True)
    url = database_url(args.postgres, name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env.update(
        GATEWAY_HOME=str(work / "home"),
        GATEWAY_DATABASE_URL=url,
        GATEWAY_STORAGE_URL=(work / "objects").as_uri(),
        # Not needed for this figure, and a scheduler could take connections meanwhile.
        GATEWAY_SCHEDULER="off",
    )
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    process = None
    try:
        subprocess.run(
            [sys.executable, "-m", "gateway", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        secrets = asyncio.run(prepare_release_and_keys(env, work, args.keys))
        port = free_port()
        process = serve(env, args.workers, port, work / "serve.log")
        base = f"http://127.0.0.1:{port}"
        first = asyncio.run(fire(base, "first use", secrets))
        again = asyncio.run(fire(base, "baseline", secrets))
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{args.keys} concurrent manifest requests, one new API key each, "
        f"gateway serve --workers {args.workers} on PostgreSQL (pool 10 + 10 per worker)"
    )
    for measured in (first, again):
        print(measured.describe())
    print(f"first use / baseline wall time: {first.seconds / again.seconds:.2f}x")
    failed = [*first.failures, *again.failures]
    for text in failed[:5]:
        print(f"  not 200: {text}")
    all_ok = first.statuses == Counter({200: args.keys}) == again.statuses
    print("all answered 200" if all_ok else f"FAILED: {len(failed)} answers were not 200")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
