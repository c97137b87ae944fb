"""The whole walk in a real browser, against a real `gateway serve`.

A release is published and opened to researchers with the CLI; the first operator is
made through the one-time setup link that `gateway serve` prints. Then, in Chromium
driven by Playwright: an applicant at a domain the researcher tier does not approve on
its own signs up, confirms the email with the link from the server's log, and applies;
the operator denies with a reason; the applicant reads it and applies again (the test's
policy has no cooldown for researchers); the operator approves; the applicant creates an
API key and fetches a file from the download page, whose SHA-256 is checked.

Every page visited is saved as a PNG in pytest's tmp_path and, when GATEWAY_SCREENSHOTS
names a folder, there too (the README's pictures come from such a run).

The browser is Debian's /usr/bin/chromium (or GATEWAY_CHROMIUM); Playwright's own browser
downloads are never used (see conftest.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright import sync_api as playwright_api

from tests.sample import make_folder, make_license
from tests.served import SUITE_POLICY, serving

pytestmark = pytest.mark.slow

MODEL = "acme/llm"
OPERATOR = "ops@lab.example"
# Not under any of researcher's allowed_domains, so the application goes to review.
APPLICANT = "rita@independent-lab.example"
PASSWORD = "correct horse battery staple"
DENIAL = "Please name the research group you work in and what you will measure."
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class Served:
    base: str
    log: Path
    release: Path  # the published folder, to check downloads against

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_link(self, path: str, email: str, seen: int, timeout: float = 15) -> str:
        """The newest `path` link mailed to `email` after `seen` characters of the log."""
        pattern = re.compile(
            rf"mail to {re.escape(email)} \(no SMTP configured\):.*?\n.*?"
            rf"(https?://\S+{re.escape(path)}\?token=[\w-]+)"
        )
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.findall(self.log_text()[seen:])
            if found:
                return str(found[-1])
            assert time.monotonic() < deadline, f"no {path} link for {email} in the log"
            time.sleep(0.1)


def gateway(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"gateway {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def policy_without_researcher_cooldown(target: Path) -> Path:
    """The suite's policy, except that a denied researcher may apply again at once."""
    shipped = SUITE_POLICY.read_text()
    researcher = shipped.index("[tiers.researcher.application]")
    head, tail = shipped[:researcher], shipped[researcher:]
    assert "cooldown_days = 30" in tail.split("[[", 1)[0]
    target.write_text(head + tail.replace("cooldown_days = 30", "cooldown_days = 0", 1))
    return target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("walk")
    home = root / ".gateway"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env["GATEWAY_HOME"] = str(home)
    env["GATEWAY_POLICY_FILE"] = str(policy_without_researcher_cooldown(home / "policy.toml"))
    folder = make_folder(root / "llm-1.0")
    gateway(
        env, "release", "publish", MODEL, "1.0", str(folder), "--license", str(make_license(root))
    )
    for tier in ("trusted_partner", "researcher"):
        gateway(
            env,
            "stage",
            "promote",
            f"{MODEL}:1.0",
            "--to",
            tier,
            "--override",
            "--reason",
            "browser walk: no time in stage to wait for",
        )

    log = root / "serve.log"
    with serving(env, log) as base:
        yield Served(base, log, folder)


