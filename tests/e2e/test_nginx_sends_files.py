"""Behind nginx, the gateway decides and nginx sends: /d/ answers X-Accel-Redirect for
local storage, nginx serves the file (whole, a range, a resume) from its internal
location, and a refusal is the gateway's answer, never a file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_curl_downloads import curl, gateway, published
from tests.served import behind_nginx, clean_env, free_port, serving


@pytest.fixture(scope="module")
def fronted(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str], Path, str]]:
    work = tmp_path_factory.mktemp("nginx")
    port, upstream = free_port(), free_port()
    home = work / "home"
    env = clean_env(
        GATEWAY_HOME=str(home),
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        GATEWAY_ACCEL_REDIRECT="/_objects/",
        GATEWAY_SCHEDULER="off",
        GATEWAY_TRUSTED_PROXIES="127.0.0.1",
    )
    folder = published(env, work)
    with (
        serving(env, work / "serve.log", port=upstream) as direct,
        behind_nginx(
            work / "nginx", port=port, upstream=upstream, objects=home / "objects" / "objects"
        ) as base,
    ):
        yield base, env, folder, direct


def test_nginx_sends_what_the_gateway_allowed_and_nothing_else(
    fronted: tuple[str, dict[str, str], Path, str], tmp_path: Path
) -> None:
    base, env, folder, _ = fronted
    gateway(env, "accounts", "create", "dana@example.org")
    grant_id = gateway(
        env,
        "grants",
        "create",
        "--account",
        "dana@example.org",
        "--model",
        "acme/llm",
        "--tier",
        "trusted_partner",
    )
    key = gateway(env, "keys", "create", "--account", "dana@example.org", "--scope", "download")
    listed = curl(
        "-f",
        "-X",
        "POST",
        "-H",
        f"Authorization: Bearer {key}",
        f"{base}/api/v1/models/acme/llm/releases/1.0/downloads",
    )
    assert listed.returncode == 0, listed.stderr
    urls = {a["path"]: a for a in json.loads(listed.stdout)["artifacts"]}
    weights = urls["model.safetensors"]
    assert weights["url"].startswith(f"{base}/d/")
    original = (folder / "model.safetensors").read_bytes()

    whole = tmp_path / "whole"
    headers = tmp_path / "headers"
    assert curl("-f", "-D", str(headers), "-o", str(whole), weights["url"]).returncode == 0
    assert hashlib.sha256(whole.read_bytes()).hexdigest() == weights["sha256"]
    sent = headers.read_text().lower()
    assert "x-accel-redirect" not in sent  # nginx keeps its internal location to itself
    assert "content-disposition: attachment" in sent
    assert f"content-length: {len(original)}" in sent

    # A range and a resume: nginx applies the client's Range to the file.
    part = tmp_path / "part"
    ranged = curl("-f", "-r", "1000-1999", "-o", str(part), "-w", "%{http_code}", weights["url"])
    assert ranged.stdout == "206"
    assert part.read_bytes() == original[1000:2000]
    resumed = tmp_path / "resumed"
    assert curl("-f", "-r", "0-999999", "-o", str(resumed), weights["url"]).returncode == 0
    assert curl("-f", "-C", "-", "-o", str(resumed), weights["url"]).returncode == 0
    assert resumed.read_bytes() == original

    # The internal location is not reachable from outside, not even with a real path.
    sha = weights["sha256"]
    direct = curl(
        "-o", "/dev/null", "-w", "%{http_code}", f"{base}/_objects/{sha[:2]}/{sha[2:4]}/{sha}"
    )
    assert direct.stdout == "404"

    # Once the grant is revoked, the gateway refuses and nginx sends nothing.
    gateway(env, "grants", "revoke", grant_id, "--reason", "end of the pilot")
    refused = curl("-o", "-", "-w", "%{http_code}", weights["url"])
    assert refused.stdout.endswith("403")
    assert json.loads(refused.stdout[:-3])["error"] == "grant_revoked"


def reporter_address(env: dict[str, str], base: str, *curl_args: str) -> str:
    """Report an incident with curl (and `curl_args`); the address the gateway kept."""
    sent = curl(
        "-f",
        *curl_args,
        "-H",
        "content-type: application/json",
        "-d",
        json.dumps({"category": "other", "description": "Weights are posted on a file host."}),
        f"{base}/api/v1/incidents",
    )
    assert sent.returncode == 0, sent.stderr
    shown = gateway(env, "incidents", "show", json.loads(sent.stdout)["tracking_code"])
    reporter = next(line for line in shown.splitlines() if "reporter:" in line)
    return reporter.rsplit(" from ", 1)[-1]


def test_behind_a_trusted_proxy_the_client_is_the_address_it_saw(
    fronted: tuple[str, dict[str, str], Path, str],
) -> None:
    base, env, _, direct = fronted
    spoof = ("-H", "X-Forwarded-For: 203.0.113.9")
    # Through nginx (trusted), the client's own address, whatever the client claims.
    assert reporter_address(env, base, "--interface", "127.0.0.2") == "127.0.0.2"
    assert reporter_address(env, base, "--interface", "127.0.0.2", *spoof) == "127.0.0.2"
    # Straight to the gateway from an address it does not trust: the header is ignored.
    assert reporter_address(env, direct, "--interface", "127.0.0.3", *spoof) == "127.0.0.3"
