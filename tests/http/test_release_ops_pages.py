"""The release page of the operator console: stage, gates, and the moves."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import EvidenceAttachment, Release
from gateway.runtime import Runtime
from gateway.staging.evidence_files import EVIDENCE_FILE_MAX_BYTES
from tests.grantees import open_release
from tests.http.portal import HTML, Http, csrf_token, submit
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


async def attach(client: Http, fields: dict[str, str], file: tuple[str, bytes] | None) -> Any:
    """Post the evidence form as a browser does: multipart, with the page's CSRF token."""
    token = await csrf_token(client, PAGE)
    files = {"file": (file[0], file[1], "application/pdf")} if file else {"file": ("", b"")}
    return await client.post(
        f"{PAGE}/evidence",
        data={**fields, "_csrf_token": token},
        files=files,
        headers=HTML,
    )


async def attachments(rt: Runtime) -> list[EvidenceAttachment]:
    async with rt.sessionmaker() as session:
        return list(await session.scalars(select(EvidenceAttachment)))


EVIDENCE = {"kind": "evaluation", "name": "red-team", "result": "pass"}


async def test_the_evidence_form_stores_the_attached_file_and_shows_its_limit(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await sign_in_operator(client, runtime)
    page = await client.get(PAGE, headers=HTML)
    assert 'enctype="multipart/form-data"' in page.text
    assert 'type="file"' in page.text
    assert "at most 20 MiB" in page.text
    report = b"%PDF-1.4 red-team report: pass\n" * 1000
    attached = await attach(client, EVIDENCE, ("reports/red-team.pdf", report))
    assert attached.status_code == 200, attached.text
    assert "Evidence attached with red-team.pdf" in attached.text
    assert "red-team.pdf (" in attached.text
    (row,) = await attachments(runtime)
    assert (row.file_name, row.file_size) == ("red-team.pdf", len(report))
    assert row.file_sha256 == hashlib.sha256(report).hexdigest()
    with runtime.storage.open_read(row.file_sha256) as stored:
        assert stored.read() == report
    # No file chosen: the browser sends an empty part, and the evidence is kept without one.
    plain = await attach(client, {**EVIDENCE, "name": "internal-safety"}, None)
    assert "Evidence attached" in plain.text
    assert sorted((a.name, a.file_name) for a in await attachments(runtime)) == [
        ("internal-safety", None),
        ("red-team", "red-team.pdf"),
    ]


async def test_an_evidence_file_over_the_limit_is_refused_and_nothing_is_kept(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await sign_in_operator(client, runtime)
    just_over = await attach(client, EVIDENCE, ("big.pdf", b"x" * (EVIDENCE_FILE_MAX_BYTES + 1)))
    assert just_over.status_code == 413
    assert "larger than the limit of 20 MiB" in just_over.text
    far_over = await attach(client, EVIDENCE, ("huge.pdf", b"x" * (EVIDENCE_FILE_MAX_BYTES * 2)))
    assert far_over.status_code == 413
    assert "at most 20 MiB" in far_over.text
    empty = await attach(client, EVIDENCE, ("empty.pdf", b""))
    assert empty.status_code == 400
    assert "the attached file empty.pdf is empty" in empty.text
    assert await attachments(runtime) == []


def gate_rows(page: str) -> list[tuple[str, str, str]]:
    """(row class, state, sentence) of every gate row on a release page."""
    return re.findall(
        r'<tr class="(gate-[a-z]+)"><td class="gate-state">([^<]+)</td><td>([^<]+)</td>', page
    )


async def test_gates_read_as_sentences_and_the_unmet_ones_stand_out(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="trusted_partner")
    await sign_in_operator(client, runtime)
    page = (await client.get(PAGE, headers=HTML)).text
    rows = gate_rows(page)
    assert ("gate-unmet", "Not met", "grantees who downloaded: 0 of 3") in rows
    assert ("gate-unmet", "Not met", "days in stage: 0 of 14") in rows
    assert ("gate-met", "Met", "open high incidents: 0, at most 0") in rows
    assert ("gate-met", "Met", "recall in force: none") in rows
    unmet = [row for row in rows if row[0] == "gate-unmet"]
    assert all(state == "Not met" for _, state, _ in unmet)
    assert f"{len(unmet)} of {len(rows)} gates not met yet." in page
    # The policy key stays at hand for whoever edits the policy, beside the sentence.
    assert "<code>min_grantees_downloaded</code>" in page


async def test_the_rollback_list_offers_only_narrower_stages(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    await sign_in_operator(client, runtime)
    page = (await client.get(PAGE, headers=HTML)).text
    select_ = page.split('<select id="rb-to" name="to"', 1)[1].split("</select>", 1)[0]
    options = re.findall(r'<option value="([^"]+)"( selected)?>', select_)
    assert options == [("draft", ""), ("trusted_partner", " selected")]
    # A wider or unknown stage posted by hand is refused, saying why, and nothing moves.
    wider = await submit(client, PAGE, f"{PAGE}/rollback", {"to": "public", "reason": "x"})
    assert wider.status_code == 409
    assert "cannot roll back from researcher to public" in wider.text
    assert "public is not narrower than researcher" in wider.text
    same = await submit(client, PAGE, f"{PAGE}/rollback", {"to": "researcher", "reason": "x"})
    assert same.status_code == 409
    unknown = await submit(client, PAGE, f"{PAGE}/rollback", {"to": "everyone", "reason": "x"})
    assert unknown.status_code == 409
    assert "unknown stage &#39;everyone&#39;" in unknown.text
    assert await stage_of(runtime) == ("researcher", "active")
    back = await submit(client, PAGE, f"{PAGE}/rollback", {"to": "draft", "reason": "a leak"})
    assert "Rolled back to draft" in back.text
    # At draft there is nothing narrower: no list, and a sentence saying so.
    assert 'id="rb-to"' not in back.text
    assert "No roll back: draft is the narrowest stage." in back.text


async def test_a_recalled_release_offers_no_rollback(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="researcher")
    await sign_in_operator(client, runtime)
    await submit(client, PAGE, f"{PAGE}/recall", {"reason": "leak", "tier": ""})
    page = (await client.get(PAGE, headers=HTML)).text
    assert 'id="rb-to"' not in page
    assert "No roll back while the release is recalled." in page


async def test_a_refused_promotion_says_whether_the_approval_was_recorded(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path, to="trusted_partner")
    await sign_in_operator(client, runtime)
    refused = await submit(client, PAGE, f"{PAGE}/promote", {})
    assert refused.status_code == 200
    assert (
        "Not promoted yet: approval recorded (1 of 2); promotion to researcher waits for: "
        "days in stage: 0 of 14;" in refused.text
    )
    again = await submit(client, PAGE, f"{PAGE}/promote", {})
    assert "Not promoted yet: not promoted to researcher; your approval was already recorded" in (
        again.text
    )
    assert await stage_of(runtime) == ("trusted_partner", "active")
