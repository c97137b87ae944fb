"""A store that accepts connections and never answers fails `gateway release publish`
within the configured storage timeout: exit code 5, "storage unreachable", nothing
recorded; a store that refuses connections fails the same way at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import fresh_database_url
from tests.fixtures.faulty_proxy import FaultyProxy, Mode
from tests.sample import make_folder, make_license

TIMEOUT_SECONDS = 3
GATEWAY = (sys.executable, "-m", "gateway")


def publish(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    folder = make_folder(tmp_path / "src")
    license_file = str(make_license(tmp_path))
    started = time.monotonic()
    result = subprocess.run(
        [
            *GATEWAY,
            "release",
            "publish",
            "acme/sample",
            "1.0",
            str(folder),
            "--license",
            license_file,
        ],
        capture_output=True,
        text=True,
        env=env,
        # Far above the bound under test, far below the old one (5 attempts x 60 s).
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


def gateway_env(tmp_path: Path, request: pytest.FixtureRequest, endpoint: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        **os.environ,
        "GATEWAY_HOME": str(home),
        "GATEWAY_DATABASE_URL": fresh_database_url("sqlite+file", tmp_path, request),
        "GATEWAY_STORAGE_URL": "s3://releases/gateway",
        "GATEWAY_S3_ENDPOINT_URL": endpoint,
        "GATEWAY_S3_REGION": "us-east-1",
        "GATEWAY_STORAGE_TIMEOUT": str(TIMEOUT_SECONDS),
        # Credentials, so that the failure under test is the store's silence.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.parametrize("mode", [Mode.HANG, Mode.REFUSE])
def test_a_store_that_does_not_answer_fails_a_publish_within_the_timeout(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    faulty_proxy: type[FaultyProxy],
    mode: Mode,
) -> None:
    proxy = faulty_proxy(("127.0.0.1", 9))
    proxy.switch(mode)
    env = gateway_env(tmp_path, request, proxy.url)
    # What any command takes to start here (imports, settings, the database) on this machine.
    started = time.monotonic()
    listed = run("release", "list", env=env)
    start_up = time.monotonic() - started
    assert "No releases yet." in listed.stdout, listed.stderr
    result, elapsed = publish(env, tmp_path)
    assert result.returncode == 5, result.stderr
    assert "error: storage unreachable: " in result.stderr
    assert "S3 bucket 'releases'" in result.stderr
    assert "Traceback" not in result.stderr
    if mode is Mode.HANG:
        assert f"no answer within {TIMEOUT_SECONDS} s" in result.stderr
    # The timeout bounds each call, and the first failure ends the publish: the calls in
    # flight together take it once.
    assert elapsed < start_up + TIMEOUT_SECONDS + 3, (elapsed, start_up)
    assert "No releases yet." in run("release", "list", env=env).stdout


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_the_storage_timeout_setting_is_checked(tmp_path: Path) -> None:
    for bad in ("0", "-1", "soon", "99999"):
        env = {**os.environ, "GATEWAY_HOME": str(tmp_path), "GATEWAY_STORAGE_TIMEOUT": bad}
        result = run("config", "show", env=env)
        assert result.returncode == 2, result.stderr
        assert "GATEWAY_STORAGE_TIMEOUT: expected a number of seconds" in result.stderr
