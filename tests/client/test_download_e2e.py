"""`gateway download` against a real `gateway serve`, end to end.

The gateway runs in a subprocess on a fresh GATEWAY_HOME, behind a throttling proxy that
is also its public URL, so every request (API and /d/) passes through it: a test can
slow transfers down to kill one halfway, and read the Range headers the server received.
Releases, accounts, grants and keys are made with the operator CLI, as an operator would.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from gateway.client import exit_codes
from gateway.client.download import STOP_GRACE_SECONDS
from tests.client.throttle_proxy import ThrottleProxy
from tests.served import SUITE_POLICY, clean_env

pytestmark = pytest.mark.slow

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
BIG = 48 << 20
FILES = {
    "model.safetensors": os.urandom(BIG),
    "shards/model-00002.safetensors": os.urandom(3 << 20),
    "modeling.py": b"print('hello')\n",
    "README.md": b"# Sample model\n",
    "config.json": b'{"layers": 2}\n',
    "data_manifest.json": b'{"sources": []}\n',
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Gateway:
    home: Path
    proxy: ThrottleProxy
    env: dict[str, str]
    key: str  # a trusted_partner grantee's download key

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"gateway {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout.strip()

    def grantee(self, email: str, *, tier: str | None, scope: str = "download") -> str:
        """An account, a grant at `tier` (none if None) and an API key; returns the key."""
        self.cli("accounts", "create", email)
        if tier:
            self.cli("grants", "create", "--account", email, "--model", "acme/llm", "--tier", tier)
        return self.cli("keys", "create", "--account", email, "--scope", scope)


def download_command() -> list[str]:
    return [sys.executable, "-m", "gateway", "download"]


def download(
    gw: Gateway, cwd: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*download_command(), *args],
        env={**gw.env, "GATEWAY_SERVER": gw.url, "GATEWAY_API_KEY": key or gw.key},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def start_download(gw: Gateway, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*download_command(), *args],
        env={**gw.env, "GATEWAY_SERVER": gw.url, "GATEWAY_API_KEY": gw.key},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running_gateway(
    root: Path,
    policy: Path | None = None,
    extra_env: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> Iterator[Gateway]:
    """A published, promoted acme/llm:1.0 (FILES unless `files`) served behind a proxy,
    and a partner's key. A database other than the home's SQLite is migrated first."""
    home = root / ".gateway"
    port = free_port()
    proxy = ThrottleProxy(port)
    env = clean_env(GATEWAY_HOME=str(home), GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{proxy.port}")
    if policy is not None:
        env["GATEWAY_POLICY_FILE"] = str(policy)
    env |= extra_env or {}
    gw = Gateway(home, proxy, env, key="")

    if "GATEWAY_DATABASE_URL" in env:
        gw.cli("db", "upgrade")
    source = root / "llm-src"
    for rel, data in (FILES if files is None else files).items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    (root / "LICENSE.txt").write_text("Sample license\n")
    gw.cli(
        "release", "publish", "acme/llm", "1.0", str(source), "--license", str(root / "LICENSE.txt")
    )
    gw.cli(
        "evidence",
        "attach",
        "acme/llm:1.0",
        "--kind",
        "evaluation",
        "--name",
        "internal-safety",
        "--result",
        "pass",
    )
    gw.cli("stage", "promote", "acme/llm:1.0", "--to", "trusted_partner")

    log = root / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        gw.key = gw.grantee("partner@example.org", tier="trusted_partner")
        yield gw
    finally:
        # The proxy first: connections a test left stalled would hold up the server's
        # graceful stop.
        proxy.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("download-e2e")) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def full_speed(gw: Gateway) -> None:
    gw.proxy.rate = None
    gw.proxy.reset()


def model_signing_verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(MODEL_SIGNING),
            "verify",
            "key",
            str(folder),
            "--signature",
            f"{folder}.sig",
            "--public_key",
            f"{folder}.pub.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def quota_used(gw: Gateway) -> dict[int, int]:
    """Units of download quota used so far, per artifact id, as the gateway counted them."""
    uri = f"file:{gw.home / 'gateway.sqlite3'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute("SELECT artifact_id, SUM(used) FROM quota_usage GROUP BY artifact_id")
        return {int(artifact): int(used) for artifact, used in rows}


def sent_requests(gw: Gateway) -> list[tuple[str, str, str]]:
    """(method, target, lower-cased headers) of every request the proxy passed on."""
    pattern = r"(GET|HEAD|POST) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n"
    return [
        (method, target, headers.lower())
        for method, target, headers in re.findall(pattern, gw.proxy.requests_text(), re.S)
    ]


def assert_release_in(folder: Path, paths: list[str] | None = None) -> None:
    expected = paths if paths is not None else sorted(FILES)
    found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert found == sorted(expected)
    for path in expected:
        assert hashlib.sha256((folder / path).read_bytes()).digest() == (
            hashlib.sha256(FILES[path]).digest()
        )


def test_a_full_download_verifies_with_the_standard_tool(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "llm-1.0"
    assert_release_in(folder)
    assert done.stdout.splitlines()[0] == (
        f"Downloaded acme/llm:1.0 to {folder}: 6 files, 51.0 MiB, verified (signature OK)"
    )
    # The key goes in the Authorization header of API calls, never in a URL, and never
    # to /d/ (whose token is the credential; it may redirect to object storage).
    requests = sent_requests(gw)
    assert all("rgk_" not in target for _, target, _ in requests)
    api = [h for _, target, h in requests if target.startswith("/api/")]
    files = [h for _, target, h in requests if target.startswith("/d/")]
    assert api
    assert all(f"authorization: bearer {gw.key.lower()}" in h for h in api)
    assert len(files) == len(FILES)
    assert not any("authorization" in h for h in files)

    verified = model_signing_verify(folder)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verification succeeded" in verified.stdout + verified.stderr
    assert f"model_signing verify key {folder} --signature {folder}.sig" in done.stdout

    # Done already: a second run fetches nothing and takes no time.
    gw.proxy.reset()
    started = time.monotonic()
    again = download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    assert again.returncode == 0, again.stderr
    assert not [t for _, t, _ in sent_requests(gw) if t.startswith("/d/")]
    assert time.monotonic() - started < 10


def test_without_a_version_the_newest_open_release_is_taken(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm", "--quiet", "--include", "README.md")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "llm-1.0" / "README.md").read_bytes() == FILES["README.md"]


def test_a_killed_download_resumes_where_it_stopped(gw: Gateway, tmp_path: Path) -> None:
    gw.proxy.rate = 8 << 20  # 8 MiB/s: the big file takes about six seconds
    units_before = quota_used(gw)
    part = tmp_path / "llm-1.0" / "model.safetensors.part"
    process = start_download(gw, tmp_path, "acme/llm:1.0", "--parallel", "2")
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= 8 << 20):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    kept = part.stat().st_size
    assert 0 < kept < BIG
    assert not (tmp_path / "llm-1.0" / "model.safetensors").exists()

    gw.proxy.rate = None
    gw.proxy.reset()
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_release_in(tmp_path / "llm-1.0")
    asked = [int(n) for n in re.findall(r"(?i)range: bytes=(\d+)-", gw.proxy.requests_text())]
    assert asked, "the second run did not resume with a Range request"
    assert max(asked) >= kept - (1 << 20)  # at most the last buffered MiB is asked again
    assert gw.proxy.bytes_to_clients < BIG  # the kept part was not fetched again
    # The second run carried on the first run's downloads: one quota unit per file in all.
    units = quota_used(gw)
    assert {a: units[a] - units_before.get(a, 0) for a in units} == dict.fromkeys(units, 1)
    assert model_signing_verify(tmp_path / "llm-1.0").returncode == 0


def test_components_filter_downloads_only_those(gw: Gateway, tmp_path: Path) -> None:
    done = download(
        gw,
        tmp_path,
        "acme/llm:1.0",
        "--quiet",
        "--components",
        "model_card,config",
        "--to",
        "cards",
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "cards"
    assert_release_in(folder, ["README.md", "config.json"])
    assert "2 files" in done.stdout
    assert "2 of 6 signed files" in done.stdout
    assert "GET /d/" in gw.proxy.requests_text()
    assert "model.safetensors" not in gw.proxy.requests_text()


def test_a_tampered_part_is_a_hash_mismatch_and_leaves_no_file(gw: Gateway, tmp_path: Path) -> None:
    folder = tmp_path / "llm-1.0"
    folder.mkdir()
    size = len(FILES["config.json"])
    (folder / "config.json.part").write_bytes(b"x" * (size - 3))
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", "config.json")
    assert done.returncode == exit_codes.HASH_MISMATCH, done.stdout + done.stderr
    assert "config.json does not match its SHA-256" in done.stderr
    assert not (folder / "config.json").exists()
    assert not (folder / "config.json.part").exists()

    again = download(gw, tmp_path, "acme/llm:1.0", "--quiet", "--include", "config.json")
    assert again.returncode == 0, again.stderr
    assert (folder / "config.json").read_bytes() == FILES["config.json"]


@pytest.mark.parametrize(
    ("email", "tier", "scope", "code"),
    [
        ("nogrant@example.org", None, "download", "no_grant"),
        ("scope@example.org", "trusted_partner", "apply", "key_scope_missing"),
        ("early@example.org", "researcher", "download", "tier_not_open"),
    ],
)
def test_a_refusal_has_its_own_exit_code_and_message(
    gw: Gateway, tmp_path: Path, email: str, tier: str | None, scope: str, code: str
) -> None:
    key = gw.grantee(email, tier=tier, scope=scope)
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", key=key)
    assert done.returncode == exit_codes.exit_code_for(code), done.stdout + done.stderr
    assert done.stderr.startswith("error: ")
    assert f"({code})" in done.stderr
    assert not (tmp_path / "llm-1.0").exists()


def test_an_unknown_key_is_key_invalid(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm:1.0", "--quiet", key="rgk_not_a_real_key")
    assert done.returncode == 10, done.stdout + done.stderr
    assert "(key_invalid)" in done.stderr


def test_an_unknown_release_is_not_found(gw: Gateway, tmp_path: Path) -> None:
    done = download(gw, tmp_path, "acme/llm:9.9", "--quiet")
    assert done.returncode == exit_codes.NOT_FOUND, done.stdout + done.stderr


def test_ctrl_c_stops_with_130_and_keeps_the_part(gw: Gateway, tmp_path: Path) -> None:
    # Slow enough on every connection that the download is still running when the test,
    # on a busy machine, gets round to pressing Ctrl-C.
    gw.proxy.rate = 512 << 10
    part = tmp_path / "llm-1.0" / "model.safetensors.part"
    process = start_download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 0):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == exit_codes.INTERRUPTED, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert part.stat().st_size > 0
    assert not (tmp_path / "llm-1.0" / "model.safetensors").exists()


def test_ctrl_c_ends_at_once_even_with_a_worker_stuck_in_a_stalled_read(
    gw: Gateway, tmp_path: Path
) -> None:
    gw.proxy.rate = 1000  # the first 64 KiB of every answer takes a minute: reads stall
    part = tmp_path / "llm-1.0" / "model.safetensors.part"
    process = start_download(gw, tmp_path, "acme/llm:1.0", "--quiet")
    deadline = time.monotonic() + 60
    while not part.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # the workers are inside their reads now
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    took = time.monotonic() - interrupted
    assert process.returncode == exit_codes.INTERRUPTED, err
    assert "interrupted" in err
    assert "Traceback" not in err
    # The grace for workers to notice, and no wait for the ones stuck in a read.
    assert took < STOP_GRACE_SECONDS + 5, took


def test_urls_that_expire_midway_are_refreshed_without_new_quota(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("short-urls")
    text = SUITE_POLICY.read_text()
    assert "url_ttl_seconds = 3600" in text
    policy = root / "policy.toml"
    policy.write_text(text.replace("url_ttl_seconds = 3600", "url_ttl_seconds = 1"))
    with running_gateway(root, policy) as short:
        # One file at a time, the big one first for eight seconds: the others' URLs are
        # past their second of life and the gateway's five seconds of leeway by then.
        short.proxy.rate = 6 << 20
        done = download(short, root, "acme/llm:1.0", "--quiet", "--parallel", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_release_in(root / "llm-1.0")
        sent = short.proxy.requests_text()
        manifests = [t for m, t, _ in sent_requests(short) if m == "POST"]
        assert len(manifests) >= 2, "no URL was refreshed"
        assert re.search(r'"continue":\s*\{"', sent), "a refresh did not continue its downloads"
        expired = re.findall(r"GET (/d/\S+) HTTP", sent)
        assert len(expired) > len(FILES)  # some URLs were refused as expired, then retried
        assert quota_used(short) == dict.fromkeys(quota_used(short), 1)
        assert len(quota_used(short)) == len(FILES)


def test_files_redirected_to_object_storage_download_and_resume(
    tmp_path_factory: pytest.TempPathFactory, s3_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = s3_bucket
    root = tmp_path_factory.mktemp("s3")
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    storage = {
        "GATEWAY_STORAGE_URL": f"s3://{bucket}/gateway",
        "GATEWAY_S3_ENDPOINT_URL": endpoint,
        "GATEWAY_S3_REGION": "us-east-1",
    }
    with running_gateway(root, extra_env=aws | storage) as s3gw:
        folder = root / "llm-1.0"
        folder.mkdir()
        kept = 5 << 20
        (folder / "model.safetensors.part").write_bytes(FILES["model.safetensors"][:kept])
        done = download(s3gw, root, "acme/llm:1.0", "--quiet")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_release_in(folder)
        assert model_signing_verify(folder).returncode == 0
        # /d/ answered with redirects (the bodies came from storage, not through the
        # gateway), and the Range of the resumed file went along to storage.
        assert s3gw.proxy.bytes_to_clients < 1 << 20
        ranges = [h for _, t, h in sent_requests(s3gw) if t.startswith("/d/") and "range:" in h]
        assert len(ranges) == 1
        assert f"range: bytes={kept}-" in ranges[0]