class Camera:
    """Saves a full-page PNG of each page the walk visits, in every folder given."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    def shot(self, page: Any, name: str) -> None:
        assert name not in self.taken, f"two screenshots named {name}"
        self.taken.append(name)
        page.wait_for_load_state("networkidle")
        for folder in self.folders:
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
def camera(tmp_path: Path) -> Camera:
    folders = [tmp_path / "screenshots"]
    if os.environ.get("GATEWAY_SCREENSHOTS"):
        folders.append(Path(os.environ["GATEWAY_SCREENSHOTS"]))
    return Camera(folders)


def visit(page: Any, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.status < 400, f"{path}: {response.status}\n{page.content()[:2000]}"


def fill_researcher_form(page: Any, purpose: str) -> None:
    page.get_by_label("Affiliation", exact=True).fill("Independent Lab for AI Evaluation")
    page.get_by_label("Country", exact=True).select_option("FR")
    page.get_by_label("Research purpose").fill(purpose)
    page.get_by_label("I will not share the weights outside my research group").check()
    page.get_by_label("I have read and accept the license").check()


def application_id(page: Any) -> str:
    match = re.search(r"/applications/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def test_apply_review_deny_reapply_approve_and_download(
    served: Served, browser: Any, camera: Camera
) -> None:
    expect = playwright_api.expect
    size = {"width": 1280, "height": 900}
    ops = browser.new_context(base_url=served.base, viewport=size).new_page()
    applicant = browser.new_context(base_url=served.base, viewport=size).new_page()

    # The first operator, through the one-time link `gateway serve` printed.
    setup = re.search(
        r"Open this one-time link to create the first one:\s+(\S+)", served.log_text()
    )
    assert setup, served.log_text()
    visit(ops, setup.group(1))
    camera.shot(ops, "setup-first-operator")
    ops.get_by_label("Email").fill(OPERATOR)
    ops.get_by_label("Your name").fill("Olga Operator")
    ops.get_by_label("Password").fill(PASSWORD)
    ops.get_by_role("button", name="Create operator").click()
    ops.wait_for_url("**/ops")
    expect(ops.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(ops.get_by_text("0 applications awaiting review")).to_be_visible()
    camera.shot(ops, "ops-queue-empty")

    # The applicant signs up and confirms the address with the link from the log.
    visit(applicant, "/")
    camera.shot(applicant, "catalog")
    visit(applicant, "/sign-up")
    camera.shot(applicant, "sign-up")
    seen = len(served.log_text())
    applicant.get_by_label("Email").fill(APPLICANT)
    applicant.get_by_label("Your name").fill("Rita Researcher")
    applicant.get_by_label("Affiliation").fill("Independent Lab")
    applicant.get_by_label("Password").fill(PASSWORD)
    applicant.get_by_role("button", name="Create account").click()
    # The same answer whether or not the address had an account: the link is mailed.
    expect(applicant.get_by_role("heading", name="Check your email")).to_be_visible()
    camera.shot(applicant, "account-new")
    visit(applicant, served.wait_for_link("/verify-email", APPLICANT, seen))
    expect(applicant.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    applicant.get_by_role("button", name="Confirm and sign in").click()
    applicant.wait_for_url("**/account?confirmed=1")
    expect(applicant.locator("main")).to_contain_text(APPLICANT)
    expect(applicant.locator("main")).not_to_contain_text("not confirmed")
    camera.shot(applicant, "email-confirmed")

    # She applies for the researcher tier; her domain is not an allowed one.
    visit(applicant, f"/models/{MODEL}")
    # The model card (the release's README.md) is on the model page, rendered.
    expect(applicant.locator("article.model-card h3")).to_have_text("Sample model")
    camera.shot(applicant, "model")
    applicant.get_by_role("link", name="Request access").click()
    applicant.wait_for_url(f"**/models/{MODEL}/apply")
    camera.shot(applicant, "apply-choose-tier")
    applicant.locator(f'a[href="/models/{MODEL}/apply?tier=researcher"]').click()
    applicant.wait_for_url(re.compile(r"tier=researcher"))
    fill_researcher_form(applicant, "How often small models repeat memorised text.")
    camera.shot(applicant, "apply")
    applicant.get_by_role("button", name="Send the application").click()
    applicant.wait_for_url(re.compile(r"/applications/[0-9a-f-]{36}\?done=applied"))
    first = application_id(applicant)
    # Not approved on the spot: it waits for an operator.
    expect(applicant.locator("main")).to_contain_text(re.compile(r"waiting for review", re.I))
    expect(applicant.locator("main")).not_to_contain_text(re.compile(r"\bapproved\b"))
    camera.shot(applicant, "application-status")

    # The operator finds it in the queue and denies it, with a reason.
    visit(ops, "/ops")
    row = ops.locator("table.queue tbody tr", has_text=APPLICANT)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("researcher")
    expect(row).to_contain_text("submitted")
    camera.shot(ops, "ops-queue")
    row.get_by_role("link", name=APPLICANT).click()
    ops.wait_for_url(f"**/ops/applications/{first}")
    expect(ops.get_by_text("Independent Lab for AI Evaluation")).to_be_visible()
    camera.shot(ops, "ops-application")
    deny = ops.get_by_role("form", name="Deny")
    deny.get_by_role("textbox").fill(DENIAL)
    deny.get_by_role("button", name="Deny").click()
    ops.wait_for_url(f"**/ops/applications/{first}?moved=deny")
    expect(ops.get_by_text("Done: the application is now denied.")).to_be_visible()
    camera.shot(ops, "ops-application-denied")

    # The applicant reads the reason, and applies again at once (no cooldown here).
    visit(applicant, f"/applications/{first}")
    expect(applicant.get_by_text(DENIAL).first).to_be_visible()
    camera.shot(applicant, "application-denied")
    visit(applicant, "/applications")
    camera.shot(applicant, "applications")
    visit(applicant, f"/models/{MODEL}/apply?tier=researcher")
    fill_researcher_form(
        applicant,
        "In the Evaluation group of the Independent Lab: how often small models repeat "
        "memorised text, measured by exact-match extraction rates.",
    )
    camera.shot(applicant, "apply-again")
    applicant.get_by_role("button", name="Send the application").click()
    applicant.wait_for_url(re.compile(r"/applications/[0-9a-f-]{36}\?done=applied"))
    second = application_id(applicant)
    assert second != first
    camera.shot(applicant, "application-status-again")

    # The operator approves the new one.
    visit(ops, "/ops")
    expect(ops.locator("table.queue tbody tr", has_text=APPLICANT)).to_have_count(1)
    camera.shot(ops, "ops-queue-again")
    ops.locator(f'a[href="/ops/applications/{second}"]').click()
    ops.wait_for_url(f"**/ops/applications/{second}")
    expect(ops.get_by_text(f"{MODEL}", exact=False).first).to_be_visible()
    expect(ops.locator("table", has_text="denied")).to_contain_text(DENIAL)
    camera.shot(ops, "ops-application-history")
    approve = ops.get_by_role("form", name="Approve")
    approve.get_by_role("textbox").fill("Welcome aboard.")
    approve.get_by_role("button", name="Approve").click()
    ops.wait_for_url(f"**/ops/applications/{second}?moved=approve")
    expect(ops.get_by_text("Done: the application is now approved.")).to_be_visible()
    camera.shot(ops, "ops-application-approved")
    visit(ops, "/ops")
    expect(ops.get_by_text("0 applications awaiting review")).to_be_visible()
    camera.shot(ops, "ops-queue-done")

    # The applicant is approved, makes an API key and downloads.
    visit(applicant, f"/applications/{second}")
    expect(applicant.get_by_text("approved").first).to_be_visible()
    camera.shot(applicant, "application-approved")
    visit(applicant, "/keys")
    camera.shot(applicant, "keys")
    applicant.get_by_label("Name").fill("lab server")
    applicant.get_by_label(re.compile(r"^download")).check()
    applicant.get_by_role("button", name="Create the key").click()
    secret_box = applicant.locator("pre.secret code")
    expect(secret_box).to_have_text(re.compile(r"rgk_[0-9A-Za-z]{28}"))
    secret = secret_box.inner_text().strip()
    camera.shot(applicant, "key-created")

    visit(applicant, f"/models/{MODEL}/releases/1.0/download")
    camera.shot(applicant, "download")
    link = applicant.get_by_role("link", name=WEIGHTS, exact=True)
    href = link.get_attribute("href")
    assert href, "no download link"
    expected = hashlib.sha256((served.release / WEIGHTS).read_bytes()).hexdigest()
    shown = applicant.locator("tr", has=link).locator("code.hash").inner_text()
    assert shown == expected
    url = href if href.startswith("http") else f"{served.base}{href}"
    fetched = httpx2.get(url, follow_redirects=True, timeout=30)
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == expected

    # The key works for programs: the manifest lists the same file.
    manifest = httpx2.post(
        f"{served.base}/api/v1/models/{MODEL}/releases/1.0/downloads",
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert manifest.status_code == 200, manifest.text
    listed = {a["path"]: a["sha256"] for a in manifest.json()["artifacts"]}
    assert listed[WEIGHTS] == expected
