"""The release page of the operator console: stage, gates, and the moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db.models import Release
from gateway.runtime import Runtime
from tests.http.portal import HTML, Http, submit
from tests.http.test_ops_pages import make_account, sign_in, sign_in_operator
from tests.sample import publish

pytestmark = pytest.mark.anyio
PAGE = "/ops/releases/acme/sample/1.0"


async def stage_of(rt: Runtime) -> tuple[str, str]:
    async with rt.sessionmaker() as session:
        release = await session.scalar(select(Release))
    assert release is not None
    return release.stage, release.status


async def test_gates_evidence_promotion_and_recall_from_the_console(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await sign_in_operator(client, runtime)
    listing = await client.get("/ops/releases", headers=HTML)
    assert f'href="{PAGE}"' in listing.text
    page = await client.get(PAGE, headers=HTML)
    assert "Gates to trusted partner" in page.text
    assert "evaluation/internal-safety = pass: missing" in page.text
    refused = await submit(client, PAGE, f"{PAGE}/promote", {})
    assert "Not promoted yet" in refused.text
    assert await stage_of(runtime) == ("draft", "active")
    attached = await submit(
        client,
        PAGE,
        f"{PAGE}/evidence",
        {"kind": "evaluation", "name": "internal-safety", "result": "pass"},
    )
    assert "Evidence attached" in attached.text
    promoted = await submit(client, PAGE, f"{PAGE}/promote", {})
    assert "Promoted to trusted_partner" in promoted.text
    assert await stage_of(runtime) == ("trusted_partner", "active")
    bad = await submit(client, PAGE, f"{PAGE}/recall", {"reason": ""})
    assert bad.status_code == 400
    assert "reason" in bad.text
    recalled = await submit(client, PAGE, f"{PAGE}/recall", {"reason": "leak", "tier": ""})
    assert "Recalled" in recalled.text
    assert await stage_of(runtime) == ("trusted_partner", "recalled")
    unknown = await submit(client, PAGE, f"{PAGE}/explode", {})
    assert unknown.status_code == 404


async def test_the_release_console_is_for_operators_only(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    assert (await client.get(PAGE, headers=HTML)).status_code == 302
    await make_account(runtime, "someone@example.org")
    await sign_in(client, "someone@example.org")
    assert (await client.get(PAGE, headers=HTML)).status_code == 403
