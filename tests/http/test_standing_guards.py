"""A suspended or terminated account creates, lists and uses no API key, applies for
nothing and renews nothing, through the portal, the JSON API or the CLI alike; its
standing page and its appeal stay open to it."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gateway.cli import main
from gateway.config import Settings
from gateway.db.models import Account, ApiKey, Application, Grant
from gateway.enforcement import service as enforcement
from gateway.identity.passwords import hash_password
from gateway.runtime import Runtime, build_runtime, utcnow
from stages.enforcement import EnforcementStep
from tests.grantees import Grantee, grantee, open_release
from tests.http.portal import HTML, Http, submit
from tests.units import within, writing

PASSWORD = "correct horse battery"
STOPS = [EnforcementStep.SUSPEND, EnforcementStep.TERMINATE]
CODE = {
    EnforcementStep.SUSPEND: "account_suspended",
    EnforcementStep.TERMINATE: "account_terminated",
}
WORDS = {EnforcementStep.SUSPEND: "is suspended", EnforcementStep.TERMINATE: "was terminated"}
APPLY = "/models/acme/sample/apply?tier=public"
_SHA = re.compile(r'name="license_sha256" value="([0-9a-f]{64})"')
_APPEAL = re.compile(r'action="(/account/standing/[0-9a-f-]{36}/appeal)"')


async def stopped_grantee(rt: Runtime, tmp_path: Path, step: EnforcementStep) -> Grantee:
    await open_release(rt, tmp_path, to="public")
    who = await grantee(rt, scopes=("download", "keys", "apply"))
    async with writing(rt) as session:
        account = await session.get_one(Account, who.account_id)
        account.password_hash = hash_password(PASSWORD)
    await within(
        rt,
        lambda uow: enforcement.enforce(
            uow,
            email=who.email,
            step=step,
            reason="shared a link",
            days=None,
            incident_id=None,
            actor="op",
        ),
    )
    return who


async def keys_of(rt: Runtime, account_id: str) -> int:
    async with rt.sessionmaker() as session:
        return (
            await session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.account_id == account_id)
            )
            or 0
        )


async def applications(rt: Runtime) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(Application)) or 0


@pytest.mark.anyio
@pytest.mark.parametrize("step", STOPS)
async def test_the_json_api_takes_no_key_of_a_stopped_account(
    client: Http, runtime: Runtime, tmp_path: Path, step: EnforcementStep
) -> None:
    who = await stopped_grantee(runtime, tmp_path, step)
    code = CODE[step]
    listed = await client.get("/api/v1/keys/", headers=who.auth)
    created = await client.post("/api/v1/keys/", headers=who.auth, json={"scopes": ["download"]})
    manifest = await client.post(
        "/api/v1/models/acme/sample/releases/1.0/downloads", headers=who.auth
    )
    applied = await client.post(
        "/api/v1/applications",
        headers=who.auth,
        json={"model": "acme/sample", "tier": "public", "license_sha256": "0" * 64, "answers": {}},
    )
    mine = await client.get("/api/v1/applications", headers=who.auth)
    for answer in (listed, created, manifest, applied, mine):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == code
        assert "/account/standing" in answer.json()["hint"]
    assert await keys_of(runtime, who.account_id) == 1
    assert await applications(runtime) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("step", STOPS)
async def test_the_portal_lets_a_stopped_account_read_its_standing_and_appeal_only(
    client: Http, runtime: Runtime, tmp_path: Path, step: EnforcementStep
) -> None:
    who = await stopped_grantee(runtime, tmp_path, step)
    signed = await submit(
        client, "/sign-in", "/sign-in", {"email": who.email, "password": PASSWORD}
    )
    assert signed.status_code == 302
    keys_page = await client.get("/keys", headers=HTML)
    assert keys_page.status_code == 409
    assert "may not list or use API keys" in keys_page.text
    assert "rgk_" not in keys_page.text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', keys_page.text)
    assert token
    made = await client.post(
        "/keys",
        data={"name": "x", "scopes": "download", "_csrf_token": token.group(1)},
        headers=HTML,
    )
    assert made.status_code == 409
    assert await keys_of(runtime, who.account_id) == 1

    form = await client.get(APPLY, headers=HTML)
    sha = _SHA.search(form.text)
    assert sha
    applied = await submit(
        client,
        APPLY,
        APPLY,
        {
            "tier": "public",
            "license_sha256": sha.group(1),
            "accept_license": "on",
            "answer.intended_use": "research",
            "answer.agree_acceptable_use": "on",
        },
    )
    assert applied.status_code == 409
    assert "may not apply" in applied.text

    # Renewal, inside its window.
    async with runtime.sessionmaker() as session:
        grant = await session.get_one(Grant, who.grant_id)
    client.app.state.runtime.clock = lambda: grant.expires_at - timedelta(days=1)
    renew = f"/grants/{who.grant_id}/renew"
    renewed = await submit(
        client,
        renew,
        renew,
        {"usage_report": "Evaluated it.", "accept_license": "on", "license_sha256": sha.group(1)},
    )
    assert renewed.status_code == 409, renewed.text
    assert "may not apply" in renewed.text
    assert await applications(runtime) == 0

    client.app.state.runtime.clock = utcnow  # back inside the appeal window
    standing = await client.get("/account/standing", headers=HTML)
    assert standing.status_code == 200
    [appeal] = _APPEAL.findall(standing.text)
    sent = await submit(client, "/account/standing", appeal, {"statement": "It was a mirror."})
    assert sent.status_code == 302, sent.text


@pytest.mark.parametrize("step", STOPS)
def test_the_cli_creates_and_lists_no_key_for_a_stopped_account(
    settings_env: Settings, tmp_path: Path, step: EnforcementStep
) -> None:
    async def prepare() -> tuple[Grantee, str]:
        rt = build_runtime(settings_env)
        try:
            who = await stopped_grantee(rt, tmp_path, step)
            async with rt.sessionmaker() as session:
                key_id = await session.scalar(
                    select(ApiKey.id).where(ApiKey.account_id == who.account_id)
                )
            assert key_id is not None
            return who, key_id
        finally:
            await rt.close()

    who, key_id = asyncio.run(prepare())
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--account", who.email, "--scope", "download"])
    listed = runner.invoke(main, ["keys", "list", "--account", who.email])
    for result in (created, listed):
        assert result.exit_code != 0, result.output
        assert WORDS[step] in result.output
        assert "rgk_" not in result.output
    # Revoking one stays possible: it only takes power away.
    revoked = runner.invoke(main, ["keys", "revoke", "--account", who.email, key_id])
    assert revoked.exit_code == 0, revoked.output
