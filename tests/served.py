"""A real `gateway serve` in a subprocess, for end-to-end tests: started on a free port,
waited for until /healthz answers, and stopped (with its process group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(
    env: dict[str, str], log: Path, *, port: int | None = None, extra: Sequence[str] = ()
) -> Iterator[str]:
    """Run `gateway serve` with `env`, output to `log`; yields its base URL."""
    port = port or free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port), *extra],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, f"the gateway did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


# The suite's policy: the shipped one's three weights tiers without its API preview stage,
# so that a test of downloads opens a release with one promotion from draft. Tests of
# API-only stages load the shipped policy (policies/default.toml) themselves.
SUITE_POLICY = Path(__file__).parent / "fixtures" / "weights_policy.toml"


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without GATEWAY_* and AWS_* settings, on the suite's
    policy, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env["GATEWAY_POLICY_FILE"] = str(SUITE_POLICY)
    env.update(values)
    return env


NGINX = Path(os.environ.get("GATEWAY_NGINX", "/usr/sbin/nginx"))
_NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream gateway {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
        }}
        # The gateway decides (X-Accel-Redirect); nginx sends the file, Range included.
        location /_objects/ {{
            internal;
            alias {objects}/;
            sendfile on;
            tcp_nopush on;
        }}
    }}
}}
"""


@contextmanager
def behind_nginx(work: Path, *, port: int, upstream: int, objects: Path) -> Iterator[str]:
    """Debian's nginx (scripts/test-deps installs it) on `port` in front of a gateway on
    `upstream`, sending local storage's `objects` itself; yields its base URL."""
    assert NGINX.exists(), f"{NGINX} is missing: run scripts/test-deps"
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    # Run as root (CI), the workers would drop to `nobody`, who may not read the test's
    # private temporary folders: they stay the user who runs the tests.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(
        _NGINX_CONF.format(user=user, dir=work, port=port, upstream=upstream, objects=objects)
    )
    checked = subprocess.run(
        [str(NGINX), "-t", "-p", str(work), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [str(NGINX), "-p", str(work), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, (work / "error.log").read_text()
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
