"""The README's first command, for real: `gateway serve --demo` on embedded defaults in a
fresh home, then the catalog is read and a signature verified with the standard tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.served import clean_env, serving

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("quick-start") / ".gateway"
    log = home.parent / "serve.log"
    # The shipped policy, as the README's command has: no policy file set.
    env = {k: v for k, v in clean_env(GATEWAY_HOME=str(home)).items() if k != "GATEWAY_POLICY_FILE"}
    with serving(env, log, extra=["--demo"]) as base:
        yield base, home
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
    assert stages == {"1.0": "public", "1.1": "api_preview"}
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
