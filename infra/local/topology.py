"""The production topology on one machine, without containers: a fresh PostgreSQL
database, an S3 server (moto_server), gateway replicas sharing one configuration, and
nginx balancing them. `up` starts it, `down` stops it; see README.md beside this file.

Rules:
- Everything `up` starts is recorded in the state folder before it is waited for: a pid
  file per process (pid and start time, so a reused pid is never signalled) and
  topology.json (ports, the database and whether this folder created it). `down` stops
  by those records alone and drops only a database the folder created, so it is safe to
  run at any time, twice, or after a failed `up`.
- `up` either leaves the whole topology answering `/readyz` through nginx on every
  replica, or stops what it started, drops the database it made and exits non-zero.
- Every replica reads one home (`STATE/home`): one gateway.toml (0600) with the database,
  the storage, the public URL (nginx's) and the key-encryption key, and one keys folder
  with the release signing key. Only the first replica runs the scheduler.

Only the standard library: it runs with any python3 and drives the project's own tools.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEMPLATE = HERE / "nginx.conf.template"
HOST = "127.0.0.1"
BUCKET = "gateway-local"
S3_PREFIX = "gateway"
REGION = "us-east-1"
# moto accepts multipart parts down to this size (S3: 5 MiB), as the test suite's does.
S3_PART_MIN_SIZE = "16384"
# moto takes any credentials; these keep a developer's own AWS setup out of the way.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
STOP_SECONDS = 20.0


class TopologyError(Exception):
    """Something `up` or `down` cannot do; the message says what and where to look."""


@dataclass(frozen=True)
class Plan:
    """What to start and where, from the environment (see README.md)."""

    state: Path
    port: int
    replica_ports: tuple[int, ...]
    s3_port: int
    database: str
    postgres_admin_url: str
    workers: int
    extra_config: Path | None
    timeout: float
    gateway: Path
    moto_server: Path
    nginx: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def database_url(self) -> str:
        base = self.postgres_admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"postgresql+asyncpg://{base}/{self.database}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def home(self) -> Path:
        return self.state / "home"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def record(self) -> Path:
        return self.state / "topology.json"


def _port(text: str, name: str) -> int:
    text = text.strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TopologyError(f"{name}: expected a port number, got {text!r}")
    return int(text)


def plan_from(env: Mapping[str, str]) -> Plan:
    """Read the settings of the topology from `env`; a bad one names its variable."""
    replica_text = env.get("GATEWAY_LOCAL_REPLICA_PORTS") or "8101,8102,8103"
    replica_ports = [_port(item, "GATEWAY_LOCAL_REPLICA_PORTS") for item in replica_text.split(",")]
    port = _port(env.get("GATEWAY_LOCAL_PORT") or "8100", "GATEWAY_LOCAL_PORT")
    s3_port = _port(env.get("GATEWAY_LOCAL_S3_PORT") or "8104", "GATEWAY_LOCAL_S3_PORT")
    every = [port, s3_port, *replica_ports]
    if len(set(every)) != len(every):
        raise TopologyError(
            "GATEWAY_LOCAL_PORT, GATEWAY_LOCAL_S3_PORT and GATEWAY_LOCAL_REPLICA_PORTS: "
            f"every port must be different, got {every}"
        )
    database = env.get("GATEWAY_LOCAL_DATABASE") or "gateway_local"
    if not _DATABASE_NAME.fullmatch(database):
        raise TopologyError(
            "GATEWAY_LOCAL_DATABASE: expected lower-case letters, digits and _ "
            f"(at most 63, not starting with a digit), got {database!r}"
        )
    workers_text = env.get("GATEWAY_LOCAL_WORKERS") or "1"
    if not workers_text.isdigit() or not 1 <= int(workers_text) <= 8:
        raise TopologyError(f"GATEWAY_LOCAL_WORKERS: expected 1 to 8, got {workers_text!r}")
    extra = env.get("GATEWAY_LOCAL_CONFIG")
    extra_config = Path(extra).expanduser().absolute() if extra else None
    if extra_config is not None and not extra_config.is_file():
        raise TopologyError(f"GATEWAY_LOCAL_CONFIG: {extra_config} is not a file")
    timeout_text = env.get("GATEWAY_LOCAL_TIMEOUT") or "60"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = 0.0
    if not timeout > 0:
        raise TopologyError(f"GATEWAY_LOCAL_TIMEOUT: expected seconds, got {timeout_text!r}")
    gateway = Path(env.get("GATEWAY_BIN") or ROOT / ".venv" / "bin" / "gateway").absolute()
    moto = env.get("GATEWAY_MOTO_SERVER")
    return Plan(
        state=Path(env.get("GATEWAY_LOCAL_STATE") or ".gateway-local").expanduser().absolute(),
        port=port,
        replica_ports=tuple(replica_ports),
        s3_port=s3_port,
        database=database,
        postgres_admin_url=env.get("GATEWAY_LOCAL_POSTGRES")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        workers=int(workers_text),
        extra_config=extra_config,
        timeout=timeout,
        gateway=gateway,
        moto_server=Path(moto).absolute() if moto else gateway.with_name("moto_server"),
        nginx=Path(env.get("GATEWAY_NGINX") or "/usr/sbin/nginx"),
    )


# --- processes ---------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if there is no such
    process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rsplit(")", 1)[1].split()


def _started(pid: int) -> str | None:
    """When the process started (clock ticks since boot), or None if it is gone."""
    fields = _stat(pid)
    # fields[0] is the state; start time is the 22nd field of the whole line.
    return None if fields is None or fields[0] == "Z" else fields[19]


def _group_members(pgid: int) -> list[int]:
    """Living processes of a process group (zombies do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and fields[2] == str(pgid):
                members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class Tracked:
    """A process `up` started, as its pid file records it."""

    name: str
    pid: int
    started: str

    @property
    def alive(self) -> bool:
        return _started(self.pid) == self.started


def _pid_file(plan: Plan, name: str) -> Path:
    return plan.pids / f"{name}.pid"


def read_tracked(plan: Plan) -> list[Tracked]:
    found = []
    for path in sorted(plan.pids.glob("*.pid")) if plan.pids.is_dir() else []:
        parts = path.read_text().split()
        if len(parts) == 2 and parts[0].isdigit():
            found.append(Tracked(path.stem, int(parts[0]), parts[1]))
    return found


def start(
    plan: Plan, name: str, command: list[str], env: Mapping[str, str], cwd: Path | None = None
) -> Tracked:
    """Start `command` in a session of its own, output to logs/NAME.log, and record it."""
    log = plan.logs / f"{name}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = _started(process.pid)
    if started is None:
        process.wait()
        raise TopologyError(f"{name} exited at once:\n{tail(log)}")
    tracked = Tracked(name, process.pid, started)
    _pid_file(plan, name).write_text(f"{tracked.pid} {tracked.started}\n")
    return tracked


def stop(plan: Plan, processes: list[Tracked]) -> None:
    """Stop recorded processes, each with everything in its process group, side by side;
    forget their pid files."""
    for tracked in processes:
        if tracked.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tracked.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(_group_members(t.pid) for t in processes):
        time.sleep(0.1)
    for tracked in processes:
        # Whatever is left of a group (a worker that ignored SIGTERM), and only if its
        # leader was ours: the group of a reused pid belongs to someone else.
        leader_gone = _started(tracked.pid) is None
        if tracked.alive or (leader_gone and _group_members(tracked.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tracked.pid, signal.SIGKILL)
        _pid_file(plan, tracked.name).unlink(missing_ok=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} is missing)"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: connections of an earlier run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _get(port: int, path: str, timeout: float = 2.0) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _wait(
    what: str, ready: Callable[[], bool], deadline: float, watched: list[Tracked], plan: Plan
) -> None:
    """Wait until `ready()`; fail early if a watched process dies, late at the deadline."""
    while True:
        for process in watched:
            if not process.alive:
                log = plan.logs / f"{process.name}.log"
                raise TopologyError(f"{process.name} exited while waiting for {what}:\n{tail(log)}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(f"  {p.name}:\n{tail(plan.logs / f'{p.name}.log')}" for p in watched)
            raise TopologyError(f"timed out waiting for {what}:\n{logs}")
        time.sleep(0.1)


# --- PostgreSQL --------------------------------------------------------------------------


def psql(plan: Plan, statement: str) -> str:
    """Run one statement on the admin database; `:'database'` and `:"database"` in it are
    the database name, quoted by psql as a literal and as an identifier."""
    psql_bin = shutil.which("psql")
    if psql_bin is None:
        raise TopologyError("psql not found: install postgresql-client")
    variables = ["-v", "ON_ERROR_STOP=1", "-v", f"database={plan.database}"]
    done = subprocess.run(
        [psql_bin, "-X", "-q", "-A", "-t", *variables, "-d", plan.postgres_admin_url],
        input=statement + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise TopologyError(
            f"PostgreSQL at {plan.postgres_admin_url} (GATEWAY_LOCAL_POSTGRES): "
            f"{done.stderr.strip()}"
        )
    return done.stdout.strip()


def database_exists(plan: Plan) -> bool:
    return psql(plan, "SELECT 1 FROM pg_database WHERE datname = :'database'") == "1"


def create_database(plan: Plan) -> None:
    psql(plan, 'CREATE DATABASE :"database"')


def drop_database(plan: Plan) -> None:
    psql(plan, 'DROP DATABASE IF EXISTS :"database" WITH (FORCE)')


# --- the record of what is up ---------------------------------------------------------------


@dataclass
class Record:
    """topology.json: what `down` needs, and what tests and people read."""

    url: str
    replicas: list[str]
    s3_endpoint: str
    database: str
    postgres_admin_url: str
    database_created: bool
    home: str
    env_file: str


def read_record(plan: Plan) -> Record | None:
    try:
        return Record(**json.loads(plan.record.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise TopologyError(f"{plan.record}: not a topology record ({exc})") from exc


def write_record(plan: Plan, record: Record) -> None:
    temporary = plan.record.with_suffix(".json.new")
    temporary.write_text(json.dumps(asdict(record), indent=2) + "\n")
    temporary.replace(plan.record)


def plan_of_record(plan: Plan, record: Record) -> Plan:
    """The plan as it was when the record was written: `down` drops that database."""
    return replace(plan, database=record.database, postgres_admin_url=record.postgres_admin_url)


# --- up ----------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def gateway_toml(plan: Plan, secret_key: str) -> str:
    lines = [
        "# Written by infra/local/up; every replica and the CLI read this one file.",
        f'database_url = "{plan.database_url}"',
        f'storage_url = "s3://{BUCKET}/{S3_PREFIX}"',
        f's3_endpoint_url = "{plan.s3_endpoint}"',
        f's3_region = "{REGION}"',
        f'public_url = "{plan.url}"',
        f'secret_key = "{secret_key}"',
        "# nginx, on this machine, is the way in: the client's address is its X-Forwarded-For.",
        'trusted_proxies = "127.0.0.1"',
        "",
    ]
    if plan.extra_config is not None:
        extra = plan.extra_config.read_text()
        lines += [f"# From {plan.extra_config} (GATEWAY_LOCAL_CONFIG)", extra]
    return "\n".join(lines)


def nginx_conf(plan: Plan) -> str:
    servers = "\n".join(f"        server {HOST}:{port};" for port in plan.replica_ports)
    text = TEMPLATE.read_text().replace("@@UPSTREAM_SERVERS@@", servers)
    text = text.replace("@@LISTEN@@", f"{HOST}:{plan.port}")
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise TopologyError(f"{TEMPLATE}: nothing fills in {', '.join(left)}")
    return text


def cli_env(plan: Plan) -> dict[str, str]:
    """What a `gateway` command needs to work on this topology."""
    return {"GATEWAY_HOME": str(plan.home), **AWS_ENV}


def _process_env(plan: Plan, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    return {**base, **cli_env(plan), "NO_PROXY": f"{HOST},localhost", **extra}


def _check_tools(plan: Plan) -> None:
    for path, variable in (
        (plan.gateway, "GATEWAY_BIN"),
        (plan.moto_server, "GATEWAY_MOTO_SERVER"),
        (plan.nginx, "GATEWAY_NGINX"),
    ):
        if not os.access(path, os.X_OK):
            hint = " (scripts/test-deps installs it)" if variable == "GATEWAY_NGINX" else ""
            raise TopologyError(f"{variable}: {path} is not an executable{hint}")


def _check_ports(plan: Plan) -> None:
    for port, variable in (
        (plan.port, "GATEWAY_LOCAL_PORT"),
        (plan.s3_port, "GATEWAY_LOCAL_S3_PORT"),
        *((p, "GATEWAY_LOCAL_REPLICA_PORTS") for p in plan.replica_ports),
    ):
        if not _port_free(port):
            raise TopologyError(f"port {HOST}:{port} is in use; choose another with {variable}")


def _make_bucket(plan: Plan) -> None:
    # moto takes unsigned requests: a bare PUT makes the bucket.
    connection = http.client.HTTPConnection(HOST, plan.s3_port, timeout=10)
    try:
        connection.request("PUT", f"/{BUCKET}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise TopologyError(f"moto_server refused to create bucket {BUCKET}: {body!r}")


def _replica_ready(port: int) -> bool:
    status, _, _ = _get(port, "/readyz")
    return status == 200


class _Spread:
    """Whether nginx answers /readyz from every replica."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.seen: set[str] = set()
        self.expected = {f"{HOST}:{port}" for port in plan.replica_ports}

    def __call__(self) -> bool:
        status, headers, _ = _get(self.plan.port, "/readyz")
        if status == 200:
            self.seen.add(headers.get("x-gateway-replica", ""))
        return self.expected <= self.seen


def setup_link(plan: Plan) -> str | None:
    """The one-time link that creates the first operator, if a replica printed one."""
    for log in sorted(plan.logs.glob("replica-*.log")):
        found = re.search(r"https?://\S+/setup\?token=\S+", log.read_text(errors="replace"))
        if found:
            return found.group(0)
    return None


def up(plan: Plan) -> int:
    record = read_record(plan)
    if record is not None:
        tracked = read_tracked(plan)
        living = [t for t in tracked if t.alive]
        if living and len(living) == len(tracked):
            print(f"already up: {record.url} (state {plan.state}); infra/local/down stops it")
            return 0
        if living:
            names = ", ".join(t.name for t in tracked if not t.alive)
            raise TopologyError(
                f"{plan.state}: partly running ({names} stopped); run infra/local/down first"
            )
        print(f"{plan.state}: cleaning up a topology that is no longer running")
        down(plan, quiet=True)
    _check_tools(plan)
    _check_ports(plan)
    if database_exists(plan):
        raise TopologyError(
            f"database {plan.database} already exists and this state folder did not make it: "
            "drop it, or choose another name with GATEWAY_LOCAL_DATABASE"
        )
    for folder in (plan.state, plan.logs, plan.pids, plan.home):
        folder.mkdir(parents=True, exist_ok=True)
    (plan.state / ".gitignore").write_text("*\n")
    # The logs of an earlier run are kept until now, for a look after `down`.
    for old_log in plan.logs.glob("*.log"):
        old_log.unlink()
    env_file = plan.state / "env"
    record = Record(
        url=plan.url,
        replicas=[f"http://{HOST}:{port}" for port in plan.replica_ports],
        s3_endpoint=plan.s3_endpoint,
        database=plan.database,
        postgres_admin_url=plan.postgres_admin_url,
        database_created=False,
        home=str(plan.home),
        env_file=str(env_file),
    )
    write_record(plan, record)
    try:
        _start_all(plan, record)
    except BaseException:
        down(plan, quiet=True)
        raise
    exports = "".join(f"export {k}={_shell_quote(v)}\n" for k, v in cli_env(plan).items())
    env_file.write_text(exports)
    print(f"up: {plan.url}")
    print(f"  replicas  {', '.join(record.replicas)} (scheduler on the first)")
    print(f"  database  {plan.database_url}")
    print(f"  storage   s3://{BUCKET}/{S3_PREFIX} at {plan.s3_endpoint}")
    print(f"  state     {plan.state}")
    print(f"  the CLI:  . {env_file} && {plan.gateway} accounts list")
    link = setup_link(plan)
    if link is not None:
        print(f"  first operator: {link}")
    return 0


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _start_all(plan: Plan, record: Record) -> None:
    deadline = time.monotonic() + plan.timeout
    create_database(plan)
    record.database_created = True
    write_record(plan, record)

    s3_env = _process_env(plan, S3_UPLOAD_PART_MIN_SIZE=S3_PART_MIN_SIZE)
    moto = start(plan, "s3", [str(plan.moto_server), "-H", HOST, "-p", str(plan.s3_port)], s3_env)
    _wait("moto_server", lambda: _get(plan.s3_port, "/")[0] == 200, deadline, [moto], plan)
    _make_bucket(plan)

    secret_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    _write_private(plan.home / "gateway.toml", gateway_toml(plan, secret_key))
    migrate_log = plan.logs / "migrate.log"
    with migrate_log.open("ab") as sink:
        migrated = subprocess.run(
            [str(plan.gateway), "db", "upgrade"],
            env=_process_env(plan),
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=plan.timeout,
        )
    if migrated.returncode != 0:
        raise TopologyError(f"gateway db upgrade failed:\n{tail(migrate_log)}")

    replicas = []
    for number, port in enumerate(plan.replica_ports, start=1):
        # Jobs take advisory locks, so more schedulers would be safe; one is enough.
        scheduler = "on" if number == 1 else "off"
        command = [str(plan.gateway), "serve", "--host", HOST, "--port", str(port)]
        command += ["--workers", str(plan.workers)]
        env = _process_env(plan, GATEWAY_SCHEDULER=scheduler)
        replicas.append(start(plan, f"replica-{number}", command, env, cwd=plan.state))

    nginx_dir = plan.state / "nginx"
    for folder in (nginx_dir / "logs", nginx_dir / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    (nginx_dir / "nginx.conf").write_text(nginx_conf(plan))
    nginx_command = [str(plan.nginx), "-p", f"{nginx_dir}/", "-c", "nginx.conf"]
    nginx_command += ["-e", "logs/error.log"]
    checked = subprocess.run(
        [*nginx_command, "-t", "-q"], capture_output=True, text=True, check=False, timeout=30
    )
    if checked.returncode != 0:
        raise TopologyError(f"nginx refused {nginx_dir / 'nginx.conf'}:\n{checked.stderr}")
    nginx = start(plan, "nginx", nginx_command, _process_env(plan))

    everything = [moto, *replicas, nginx]
    for process, port in zip(replicas, plan.replica_ports, strict=True):
        ready = functools.partial(_replica_ready, port)
        _wait(f"{process.name} /readyz", ready, deadline, everything, plan)
    _wait("/readyz through nginx on every replica", _Spread(plan), deadline, everything, plan)


# --- down --------------------------------------------------------------------------------


def down(plan: Plan, *, quiet: bool = False) -> int:
    record = read_record(plan)
    tracked = read_tracked(plan)
    if record is None and not tracked:
        if not quiet:
            print(f"not up: nothing recorded in {plan.state}")
        return 0
    # The front first, so nothing reaches a replica that is going away; storage last.
    front = [t for t in tracked if t.name == "nginx"]
    replicas = [t for t in tracked if t.name.startswith("replica-")]
    rest = [t for t in tracked if t not in front and t not in replicas]
    for processes in (front, replicas, rest):
        stop(plan, processes)
    if record is not None and record.database_created:
        drop_database(plan_of_record(plan, record))
    for leftover in ("home", "nginx", "pids", "env"):
        path = plan.state / leftover
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    plan.record.unlink(missing_ok=True)
    if not quiet:
        dropped = record is not None and record.database_created
        said = f", database {record.database} dropped" if record and dropped else ""
        print(f"down: stopped {len(tracked)} process(es){said}; logs kept in {plan.logs}")
    return 0


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[[Plan], int]] = {"up": up, "down": down}
    if len(argv) != 2 or argv[1] not in commands:
        print("usage: topology.py up|down", file=sys.stderr)
        return 2
    try:
        return commands[argv[1]](plan_from(os.environ))
    except TopologyError as exc:
        print(f"{argv[1]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
