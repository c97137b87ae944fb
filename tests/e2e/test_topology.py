"""The production topology on one machine, as `infra/local/up` starts it: a fresh
PostgreSQL database, S3 on moto_server, three `gateway serve` replicas sharing one home,
and nginx balancing them round-robin; `infra/local/down` stops it all and drops the
database.

A release is published, applied for, approved, downloaded and recalled through nginx; a
portal session, a CSRF token and a one-time link made on one replica work on another,
and sign-in failures are counted across all three. A test that must reach a chosen
replica talks to its port directly, from a loopback address of its own (127.0.0.N), so
per-address limits of one test never touch another's. Through nginx each client keeps
its own address: nginx sends it in X-Forwarded-For, and the replicas trust that header
from nginx alone (GATEWAY_TRUSTED_PROXIES).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.conftest import POSTGRES_ADMIN_URL
from tests.sample import make_folder, make_license
from tests.served import SUITE_POLICY, clean_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
UP = ROOT / "infra" / "local" / "up"
DOWN = ROOT / "infra" / "local" / "down"
HTML = {"accept": "text/html"}
PASSWORD = "correct horse battery"
WRONG = "not the password at all"
# Sign-ins that did not succeed, per client address, before the next is refused.
SIGN_IN_LIMIT = 6
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Topology:
    url: str
    replicas: tuple[str, ...]
    state: Path
    cli_env: dict[str, str]

    def gateway(self, *args: str, **env: str) -> str:
        """Run a `gateway` command against the topology's database and storage."""
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env={**self.cli_env, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, f"gateway {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout.strip()

    def replica_logs(self) -> str:
        return "".join(p.read_text() for p in sorted((self.state / "logs").glob("replica-*.log")))


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (each held open until all are chosen)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
        return ports


def run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, check=False, timeout=180
    )


