"""Yanking (PEP 592) against a real `gateway serve`, with the operator CLI both remote
(`--server` and an admin key) and local, and `gateway download` as a grantee runs it: a
yanked release is passed over without a version and still fetched, with a warning, by
its exact version; un-yanked, it is the latest again."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.e2e.test_curl_downloads import gateway, published
from tests.served import clean_env, free_port, serving

REASON = "a tokenizer bug: answers in the wrong language"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    work = tmp_path_factory.mktemp("yank")
    port = free_port()
    env = clean_env(
        GATEWAY_HOME=str(work / "home"),
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        GATEWAY_SCHEDULER="off",
    )
    published(env, work, "1.0", size=200_000)
    published(env, work, "1.1", size=200_000)
    with serving(env, work / "serve.log", port=port) as base:
        yield base, env


def download(
    base: str, env: dict[str, str], key: str, ref: str, to: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "download", ref, "--to", str(to), "--quiet"],
        env={**env, "GATEWAY_SERVER": base, "GATEWAY_API_KEY": key},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_yanked_release_is_passed_over_and_still_fetched_by_its_version(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    gateway(env, "accounts", "create", "op@lab.example", "--operator")
    admin = gateway(env, "keys", "create", "--account", "op@lab.example", "--scope", "admin")
    gateway(env, "accounts", "create", "erin@example.org")
    gateway(
        env, "grants", "create", "--account", "erin@example.org", "--model", "acme/llm",
        "--tier", "trusted_partner",
    )  # fmt: skip
    key = gateway(env, "keys", "create", "--account", "erin@example.org", "--scope", "download")

    remote = {**env, "GATEWAY_ADMIN_KEY": admin}
    said = gateway(remote, "--server", base, "yank", "acme/llm:1.1", "--reason", REASON)
    assert f"Yanked acme/llm:1.1: {REASON}" in said
    # Every grantee of the model is told (the module's other test may have added one).
    assert re.search(r"^[12] grantee\(s\) notified\.$", said, re.M), said
    model = httpx2.get(f"{base}/api/v1/models/acme/llm").json()
    assert model["latest"] == "1.0"
    flags = {r["version"]: (r["yanked"], r["yanked_reason"]) for r in model["releases"]}
    assert flags == {"1.0": (False, None), "1.1": (True, REASON)}

    # Without a version the client takes 1.0; by its exact version 1.1, with a warning.
    newest = download(base, env, key, "acme/llm", tmp_path / "newest")
    assert newest.returncode == 0, newest.stderr
    assert (tmp_path / "newest" / "README.md").read_text() == "# model 1.0\n"
    assert "yanked" not in newest.stderr
    exact = download(base, env, key, "acme/llm:1.1", tmp_path / "exact")
    assert exact.returncode == 0, exact.stderr
    assert (tmp_path / "exact" / "README.md").read_text() == "# model 1.1\n"
    assert f"acme/llm:1.1 is yanked: {REASON}" in exact.stderr

    # Yanking again is refused and says why; the local CLI takes the yank back.
    again = subprocess.run(
        [sys.executable, "-m", "gateway", "--server", base, "yank", "acme/llm:1.1",
         "--reason", "twice"],
        env=remote, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.returncode != 0
    assert "already yanked" in again.stderr
    assert "1.1 is no longer yanked" in gateway(env, "unyank", "acme/llm:1.1")
    shown = json.loads(gateway(env, "models", "list", "--json"))
    assert [(m["model"], m["latest"]) for m in shown] == [("acme/llm", "1.1")]
    latest = download(base, env, key, "acme/llm", tmp_path / "latest")
    assert latest.returncode == 0, latest.stderr
    assert (tmp_path / "latest" / "README.md").read_text() == "# model 1.1\n"


def test_an_external_evaluator_sends_a_result_with_gateway_evaluate(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    gateway(env, "accounts", "create", "aisi@institute.example")
    gateway(
        env, "grants", "create", "--account", "aisi@institute.example", "--model", "acme/llm",
        "--tier", "trusted_partner",
    )  # fmt: skip
    key = gateway(
        env, "keys", "create", "--account", "aisi@institute.example", "--scope", "download"
    )
    report = tmp_path / "red-team.pdf"
    report.write_bytes(b"%PDF-1.7 findings\n")

    def evaluate(*args: str, api_key: str = key) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "evaluate", "acme/llm:1.0", *args],
            env={**env, "GATEWAY_SERVER": base, "GATEWAY_API_KEY": api_key},
            capture_output=True,
            text=True,
            check=False,
        )

    sent = evaluate("--name", "red-team", "--result", "pass", "--report", str(report))
    assert sent.returncode == 0, sent.stderr
    assert "Recorded evaluation/red-team = pass for acme/llm:1.0 with red-team.pdf" in sent.stdout
    assert "by an external evaluator" in gateway(env, "stage", "status", "acme/llm:1.0")

    bad = evaluate("--name", "Red Team", "--result", "pass")
    assert bad.returncode != 0
    assert "name" in bad.stderr
    gateway(env, "accounts", "create", "nobody@example.org")
    stranger = gateway(
        env, "keys", "create", "--account", "nobody@example.org", "--scope", "download"
    )
    refused = evaluate("--name", "red-team", "--result", "pass", api_key=stranger)
    assert refused.returncode != 0
    assert "not_an_evaluator" in refused.stderr
