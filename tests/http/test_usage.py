"""Usage of a release from real downloads: the rollup of the evidence log counts each
download started, request and refusal once (a row sealed late included), and
`gateway usage` reports them by every dimension, as a table, CSV and JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from gateway.config import Settings
from gateway.db.models import Account
from gateway.db.uow import unit_of_work
from gateway.errors import InvalidInput, NotFound
from gateway.evidence_log import service as log
from gateway.grants.service import change_grant
from gateway.runtime import Runtime
from gateway.usage.cli import usage
from gateway.usage.service import roll_up, usage_report
from stages.grants import GrantMove
from tests.backends import on_each_database
from tests.grantees import Grantee, grantee, open_release
from tests.units import within, writing

pytestmark = [pytest.mark.anyio, on_each_database()]
Http = AsyncTestClient  # type: ignore[type-arg]
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"


async def sealed_and_rolled(rt: Runtime) -> tuple[int, int]:
    """(leaves in the log, leaves the rollup read)."""
    rt.key_encryptor.create_if_missing()
    async with unit_of_work(rt) as uow:
        size = (await log.seal(uow)).size
    async with unit_of_work(rt) as uow:
        return size, await roll_up(uow)


async def download_all(client: Http, who: Grantee) -> list[dict[str, Any]]:
    answer = await client.post(MANIFEST, headers=who.auth)
    assert answer.status_code == 200, answer.text
    artifacts: list[dict[str, Any]] = answer.json()["artifacts"]
    for artifact in artifacts:
        got = await client.get(artifact["url"].removeprefix("http://testserver"))
        assert got.status_code == 200
    return artifacts


async def report(
    rt: Runtime, by: str, subject: str = "acme/sample:1.0"
) -> dict[str, tuple[int, ...]]:
    async with unit_of_work(rt) as uow:
        found = await usage_report(uow, subject, by=by, start=None, end=None)
    return {
        row.key: (row.downloads, row.grantees, row.bytes, row.requests, row.refusals)
        for row in found.rows
    }


async def test_downloads_requests_and_refusals_are_counted_once_by_each_dimension(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@uni.example")
    bob = await grantee(runtime, "bob@lab.example")
    async with writing(runtime) as session:
        await session.execute(
            update(Account).where(Account.id == alice.account_id).values(affiliation="Uni")
        )
        await session.execute(
            update(Account).where(Account.id == bob.account_id).values(affiliation="Lab")
        )
    files = await download_all(client, alice)
    await download_all(client, bob)
    # A second request for a file already started is a request, not a download.
    again = await client.get(files[0]["url"].removeprefix("http://testserver"))
    assert again.status_code == 200
    # A suspended grant: the manifest is refused.
    stranger = await grantee(runtime, "eve@elsewhere.example")
    await within(
        runtime,
        lambda uow: change_grant(uow, stranger.grant_id, GrantMove.SUSPEND, reason="t", actor="op"),
    )
    refused = await client.post(MANIFEST, headers=stranger.auth)
    assert refused.status_code == 403

    leaves, read = await sealed_and_rolled(runtime)
    assert read == leaves
    count, size = len(files), sum(f["size"] for f in files)
    assert await report(runtime, "organisation") == {
        "": (0, 0, 0, 0, 1),
        "Lab": (count, 1, size, count, 0),
        "Uni": (count, 1, size, count + 1, 0),
    }
    assert await report(runtime, "tier") == {
        "": (0, 0, 0, 0, 1),
        "researcher": (2 * count, 2, 2 * size, 2 * count + 1, 0),
    }
    assert await report(runtime, "stage") == {
        "researcher": (2 * count, 2, 2 * size, 2 * count + 1, 1)
    }
    by_file = await report(runtime, "artifact")
    assert {path: cells[0] for path, cells in by_file.items() if path} == {
        f["path"]: 2 for f in files
    }
    [reason] = (await report(runtime, "reason")).items()
    assert reason[1] == (0, 0, 0, 0, 1)
    days = await report(runtime, "day")
    assert len(days) == 1
    assert next(iter(days.values())) == (2 * count, 2, 2 * size, 2 * count + 1, 1)

    # Rolled up again, nothing more is counted; every release of the model, the same.
    async with unit_of_work(runtime) as uow:
        assert await roll_up(uow) == 0
    assert await report(runtime, "stage", "acme/sample") == {
        "researcher": (2 * count, 2, 2 * size, 2 * count + 1, 1)
    }


async def test_bad_subjects_and_ranges_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    from datetime import date

    async with unit_of_work(runtime) as uow:
        with pytest.raises(NotFound, match=r"no release acme/sample:9\.9"):
            await usage_report(uow, "acme/sample:9.9", by="day", start=None, end=None)
        with pytest.raises(NotFound, match="no release acme/other"):
            await usage_report(uow, "acme/other", by="day", start=None, end=None)
        with pytest.raises(InvalidInput, match="--by must be one of"):
            await usage_report(uow, "acme/sample", by="colour", start=None, end=None)
        with pytest.raises(
            InvalidInput, match=r"the range ends \(2026-01-01\) before it starts \(2026-02-01\)"
        ):
            await usage_report(
                uow, "acme/sample", by="day", start=date(2026, 2, 1), end=date(2026, 1, 1)
            )
        with pytest.raises(InvalidInput):
            await usage_report(uow, "not a ref", by="day", start=None, end=None)


async def test_the_command_prints_a_table_csv_and_json(
    client: Http, runtime: Runtime, settings_env: Settings, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@uni.example")
    files = await download_all(client, alice)
    await sealed_and_rolled(runtime)

    def invoke(*args: str) -> Result:
        # In a thread of its own: the command runs its own event loop, as it would.
        return CliRunner().invoke(usage, list(args), catch_exceptions=False)

    async def command(*args: str) -> Result:
        return await asyncio.to_thread(invoke, *args)

    as_json = await command("acme/sample:1.0", "--by", "artifact", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert (body["subject"], body["by"], body["from"], body["to"]) == (
        "acme/sample:1.0",
        "artifact",
        None,
        None,
    )
    assert sorted(row["key"] for row in body["rows"]) == sorted(f["path"] for f in files)
    assert all(row["downloads"] == 1 for row in body["rows"])
    as_csv = await command("acme/sample:1.0", "--by", "tier", "--format", "csv")
    assert as_csv.stdout.splitlines() == [
        "tier,downloads,grantees,bytes,requests,refusals,api_requests,api_flagged",
        f"researcher,{len(files)},1,{sum(f['size'] for f in files)},{len(files)},0,0,0",
    ]
    table = await command("acme/sample:1.0", "--by", "tier")
    assert "researcher" in table.stdout
    assert "total" in table.stdout
    future = await command("acme/sample:1.0", "--from", "2999-01-01")
    assert future.stdout == "No use of acme/sample:1.0 recorded in that range.\n"
    bad = await command("acme/sample:1.0", "--from", "yesterday")
    assert bad.exit_code == 2
    assert "'yesterday' is not a date such as 2026-10-01" in bad.output


async def test_the_console_page_draws_the_days_and_escapes_what_it_shows(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    from tests.http.test_ops_pages import sign_in_operator

    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@uni.example")
    files = await download_all(client, alice)
    await sealed_and_rolled(runtime)
    await sign_in_operator(client, runtime)
    today = runtime.clock().date()
    page = await client.get("/ops/releases/acme/sample/1.0/usage")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count('<svg class="chart"') == 4
    assert f"<title>{today.isoformat()}: {len(files)}</title>" in html
    # One row a day of the default 30, today's with the downloads.
    assert html.count("<tr><td>20") == 30
    assert f"<tr><td>{today.isoformat()}</td><td>{len(files)}</td><td>1</td>" in html
    assert "http://" not in html.split("<svg", 1)[1].replace("http://www.w3.org/2000/svg", "")

    html_only = {"accept": "text/html"}
    bad = await client.get("/ops/releases/acme/sample/1.0/usage?from=soon", headers=html_only)
    assert bad.status_code == 400
    assert "from: &#39;soon&#39; is not a date such as 2026-10-01" in bad.text
    wide = await client.get(
        "/ops/releases/acme/sample/1.0/usage?from=2020-01-01&to=2026-01-01", headers=html_only
    )
    assert wide.status_code == 400
    assert "a range of at most 366 days" in wide.text
    missing = await client.get("/ops/releases/acme/sample/9.9/usage", headers=html_only)
    assert missing.status_code == 404
    assert "no release acme/sample:9.9" in missing.text
