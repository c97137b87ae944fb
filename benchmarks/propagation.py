"""How long a revocation, a suspension and a recall take to be refused on every replica.

    .venv/bin/python benchmarks/propagation.py [--trials 20] [--postgres URL] [--work DIR]

The topology is `infra/local/up`'s: three `gateway serve` replicas on PostgreSQL behind
nginx, each with warm caches (GATEWAY_CACHE_SECONDS at its default, one second). Each
trial warms all three replicas' caches with manifests for the grantee about to be
stopped, then runs one poller per replica, each asking that replica for the manifest
over and over on a kept-alive connection, and makes the change:

  key revocation      DELETE /api/v1/keys/{id} through one replica (a fresh key each trial)
  account suspension  `gateway enforce EMAIL suspend`, then `lift` after the trial
  grant suspension    `gateway grants suspend ID`, then `reinstate` after the trial
  release recall      `gateway recall acme/llm:1.N` (a release of its own each trial)

The time of a trial is from the change's commit to the last replica's first refusal. The
commit's time is when PostgreSQL announces it to a listener of this script's own on
`gateway_changes` (a notification goes out as its transaction commits), in wall-clock
time on this one machine, like the pollers' refusals. The figure is the worst
trial of each kind, against the target of one second; the baseline printed with it is
the median time of one manifest on a replica while nothing changes (a replica cannot
refuse sooner than its next answer).

Scratch state goes to --work (default benchmarks/.work/propagation), removed at the end;
`infra/local/down` stops everything and drops the database, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UP = ROOT / "infra" / "local" / "up"
DOWN = ROOT / "infra" / "local" / "down"
TARGET_SECONDS = 1.0
TIER = "trusted_partner"
MODEL = "acme/llm"


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
        return ports


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, **extra}


@dataclass
class Topology:
    url: str
    replicas: list[str]
    cli_env: dict[str, str]
    commits: Commits

    def gateway(self, *args: str) -> str:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "gateway"), *args],
            env=self.cli_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"gateway {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip()


class Commits:
    """When PostgreSQL announces each commit that changes a watched table: a listener of
    its own on `gateway_changes`, the channel the replicas hear (a notification is sent
    when its transaction commits)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.heard: list[tuple[float, str]] = []
        self._ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True).start()
        if not self._ready.wait(30):
            raise SystemExit(f"could not listen on {database_url}")

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(self.database_url)
        await connection.add_listener(
            "gateway_changes", lambda *heard: self.heard.append((time.time(), heard[3]))
        )
        self._ready.set()
        await asyncio.Event().wait()  # until the process ends

    def mark(self) -> int:
        return len(self.heard)

    def first(self, table: str, since: int) -> float:
        """The time of the first commit to `table` announced after `since` (waiting)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for at, heard in self.heard[since:]:
                if heard == table:
                    return at
            time.sleep(0.01)
        raise SystemExit(f"no commit to {table} was announced")


class Replica:
    """A kept-alive connection to one replica."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, key: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request(
                    method,
                    path,
                    body=b"{}" if method == "POST" else None,
                    headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
                )
                answer = self.connection.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


@dataclass
class Poller:
    """Asks one replica for a manifest until it refuses; notes when it first did."""

    replica: str
    path: str
    key: str
    refused_at: float | None = None
    answers: int = 0
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = Replica(self.replica)
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                status, body = client.request("POST", self.path, self.key)
                self.answers += 1
                self.latencies.append(time.monotonic() - started)
                if status != 200:
                    if status not in (401, 403, 410):
                        raise SystemExit(f"{self.replica}: unexpected {status}: {body[:300]!r}")
                    self.refused_at = time.time()
                    return
        finally:
            client.close()


def trial(
    top: Topology, path: str, key: str, table: str, change: Callable[[], object]
) -> tuple[float, list[float]]:
    """Warm every replica, start the pollers, make the change (which commits to `table`);
    the seconds from its commit to the last replica's first refusal, and the pollers'
    manifest times."""
    for replica in top.replicas:
        warm = Replica(replica)
        for _ in range(3):
            status, body = warm.request("POST", path, key)
            if status != 200:
                raise SystemExit(f"warm-up on {replica}: {status} {body[:300]!r}")
        warm.close()
    pollers = [Poller(r, path, key) for r in top.replicas]
    threads = [threading.Thread(target=p.run, daemon=True) for p in pollers]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # every poller is answering from warm caches
    since = top.commits.mark()
    change()
    committed = top.commits.first(table, since)
    for thread in threads:
        thread.join(timeout=30)
    for poller in pollers:
        poller.stop.set()
    late = [p.replica for p in pollers if p.refused_at is None]
    if late:
        raise SystemExit(f"still answering 30 s after the change: {late}")
    worst = max((p.refused_at or 0.0) - committed for p in pollers)
    return worst, [t for p in pollers for t in p.latencies]


