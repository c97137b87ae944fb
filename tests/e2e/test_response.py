"""Responding on a running gateway: a URL handed out before a recall, a suspension or a
rollback that excludes its tier is refused at its next request; and two gateway
processes on one PostgreSQL database run each due job exactly once.

The tests share one server but not their releases: each works on a release of its own,
so they pass in any order."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import httpx2
import pytest

from tests.conftest import PostgresServer
from tests.sample import make_folder, make_license
from tests.served import clean_env, free_port, serving


def gateway(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> str:
    return postgres.create(f"gw_e2e_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, database: str) -> dict[str, str]:
    home = tmp_path_factory.mktemp("response") / "home"
    values = clean_env(
        GATEWAY_HOME=str(home), GATEWAY_DATABASE_URL=database, GATEWAY_SCHEDULER="off"
    )
    gateway(values, "db", "upgrade")
    return values


@pytest.fixture(scope="module")
def served(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("release")
    port = free_port()
    env["GATEWAY_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    folder = make_folder(work / "model")
    for model in MODELS:
        gateway(
            env,
            "release",
            "publish",
            model,
            "1.0",
            str(folder),
            "--license",
            str(make_license(work)),
        )
        for tier in ("trusted_partner", "researcher"):
            gateway(
                env, "stage", "promote", f"{model}:1.0", "--to", tier, "--override", "--reason", "t"
            )
    with serving(env, work / "serve.log", port=port) as base:
        yield base


# One release per test that changes one: a rollback and recall, a lifted recall, a
# suspension.
MODELS = ("acme/llm", "acme/lifted", "acme/kept")


def url_for(env: dict[str, str], base: str, email: str, tier: str, model: str = "acme/llm") -> str:
    gateway(env, "accounts", "create", email)
    gateway(env, "grants", "create", "--account", email, "--model", model, "--tier", tier)
    key = gateway(env, "keys", "create", "--account", email, "--scope", "download")
    manifest = httpx2.post(
        f"{base}/api/v1/models/{model}/releases/1.0/downloads",
        headers={"authorization": f"Bearer {key}"},
        json={"paths": ["README.md"]},
    ).json()
    url: str = manifest["artifacts"][0]["url"]
    assert httpx2.get(url).status_code == 200
    return url


def refusal(url: str) -> tuple[int, str]:
    response = httpx2.get(url)
    return response.status_code, response.json()["error"]


def test_rollback_then_recall_stop_urls_already_handed_out(
    served: str, env: dict[str, str]
) -> None:
    researcher = url_for(env, served, "r@uni.edu", "researcher")
    partner = url_for(env, served, "p@lab.example", "trusted_partner")
    gateway(
        env, "stage", "rollback", "acme/llm:1.0", "--to", "trusted_partner", "--reason", "a leak"
    )
    assert refusal(researcher) == (403, "tier_not_open")
    assert httpx2.get(partner).status_code == 200
    gateway(env, "recall", "acme/llm:1.0", "--reason", "critical incident")
    assert refusal(partner) == (403, "release_recalled")
    status = json.loads(httpx2.get(f"{served}/api/v1/models/acme/llm/releases/1.0").text)
    assert status["status"] == "recalled"


def test_two_processes_run_each_due_job_exactly_once(env: dict[str, str], database: str) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "jobs", "run-due"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in runs]
    assert all(process.returncode == 0 for process in runs), outputs

    async def counts() -> dict[str, int]:
        connection = await asyncpg.connect(
            database.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            rows = await connection.fetch("SELECT name, runs FROM job_runs")
        finally:
            await connection.close()
        return {row["name"]: row["runs"] for row in rows}

    from gateway.jobs.registry import JOBS

    assert asyncio.run(counts()) == {job.name: 1 for job in JOBS}


def test_a_recall_is_lifted_once_two_operators_approve(served: str, env: dict[str, str]) -> None:
    url = url_for(env, served, "l@lab.example", "trusted_partner", model="acme/lifted")
    gateway(env, "recall", "acme/lifted:1.0", "--reason", "a suspected leak")
    assert refusal(url) == (403, "release_recalled")
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "reinstate",
            "acme/lifted:1.0",
            "--as",
            operator(env, "ops1@lab.example"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 4  # one approval of the two the policy asks for
    assert "approval recorded (1 of 2)" in first.stdout
    assert refusal(url) == (403, "release_recalled")
    lifted = gateway(env, "reinstate", "acme/lifted:1.0", "--as", operator(env, "ops2@lab.example"))
    assert "recall lifted" in lifted
    assert httpx2.get(url).status_code == 200


def test_a_suspension_stops_urls_already_handed_out(served: str, env: dict[str, str]) -> None:
    url = url_for(env, served, "s@lab.example", "trusted_partner", model="acme/kept")
    gateway(env, "enforce", "s@lab.example", "suspend", "--reason", "shared the weights")
    assert refusal(url) == (403, "account_suspended")


def operator(env: dict[str, str], email: str) -> str:
    gateway(env, "accounts", "create", email, "--operator")
    return email
