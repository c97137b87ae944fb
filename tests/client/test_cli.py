"""The `gateway download` command: options, environment, output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from gateway.client import exit_codes
from tests.client.fake_gateway import BASE, KEY, SAMPLE_FILES, FakeGateway

# The module, not the click command of the same name that gateway.cli exports.
command = import_module("gateway.cli.download")

FILES = SAMPLE_FILES


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway(tmp_path / "server", FILES)
    transport = fake.transport()
    monkeypatch.setattr(
        command, "_http_client", lambda parallel: httpx2.Client(transport=transport)
    )
    for name in ("GATEWAY_SERVER", "GATEWAY_PUBLIC_URL", "GATEWAY_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return fake


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(command.download, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_download_prints_one_summary_line_and_the_verify_command(
    fake: FakeGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    code, out, err = invoke(
        "acme/sample:1.0", "--to", str(folder), "--server", BASE, "--key", KEY, "--quiet"
    )
    assert code == 0, err
    summary, verify = out.splitlines()
    assert summary == (
        f"Downloaded acme/sample:1.0 to {folder}: 4 files, 4.0 MiB, verified (signature OK)"
    )
    assert verify == (
        f"Check it yourself with: model_signing verify key {folder} "
        f"--signature {folder}.sig --public_key {folder}.pub.pem"
    )
    assert err == ""


def test_the_default_folder_is_name_dash_version(
    fake: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke(
        "acme/sample:1.0", "--server", BASE, "--quiet", env={"GATEWAY_API_KEY": KEY}
    )
    assert code == 0, err
    assert (tmp_path / "sample-1.0" / "README.md").read_bytes() == FILES["README.md"]


@pytest.mark.parametrize(
    ("args", "env", "host"),
    [
        ([], {}, "127.0.0.1"),
        ([], {"GATEWAY_PUBLIC_URL": "http://public.test"}, "public.test"),
        (
            [],
            {"GATEWAY_PUBLIC_URL": "http://public.test", "GATEWAY_SERVER": "http://server.test"},
            "server.test",
        ),
        (["--server", "http://flag.test"], {"GATEWAY_SERVER": "http://server.test"}, "flag.test"),
    ],
)
def test_where_the_server_comes_from(
    fake: FakeGateway, tmp_path: Path, args: list[str], env: dict[str, str], host: str
) -> None:
    to = str(tmp_path / "out")
    code, _, err = invoke("acme/sample:1.0", "-q", "--key", KEY, "--to", to, *args, env=env)
    assert code == 0, err
    # The API calls go to the server chosen; file URLs are the ones the manifest gave.
    api_hosts = {r.url.host for r in fake.log if r.url.path.startswith("/api/")}
    assert api_hosts == {host}


def test_a_refusal_prints_the_message_and_exits_with_its_code(fake: FakeGateway) -> None:
    code, out, err = invoke("acme/sample:1.0", "--server", BASE, "--key", "rgk_wrong", "-q")
    assert code == 10
    assert out == ""
    assert err == "error: this API key is not valid (key_invalid)\n"


def test_a_missing_key_is_a_usage_error(fake: FakeGateway) -> None:
    code, _, err = invoke("acme/sample:1.0", "--server", BASE)
    assert code == 2
    assert "no API key: pass --key or set GATEWAY_API_KEY" in err
    assert not fake.log


@pytest.mark.parametrize("ref", ["acme", "acme/../x", "acme/llm:", "a/b:../c"])
def test_a_bad_name_is_a_usage_error(fake: FakeGateway, ref: str) -> None:
    code, _, err = invoke(ref, "--server", BASE, "--key", KEY)
    assert code == 2
    assert "ORG/NAME" in err
    assert not fake.log


def test_parallel_must_be_positive(fake: FakeGateway) -> None:
    code, _, _ = invoke("acme/sample:1.0", "--server", BASE, "--key", KEY, "--parallel", "0")
    assert code == 2


@pytest.mark.parametrize("parts", ["0", "17", "four", "-1"])
def test_parts_outside_one_to_sixteen_is_a_usage_error(fake: FakeGateway, parts: str) -> None:
    code, _, err = invoke("acme/sample:1.0", "--server", BASE, "--key", KEY, "--parts", parts)
    assert code == 2
    assert "--parts" in err
    assert "Traceback" not in err
    assert not fake.log


def test_parts_are_counted_into_the_connection_pool(
    fake: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    transport = fake.transport()

    def client(connections: int) -> httpx2.Client:
        asked.append(connections)
        return httpx2.Client(transport=transport)

    monkeypatch.setattr(command, "_http_client", client)
    args = ("--to", str(tmp_path / "d"), "--server", BASE, "--key", KEY, "--quiet")
    code, _, err = invoke("acme/sample:1.0", *args, "--parallel", "3", "--parts", "5")
    assert code == 0, err
    assert asked == [3 * 5 + 1]  # every file's every part, and one for API calls


# Runs the command as a library caller would (a notebook, a test run): with a thread of
# the caller's own still alive, a failed download must return to its caller.
_CALLER = """
import sys
import threading
from importlib import import_module
from pathlib import Path

import httpx2
from click.testing import CliRunner

from tests.client.fake_gateway import BASE, KEY, SAMPLE_FILES, FakeGateway

command = import_module("gateway.cli.download")
fake = FakeGateway(Path(sys.argv[1]), SAMPLE_FILES)
fake.behaviour.refuse_download = "grant_revoked"
transport = fake.transport()
command._http_client = lambda parallel: httpx2.Client(transport=transport)
busy = threading.Event()
threading.Thread(target=busy.wait).start()
args = ["acme/sample:1.0", "--to", sys.argv[1] + "/out", "--server", BASE, "--key", KEY, "-q"]
result = CliRunner().invoke(command.download, args)
print("returned", result.exit_code, flush=True)
busy.set()
"""


def test_a_failed_download_returns_to_its_caller_and_never_ends_the_process(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CALLER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    code = exit_codes.exit_code_for("grant_revoked")
    assert done.stdout.strip() == f"returned {code}", done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
