"""The README's second command installs what the tests need on a fresh machine:
`scripts/test-deps` asks apt-get for Chromium and nginx only when they are missing, and
both the README and `.ci/run` call it.

The machine here already has both, so a fresh one is played with GATEWAY_CHROMIUM and
GATEWAY_NGINX pointing at nothing and a stand-in `apt-get` first on PATH that records
how it was called."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "test-deps"


def stand_ins(folder: Path, *, apt_fails: bool = False) -> Path:
    """`apt-get` and `invoke-rc.d` that append their arguments to folder/calls."""
    folder.mkdir()
    calls = folder / "calls"
    for name in ("apt-get", "invoke-rc.d", "sudo"):
        tool = folder / name
        exit_code = 100 if apt_fails and name == "apt-get" else 0
        runs = 'exec "$@"' if name == "sudo" else f"exit {exit_code}"
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n{runs}\n')
        tool.chmod(0o755)
    return calls


def run(chromium: Path, nginx: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GATEWAY_CHROMIUM": str(chromium),
        "GATEWAY_NGINX": str(nginx),
    }
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_a_fresh_machine_gets_chromium_and_nginx_from_apt(tmp_path: Path) -> None:
    calls = stand_ins(tmp_path / "bin")
    done = run(tmp_path / "no-chromium", tmp_path / "no-nginx", tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    # Without root, the same calls go through sudo.
    lines = [line for line in calls.read_text().splitlines() if not line.startswith("sudo")]
    assert "apt-get update -qq" in lines
    installs = [line for line in lines if line.startswith("apt-get install")]
    assert len(installs) == 1
    assert installs[0].split()[-2:] == ["chromium", "nginx"]
    # The packaged nginx service is stopped again: the tests start their own.
    assert "invoke-rc.d nginx stop" in lines


def test_only_what_is_missing_is_installed_and_nothing_when_all_is_there(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    calls = stand_ins(tmp_path / "bin")
    done = run(present, tmp_path / "no-nginx", tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    installs = [line for line in calls.read_text().splitlines() if "apt-get install" in line]
    assert installs[0].split()[-1] == "nginx"
    assert "chromium" not in installs[0]

    calls.unlink()
    done = run(present, present, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    assert not calls.exists()


def test_a_failed_install_stops_the_command(tmp_path: Path) -> None:
    stand_ins(tmp_path / "bin", apt_fails=True)
    done = run(tmp_path / "no-chromium", tmp_path / "no-nginx", tmp_path / "bin")
    assert done.returncode != 0


def test_the_readme_test_command_and_ci_install_the_test_dependencies() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick_start, re.DOTALL)
    # The two commands of the quick start, then the optional API calls.
    serve, test = commands[0], commands[1]
    assert "\n" not in serve
    assert "\n" not in test
    assert serve.endswith("gateway serve --demo")
    assert test.startswith("scripts/test-deps && ")
    assert test.endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^scripts/test-deps$", ci, re.MULTILINE)
    assert os.access(SCRIPT, os.X_OK)
