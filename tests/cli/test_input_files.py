"""Files named on the command line are read as regular files only, within their limit: a
device, a FIFO or a folder is refused at once (never read for ever), and nothing is
written. The commands run in a subprocess with a deadline and a memory cap, so a reader
that does block or read endlessly fails the test instead of the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.staging.evidence_files import EVIDENCE_FILE_MAX_BYTES
from tests.sample import make_folder, make_license

DEADLINE_SECONDS = 60
MEMORY_CAP_BYTES = 2 * 1024**3


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        env={**os.environ, **(env or {}), "COLUMNS": "240"},
        preexec_fn=_capped,
        check=False,
    )


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "license.fifo"
    os.mkfifo(path)
    return path


def _device(_: Path) -> Path:
    return Path("/dev/zero")


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / f"input-{uuid.uuid4().hex[:8]}.fifo"
    os.mkfifo(path)
    return path


def _folder(tmp_path: Path) -> Path:
    path = tmp_path / "a-folder"
    path.mkdir()
    return path


def _too_large(tmp_path: Path) -> Path:
    path = tmp_path / "too-large.txt"
    with path.open("wb") as out:
        out.truncate(1024 * 1024 + 1)
    return path


NOT_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "device": (_device, "not a regular file (a device)"),
    "fifo": (_fifo, "not a regular file (a FIFO)"),
    "folder": (_folder, "a-folder"),  # click refuses folders before the command runs
    "too-large": (_too_large, "larger than the limit of 1 MiB"),
}


@pytest.mark.parametrize("kind", sorted(NOT_FILES))
@pytest.mark.parametrize("option", ["--license", "--guidance"])
def test_publish_refuses_a_license_or_guidance_that_is_not_a_small_regular_file(
    settings_env: Settings, tmp_path: Path, kind: str, option: str
) -> None:
    make, problem = NOT_FILES[kind]
    bad = make(tmp_path)
    license_file = str(make_license(tmp_path)) if option == "--guidance" else str(bad)
    args = ["release", "publish", "acme/sample", "1.0", str(make_folder(tmp_path / "src"))]
    args += ["--license", license_file]
    if option == "--guidance":
        args += ["--guidance", str(bad)]
    result = gateway(*args)
    assert result.returncode == 2, result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert "No releases yet." in gateway("release", "list").stdout


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_policy_check_and_decommission_refuse_what_is_not_a_regular_file(
    settings_env: Settings, tmp_path: Path, kind: str
) -> None:
    make, problem = NOT_FILES[kind]
    checked = gateway("policy", "check", str(make(tmp_path)))
    assert checked.returncode == 2, checked.stderr
    assert f"policy file {'/dev/zero' if kind == 'device' else tmp_path}" in checked.stderr
    assert problem in checked.stderr
    notice = gateway(
        "decommission",
        "acme/sample:1.0",
        "--at",
        "2030-01-01",
        "--reason",
        "superseded",
        "--license",
        str(make(tmp_path)),
    )
    assert notice.returncode == 2, notice.stderr
    assert problem in notice.stderr


def test_a_policy_setting_that_names_no_regular_file_stops_the_gateway_at_start(
    settings_env: Settings, fifo: Path
) -> None:
    result = gateway("release", "list", env={"GATEWAY_POLICY_FILE": str(fifo)})
    assert result.returncode == 2, result.stderr
    assert "GATEWAY_POLICY_FILE" in result.stderr
    assert "not a regular file (a FIFO)" in result.stderr


@pytest.mark.parametrize("kind", ["device", "fifo", "too-large"])
def test_evidence_files_are_regular_files_within_the_console_limit(
    settings_env: Settings, tmp_path: Path, kind: str
) -> None:
    folder = make_folder(tmp_path / "src")
    published = gateway(
        "release", "publish", "acme/sample", "1.0", str(folder), "--license",
        str(make_license(tmp_path)),
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    if kind == "too-large":
        bad = tmp_path / "report.pdf"
        with bad.open("wb") as out:
            out.truncate(EVIDENCE_FILE_MAX_BYTES + 1)
        problem = "larger than the limit of 20 MiB"
    else:
        make, problem = NOT_FILES[kind]
        bad = make(tmp_path)
    args = ["evidence", "attach", "acme/sample:1.0", "--kind", "evaluation"]
    args += ["--name", "red-team", "--result", "pass", "--file", str(bad)]
    refused = gateway(*args)
    assert refused.returncode == 2, refused.stderr
    assert f"evidence file {bad}: {problem}" in refused.stderr
    status = gateway("stage", "status", "acme/sample:1.0")
    assert "red-team" not in status.stdout
    report = tmp_path / "fine.pdf"
    report.write_bytes(b"%PDF-1.4 fine\n")
    accepted = gateway(*args[:-1], str(report))
    assert accepted.returncode == 0, accepted.stderr
    assert "with fine.pdf" in accepted.stdout
    assert (
        "evidence evaluation/red-team = pass"
        in gateway("stage", "status", "acme/sample:1.0").stdout
    )