def up(work: Path, postgres: str) -> tuple[Topology, dict[str, str]]:
    state = work / "state"
    nginx_port, s3_port, *replica_ports = free_ports(5)
    limits = work / "limits.toml"
    limits.write_text(
        "[rate_limits]\n"
        "manifests_per_key = { limit = 1000000, window_seconds = 60 }\n"
        "keys_per_account = { limit = 1000000, window_seconds = 60 }\n"
    )
    env = clean_env(
        GATEWAY_LOCAL_STATE=str(state),
        GATEWAY_LOCAL_PORT=str(nginx_port),
        GATEWAY_LOCAL_S3_PORT=str(s3_port),
        GATEWAY_LOCAL_REPLICA_PORTS=",".join(map(str, replica_ports)),
        GATEWAY_LOCAL_DATABASE=f"gw_propagation_{uuid.uuid4().hex[:10]}",
        GATEWAY_LOCAL_POSTGRES=postgres,
        GATEWAY_LOCAL_CONFIG=str(limits),
    )
    started = subprocess.run([str(UP)], env=env, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        subprocess.run([str(DOWN)], env=env, capture_output=True, check=False)
        raise SystemExit(f"infra/local/up failed:\n{started.stdout}{started.stderr}")
    record = json.loads((state / "topology.json").read_text())
    exported = dict(re.findall(r"^export (\w+)='([^']*)'$", (state / "env").read_text(), re.M))
    database = f"{postgres.rsplit('/', 1)[0]}/{env['GATEWAY_LOCAL_DATABASE']}"
    top = Topology(
        record["url"], list(record["replicas"]), clean_env(**exported), Commits(database)
    )
    return top, env


def publish(top: Topology, work: Path, versions: int) -> None:
    folder = work / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        (folder / name).write_bytes(os.urandom(4096))
    license_file = work / "LICENSE"
    license_file.write_text("Use it kindly.\n")
    for n in range(versions):
        version = f"1.{n}"
        top.gateway(
            "release", "publish", MODEL, version, str(folder), "--license", str(license_file)
        )
        top.gateway(
            "evidence", "attach", f"{MODEL}:{version}", "--kind", "evaluation",
            "--name", "internal-safety", "--result", "pass",
        )  # fmt: skip
        top.gateway("stage", "promote", f"{MODEL}:{version}", "--to", TIER)


def grantee(top: Topology, email: str) -> tuple[str, str]:
    """An account with a grant on the model; its grant id and a key."""
    top.gateway("accounts", "create", email)
    grant = top.gateway("grants", "create", "--account", email, "--model", MODEL, "--tier", TIER)
    return grant.split()[-1], new_key(top, email)


def new_key(top: Topology, email: str) -> str:
    return top.gateway(
        "keys", "create", "--account", email, "--scope", "download", "--scope", "keys"
    ).split()[-1]


def manifest_path(version: str) -> str:
    return f"/api/v1/models/{MODEL}/releases/{version}/downloads"


def revoke_through(replica: str, key: str) -> None:
    client = Replica(replica)
    try:
        status, body = client.request("GET", "/api/v1/keys", key)
        mine = [k["id"] for k in json.loads(body) if k.get("revoked_at") is None]
        status, body = client.request("DELETE", f"/api/v1/keys/{mine[0]}", key)
        if status not in (200, 204):
            raise SystemExit(f"revoking through {replica}: {status} {body[:300]!r}")
    finally:
        client.close()


def measure(top: Topology, trials: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    manifest_times: list[float] = []

    def note(kind: str, outcome: tuple[float, list[float]]) -> None:
        times.setdefault(kind, []).append(outcome[0])
        manifest_times.extend(outcome[1])
        print(f"  {kind:<20} trial {len(times[kind]):>2}: {outcome[0] * 1000:7.1f} ms", flush=True)

    revoker = "revoked@lab.example"
    top.gateway("accounts", "create", revoker)
    top.gateway("grants", "create", "--account", revoker, "--model", MODEL, "--tier", TIER)
    suspended, suspended_key = "suspended@lab.example", ""
    _, suspended_key = grantee(top, suspended)
    grant_holder = "grant@lab.example"
    grant_id, grant_key = grantee(top, grant_holder)
    recaller = "recall@lab.example"
    _, recall_key = grantee(top, recaller)
    stable = manifest_path("1.0")
    for n in range(trials):
        through = top.replicas[n % len(top.replicas)]
        key = new_key(top, revoker)
        revoke = functools.partial(revoke_through, through, key)
        note("key revocation", trial(top, stable, key, "api_keys", revoke))
        suspend = functools.partial(top.gateway, "enforce", suspended, "suspend", "--reason", "t")
        note("account suspension", trial(top, stable, suspended_key, "accounts", suspend))
        top.gateway("enforce", suspended, "lift", "--reason", "trial over")
        pause = functools.partial(top.gateway, "grants", "suspend", grant_id, "--reason", "t")
        note("grant suspension", trial(top, stable, grant_key, "grants", pause))
        top.gateway("grants", "reinstate", grant_id, "--reason", "trial over")
        version = f"1.{n + 1}"
        withdraw = functools.partial(top.gateway, "recall", f"{MODEL}:{version}", "--reason", "t")
        note("release recall", trial(top, manifest_path(version), recall_key, "recalls", withdraw))
    times["baseline"] = [statistics.median(manifest_times)]
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "propagation")
    args = parser.parse_args()
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        print("nginx is missing (scripts/test-deps installs it)", file=sys.stderr)
        return 2
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    top, env = up(work, args.postgres)
    try:
        print(f"topology: nginx at {top.url}, replicas {', '.join(top.replicas)}", flush=True)
        publish(top, work, args.trials + 1)
        times = measure(top, args.trials)
    finally:
        subprocess.run([str(DOWN)], env=env, capture_output=True, check=False)
        with suppress(OSError):
            shutil.rmtree(work)
    baseline = times.pop("baseline")[0]
    print()
    print(f"baseline: one manifest on a replica, median {baseline * 1000:.1f} ms")
    print(f"{'change':<20} {'trials':>6} {'median':>10} {'worst':>10} {'target':>8}  met")
    for kind, found in times.items():
        worst = max(found)
        print(
            f"{kind:<20} {len(found):>6} {statistics.median(found) * 1000:>8.1f}ms"
            f" {worst * 1000:>8.1f}ms {TARGET_SECONDS * 1000:>6.0f}ms  "
            f"{'yes' if worst <= TARGET_SECONDS else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
