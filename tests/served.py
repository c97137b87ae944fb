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


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without GATEWAY_* and AWS_* settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env.update(values)
    return env
