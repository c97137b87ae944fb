"""The README's first command, for real: `gateway serve --demo` on embedded defaults in a
fresh home, then the catalog is read and a signature verified with the standard tool."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("quick-start") / ".gateway"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env["GATEWAY_HOME"] = str(home)
    log = home.parent / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield base, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    output = log.read_text()
    assert "portal    http://127.0.0.1:" in output
    assert "gateway accounts create" in output


def test_the_demo_catalog_is_served(served: tuple[str, Path]) -> None:
    base, _ = served
    assert httpx2.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx2.get(f"{base}/readyz").json()["status"] == "ready"
    models = httpx2.get(f"{base}/api/v1/models").json()
    assert [m["id"] for m in models["items"]] == ["demo/tiny-lm"]
    stages = {r["version"]: r["stage"] for r in models["items"][0]["releases"]}
    assert stages == {"1.0": "public", "1.1": "trusted_partner"}
    page = httpx2.get(f"{base}/", headers={"accept": "text/html"})
    assert "demo/tiny-lm" in page.text


def test_the_standard_tool_verifies_a_release_from_the_catalog_alone(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    base, home = served
    signature = tmp_path / "tiny-lm.sig"
    key = tmp_path / "key.pem"
    signature.write_bytes(
        httpx2.get(f"{base}/api/v1/models/demo/tiny-lm/releases/1.0/signature").content
    )
    key.write_bytes(httpx2.get(f"{base}/.well-known/release-signing-key.pem").content)
    folder = tmp_path / "tiny-lm"
    shutil.copytree(home / "demo" / "tiny-lm-1.0", folder)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(MODEL_SIGNING),
                "verify",
                "key",
                str(folder),
                "--signature",
                str(signature),
                "--public_key",
                str(key),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Verification succeeded" in ok.stdout + ok.stderr

    with (folder / "config.json").open("a") as changed:
        changed.write(" ")
    bad = verify()
    assert bad.returncode != 0
    assert "config.json" in bad.stdout + bad.stderr