def database_exists(name: str) -> bool:
    found = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", POSTGRES_ADMIN_URL, "-v", f"name={name}"],
        input="SELECT count(*) FROM pg_database WHERE datname = :'name'\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip() == "1"


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    work = tmp_path_factory.mktemp("topology")
    state = work / "state"
    nginx_port, s3_port, *replica_ports = free_ports(5)
    database = f"gw_topology_{uuid.uuid4().hex[:10]}"
    pids: list[int] = []
    limits = work / "limits.toml"
    # The replicas read the suite's policy, as the CLI here does (clean_env).
    limits.write_text(
        f'policy_file = "{SUITE_POLICY}"\n'
        "[rate_limits]\n"
        f"sign_in_per_address = {{ limit = {SIGN_IN_LIMIT}, window_seconds = 900 }}\n"
    )
    env = clean_env(
        GATEWAY_LOCAL_STATE=str(state),
        GATEWAY_LOCAL_PORT=str(nginx_port),
        GATEWAY_LOCAL_S3_PORT=str(s3_port),
        GATEWAY_LOCAL_REPLICA_PORTS=",".join(map(str, replica_ports)),
        GATEWAY_LOCAL_DATABASE=database,
        GATEWAY_LOCAL_POSTGRES=POSTGRES_ADMIN_URL,
        GATEWAY_LOCAL_CONFIG=str(limits),
        GATEWAY_BIN=str(Path(sys.executable).with_name("gateway")),
    )
    try:
        started = run_script(UP, env)
        assert started.returncode == 0, started.stdout + started.stderr
        record = json.loads((state / "topology.json").read_text())
        pids = [int(p.read_text().split()[0]) for p in (state / "pids").glob("*.pid")]
        assert len(pids) == 5
        cli_env = clean_env(
            **dict(re.findall(r"^export (\w+)='([^']*)'$", (state / "env").read_text(), re.M))
        )
        yield Topology(record["url"], tuple(record["replicas"]), state, cli_env)
    finally:
        stopped = run_script(DOWN, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [pid for pid in pids if running(pid)]
    assert not database_exists(database)
    assert not (state / "topology.json").exists()


def token_of(page: httpx2.Response) -> str:
    found = _TOKEN.search(page.text)
    assert found, f"no CSRF field on {page.url}: {page.status_code}"
    return found.group(1)


def browser(address: str) -> httpx2.Client:
    """A browser on its own loopback address, with a cookie jar shared by every port."""
    return httpx2.Client(
        transport=httpx2.HTTPTransport(local_address=address),
        headers=HTML,
        follow_redirects=False,
        timeout=30,
    )


def post_form(
    client: httpx2.Client, page: str, action: str, fields: dict[str, str]
) -> httpx2.Response:
    """Load `page`, then post its form with `fields` and the page's token to `action`
    (which may be on another replica)."""
    token = token_of(client.get(page))
    return client.post(action, data={**fields, "_csrf_token": token})


def test_nginx_sends_consecutive_requests_to_different_replicas(topology: Topology) -> None:
    answers = [httpx2.get(f"{topology.url}/readyz", timeout=10) for _ in range(6)]
    assert all(a.status_code == 200 and a.json()["status"] == "ready" for a in answers)
    served_by = [a.headers["x-gateway-replica"] for a in answers]
    assert {f"http://{r}" for r in served_by} == set(topology.replicas)
    assert all(a != b for a, b in itertools.pairwise(served_by))
    # Only the first replica runs the scheduler; /readyz says so by checking it.
    with_scheduler = {a.headers["x-gateway-replica"] for a in answers if "scheduler" in a.json()}
    assert with_scheduler == {topology.replicas[0].removeprefix("http://")}


def test_every_replica_has_the_same_signing_keys(topology: Topology) -> None:
    pems = {httpx2.get(f"{r}/.well-known/release-signing-key.pem").text for r in topology.replicas}
    assert len(pems) == 1
    assert pems.pop().startswith("-----BEGIN PUBLIC KEY-----")
    key_sets = [httpx2.get(f"{r}/.well-known/jwks.json").json() for r in topology.replicas]
    assert key_sets[0]["keys"]
    assert all(keys == key_sets[0] for keys in key_sets)


def test_a_release_is_applied_for_downloaded_and_recalled_through_nginx(
    topology: Topology, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "llm")
    run = topology.gateway
    run(
        "release",
        "publish",
        "acme/llm",
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
    )
    run(
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
    run("stage", "promote", "acme/llm:1.0", "--to", "trusted_partner")
    run("accounts", "create", "pat@lab.example")
    key = run(
        "keys", "create", "--account", "pat@lab.example", "--scope", "apply", "--scope", "download"
    )
    auth = {"authorization": f"Bearer {key}"}

    with httpx2.Client(base_url=topology.url, headers=auth, timeout=30) as api:
        form = api.get("/api/v1/models/acme/llm/application-form/trusted_partner")
        assert form.status_code == 200, form.text
        applied = api.post(
            "/api/v1/applications",
            json={
                "model": "acme/llm",
                "tier": "trusted_partner",
                "license_sha256": form.json()["license_sha256"],
                "answers": {"organisation": "Lab", "intended_use": "evaluation"},
            },
        )
        assert applied.status_code == 201, applied.text
        application = applied.json()["id"]
        assert f"Application {application} is now approved." in run(
            "applications", "approve", application
        )

        manifest = api.post("/api/v1/models/acme/llm/releases/1.0/downloads")
        assert manifest.status_code == 200, manifest.text
        weights = {a["path"]: a for a in manifest.json()["artifacts"]}["model.safetensors"]
        url = weights["url"]
        assert url.startswith(f"{topology.url}/d/")
        expected = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert weights["sha256"] == expected
        # The URL one replica signed is honoured by every replica: S3 answers with a
        # redirect to a presigned URL of the object.
        path = url.removeprefix(topology.url)
        for replica in topology.replicas:
            redirect = httpx2.get(f"{replica}{path}", timeout=30)
            assert redirect.status_code == 302, redirect.text
        redirect = httpx2.get(url, timeout=30)
        assert redirect.status_code == 302, redirect.text
        body = httpx2.get(redirect.headers["location"], timeout=30)
        assert body.status_code == 200
        assert hashlib.sha256(body.content).hexdigest() == expected
        # The command-line client fetches the whole release through nginx (so from every
        # replica in turn) and checks every file and the release signature.
        target = tmp_path / "fetched"
        run(
            "download",
            "acme/llm:1.0",
            "--server",
            topology.url,
            "--to",
            str(target),
            "--quiet",
            GATEWAY_API_KEY=key,
        )
        assert (target / "model.safetensors").read_bytes() == (
            folder / "model.safetensors"
        ).read_bytes()
        assert (tmp_path / "fetched.sig").is_file()

        run("recall", "acme/llm:1.0", "--reason", "a leak is being looked into")
        recalled = time.monotonic()
        while True:
            refused = api.post("/api/v1/models/acme/llm/releases/1.0/downloads")
            if refused.status_code == 403 or time.monotonic() - recalled > 2:
                break
            time.sleep(0.05)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "release_recalled"
        # Every replica refuses, the manifest and the URL handed out before the recall.
        replicas = set()
        for _ in topology.replicas:
            again = api.post("/api/v1/models/acme/llm/releases/1.0/downloads")
            old_url = httpx2.get(url, timeout=30)
            assert (again.status_code, again.json()["error"]) == (403, "release_recalled")
            assert (old_url.status_code, old_url.json()["error"]) == (403, "release_recalled")
            replicas |= {again.headers["x-gateway-replica"], old_url.headers["x-gateway-replica"]}
        assert {f"http://{r}" for r in replicas} == set(topology.replicas)


def test_a_session_made_on_one_replica_goes_on_on_another(topology: Topology) -> None:
    first, second, third = topology.replicas
    email = "ada@uni.example"
    with browser("127.0.0.3") as ada:
        # The form's token comes from one replica and is accepted by another.
        signed_up = post_form(
            ada, f"{first}/sign-up", f"{second}/sign-up", {"email": email, "password": PASSWORD}
        )
        assert signed_up.status_code == 200, signed_up.text
        assert "Check your email" in signed_up.text
        # Without SMTP the replica that signed Ada up logged the mail: subject, then body.
        mail = rf"mail to {re.escape(email)} \(no SMTP configured\): .*\n.*"
        mailed = re.search(rf"{mail}/verify-email\?token=([\w-]+)", topology.replica_logs())
        assert mailed, "no confirmation link in the replicas' logs"
        token = mailed.group(1)
        # The one-time link one replica issued is redeemed on another, once.
        confirmed = post_form(
            ada, f"{third}/verify-email?token={token}", f"{third}/verify-email", {"token": token}
        )
        assert confirmed.status_code in (302, 303), confirmed.text
        account = ada.get(f"{first}/account")
        assert account.status_code == 200
        assert email in account.text

        signed_out = post_form(ada, f"{second}/account", f"{second}/sign-out", {})
        assert signed_out.status_code in (302, 303)
        assert ada.get(f"{third}/account").status_code == 302

        again = post_form(
            ada, f"{third}/verify-email?token={token}", f"{third}/verify-email", {"token": token}
        )
        assert "Email not confirmed" in again.text

        signed_in = post_form(
            ada, f"{first}/sign-in", f"{first}/sign-in", {"email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 302, signed_in.text
        page = ada.get(f"{second}/account")
        assert page.status_code == 200
        assert email in page.text


def test_sign_in_failures_are_counted_across_replicas(topology: Topology) -> None:
    with browser("127.0.0.7") as stranger:
        token = token_of(stranger.get(f"{topology.replicas[0]}/sign-in"))
        for n in range(SIGN_IN_LIMIT):
            replica = topology.replicas[n % len(topology.replicas)]
            answer = stranger.post(
                f"{replica}/sign-in",
                data={"email": f"u{n}@uni.example", "password": WRONG, "_csrf_token": token},
            )
            assert answer.status_code == 401, answer.text
        for replica in topology.replicas:
            refused = stranger.post(
                f"{replica}/sign-in",
                data={"email": "last@uni.example", "password": WRONG, "_csrf_token": token},
            )
            assert refused.status_code == 429, refused.text
            assert refused.headers["retry-after"].isdigit()


def test_through_nginx_each_client_is_counted_on_its_own_address(topology: Topology) -> None:
    with browser("127.0.0.8") as stranger:
        token = token_of(stranger.get(f"{topology.url}/sign-in"))
        for n in range(SIGN_IN_LIMIT + 1):
            stranger.post(
                f"{topology.url}/sign-in",
                data={"email": f"s{n}@uni.example", "password": WRONG, "_csrf_token": token},
            )
    with browser("127.0.0.9") as someone_else:
        token = token_of(someone_else.get(f"{topology.url}/sign-in"))
        answer = someone_else.post(
            f"{topology.url}/sign-in",
            data={"email": "other@uni.example", "password": WRONG, "_csrf_token": token},
        )
    assert answer.status_code == 401, answer.status_code


def test_metrics_are_served_by_each_replica_and_never_through_nginx(topology: Topology) -> None:
    assert httpx2.get(f"{topology.url}/metrics", timeout=10).status_code == 404
    for replica in topology.replicas:
        scraped = httpx2.get(f"{replica}/metrics", timeout=10)
        assert scraped.status_code == 200
        assert "gateway_http_requests_total" in scraped.text


def test_credits_are_exact_across_replicas_and_a_revocation_reaches_every_one(
    topology: Topology, tmp_path: Path
) -> None:
    # The suite's policy gives partners 40 API credits a month.
    run = topology.gateway
    folder = make_folder(tmp_path / "api")
    run(
        "release",
        "publish",
        "acme/api",
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
    )
    run(
        "evidence",
        "attach",
        "acme/api:1.0",
        "--kind",
        "evaluation",
        "--name",
        "internal-safety",
        "--result",
        "pass",
    )
    run("stage", "promote", "acme/api:1.0", "--to", "trusted_partner")
    run("accounts", "create", "sam@lab.example")
    run(
        "grants",
        "create",
        "--account",
        "sam@lab.example",
        "--model",
        "acme/api",
        "--tier",
        "trusted_partner",
    )
    key = run("keys", "create", "--account", "sam@lab.example", "--scope", "download")
    service = {"authorization": f"Bearer {run('services', 'create', 'topology-inference')}"}
    body = {"key": key, "model": "acme/api"}

    def verify(replica: str) -> httpx2.Response:
        return httpx2.post(f"{replica}/api/v1/keys/verify", json=body, headers=service, timeout=30)

    # 90 verifications at once, spread over the three replicas: exactly 40 get through.
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(verify, itertools.islice(itertools.cycle(topology.replicas), 90)))
    assert sorted(a.status_code for a in answers) == [200] * 40 + [429] * 50
    assert {a.json()["reason"] for a in answers if a.status_code == 429} == {"credits_exhausted"}

    # Revoked through nginx; within a second no replica verifies the key, and each says
    # it was revoked.
    revoked = httpx2.post(f"{topology.url}/api/v1/credentials/revoke", json={"keys": [key]})
    assert revoked.json() == {"received": 1, "revoked": 1}
    deadline = time.monotonic() + 1
    for replica in topology.replicas:
        while (answer := verify(replica)).json()["reason"] != "key_revoked":
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.02)
        assert answer.status_code == 403
        assert answer.json()["revoked_at"] is not None
