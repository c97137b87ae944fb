"""A grantee with plain curl against the real server: whole files, `curl -C -` resume,
revocation that kills an unexpired URL at once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sample import make_license
from tests.served import clean_env, free_port, serving


def gateway(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def published(env: dict[str, str], work: Path, version: str = "1.0", size: int = 3_000_000) -> Path:
    """acme/llm VERSION (a file of `size` bytes and a README) migrated, published,
    evaluated and open to trusted partners; the folder it came from."""
    folder = work / ("model" if version == "1.0" else f"model-{version}")
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(os.urandom(size))
    (folder / "README.md").write_text(f"# model {version}\n")
    gateway(env, "db", "upgrade")
    gateway(
        env,
        "release",
        "publish",
        "acme/llm",
        version,
        str(folder),
        "--license",
        str(make_license(work)),
    )
    gateway(
        env,
        "evidence",
        "attach",
        f"acme/llm:{version}",
        "--kind",
        "evaluation",
        "--name",
        "internal-safety",
        "--result",
        "pass",
    )
    gateway(env, "stage", "promote", f"acme/llm:{version}", "--to", "trusted_partner")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    work = tmp_path_factory.mktemp("curl")
    port = free_port()
    env = clean_env(GATEWAY_HOME=str(work / "home"), GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}")
    folder = published(env, work)
    with serving(env, work / "serve.log", port=port) as base:
        yield base, env, folder


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, check=False)


def test_curl_fetches_resumes_and_is_cut_off_by_revocation(
    server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base, env, folder = server
    gateway(env, "accounts", "create", "carol@example.org")
    grant_id = gateway(
        env,
        "grants",
        "create",
        "--account",
        "carol@example.org",
        "--model",
        "acme/llm",
        "--tier",
        "trusted_partner",
    )
    key = gateway(env, "keys", "create", "--account", "carol@example.org", "--scope", "download")
    listed = curl(
        "-X",
        "POST",
        "-H",
        f"Authorization: Bearer {key}",
        f"{base}/api/v1/models/acme/llm/releases/1.0/downloads",
    )
    manifest = json.loads(listed.stdout)
    urls = {a["path"]: a for a in manifest["artifacts"]}
    for path, artifact in urls.items():
        target = tmp_path / path
        assert curl("-f", "-o", str(target), artifact["url"]).returncode == 0
        assert hashlib.sha256(target.read_bytes()).hexdigest() == artifact["sha256"]

    # An interrupted download: the first megabyte only, then `curl -C -` finishes it.
    weights = urls["model.safetensors"]
    partial = tmp_path / "resumed.safetensors"
    assert curl("-f", "-r", "0-999999", "-o", str(partial), weights["url"]).returncode == 0
    assert partial.stat().st_size == 1_000_000
    assert curl("-f", "-C", "-", "-o", str(partial), weights["url"]).returncode == 0
    assert hashlib.sha256(partial.read_bytes()).hexdigest() == weights["sha256"]
    assert partial.read_bytes() == (folder / "model.safetensors").read_bytes()

    gateway(env, "grants", "revoke", grant_id, "--reason", "end of the pilot")
    refused = curl("-o", "-", "-w", "%{http_code}", weights["url"])
    assert refused.stdout.endswith("403")
    body = json.loads(refused.stdout[:-3])
    assert body["error"] == "grant_revoked"
    assert body["message"] == "your access grant was revoked"
