"""The operator API of promotion evidence: attaching it as JSON or as a multipart form with
a document, listing it, downloading the document byte for byte, and the gate report
seeing it; each attachment recorded with the operator as the actor, and bad input (a
bad label, a file over the limit, an unknown release) refused with nothing kept."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.runtime import Runtime
from gateway.staging.evidence_files import EVIDENCE_FILE_MAX_BYTES
from tests.http.operators import OPS, error_of, evidence_by, key_holder
from tests.sample import publish

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
RELEASE = f"{OPS}/releases/acme/sample/1.0"
EVIDENCE = f"{RELEASE}/evidence"
SAFETY = {"kind": "evaluation", "name": "internal-safety", "result": "pass"}
REPORT = b"%PDF-1.4 red-team report: pass\n" * 1000


def form(fields: dict[str, str]) -> dict[str, tuple[None, str]]:
    """Fields as multipart parts (not files)."""
    return {key: (None, value) for key, value in fields.items()}


async def listed(client: Http, auth: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get(EVIDENCE, headers=auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_json_evidence_meets_the_gate_and_is_recorded_as_the_operator(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    before = (await client.get(f"{RELEASE}/stage", headers=holder.auth)).json()
    assert any("internal-safety" in unmet for unmet in before["gates"]["unmet"])

    attached = await client.post(EVIDENCE, json={**SAFETY, "note": "v3"}, headers=holder.auth)
    assert attached.status_code == 201, attached.text
    body = attached.json()
    assert {k: body[k] for k in SAFETY} == SAFETY
    assert (body["note"], body["attached_by"], body["file_name"]) == ("v3", holder.actor, None)

    after = (await client.get(f"{RELEASE}/stage", headers=holder.auth)).json()
    assert not any("internal-safety" in unmet for unmet in after["gates"]["unmet"])
    assert [(e["kind"], e["name"], e["result"]) for e in after["evidence"]] == [
        ("evaluation", "internal-safety", "pass")
    ]
    assert [item["id"] for item in await listed(client, holder.auth)] == [body["id"]]
    [row] = await evidence_by(runtime, holder.actor)
    assert (row.kind, row.data["name"], row.data["file_sha256"]) == (
        "evidence.attached",
        "internal-safety",
        None,
    )


async def test_a_multipart_upload_downloads_as_the_same_bytes(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    sha256 = hashlib.sha256(REPORT).hexdigest()
    attached = await client.post(
        EVIDENCE,
        files={
            **form({"kind": "evaluation", "name": "red-team", "result": "pass"}),
            "file": ("reports/red-team.pdf", REPORT, "application/pdf"),
        },
        headers=holder.auth,
    )
    assert attached.status_code == 201, attached.text
    body = attached.json()
    assert (body["file_name"], body["file_size"], body["file_sha256"]) == (
        "red-team.pdf",
        len(REPORT),
        sha256,
    )
    [item] = await listed(client, holder.auth)
    assert item == body
    document = await client.get(f"{EVIDENCE}/{body['id']}/file", headers=holder.auth)
    assert document.status_code == 200
    assert document.content == REPORT
    assert document.headers["etag"] == f'"{sha256}"'
    assert 'filename="red-team.pdf"' in document.headers["content-disposition"]
    [row] = await evidence_by(runtime, holder.actor, "evidence.attached")
    assert (row.data["file_name"], row.data["file_sha256"]) == ("red-team.pdf", sha256)


async def test_a_document_is_found_only_on_its_own_release(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, version="2.0")
    holder = await key_holder(runtime)
    plain = (await client.post(EVIDENCE, json=SAFETY, headers=holder.auth)).json()
    none = await client.get(f"{EVIDENCE}/{plain['id']}/file", headers=holder.auth)
    assert (none.status_code, error_of(none)) == (404, "evidence_file_none")
    other = await client.get(
        f"{OPS}/releases/acme/sample/2.0/evidence/{plain['id']}/file", headers=holder.auth
    )
    assert (other.status_code, error_of(other)) == (404, "evidence_not_found")
    unknown = await client.get(f"{EVIDENCE}/no-such-id/file", headers=holder.auth)
    assert (unknown.status_code, error_of(unknown)) == (404, "evidence_not_found")
    missing = await client.get(f"{OPS}/releases/acme/sample/9.9/evidence", headers=holder.auth)
    assert (missing.status_code, error_of(missing)) == (404, "release_not_found")


BAD_JSON: list[tuple[object, str]] = [
    ({**SAFETY, "kind": "Red Team"}, "invalid_evidence"),
    ({**SAFETY, "name": "x" * 201}, "invalid_evidence"),
    ({"kind": "evaluation", "name": "internal-safety"}, "invalid_request"),
    ({**SAFETY, "result": 1}, "invalid_request"),
    ({**SAFETY, "note": "x" * 5001}, "text_too_long"),
    (["evaluation"], "invalid_request"),
]


@pytest.mark.parametrize(("body", "code"), BAD_JSON)
async def test_bad_json_is_refused_with_nothing_attached(
    client: Http, runtime: Runtime, tmp_path: Path, body: object, code: str
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    answer = await client.post(EVIDENCE, json=body, headers=holder.auth)
    assert (answer.status_code, error_of(answer)) == (400, code)
    assert await listed(client, holder.auth) == []
    assert await evidence_by(runtime, holder.actor) == []


async def test_a_body_neither_json_nor_a_form_is_refused(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    broken = await client.post(
        EVIDENCE,
        content=b'{"kind": ',
        headers={**holder.auth, "content-type": "application/json"},
    )
    assert (broken.status_code, error_of(broken)) == (400, "invalid_request")
    text = await client.post(
        EVIDENCE, content=b"kind=evaluation", headers={**holder.auth, "content-type": "text/plain"}
    )
    assert (text.status_code, error_of(text)) == (400, "invalid_request")
    assert "multipart/form-data" in text.json()["message"]
    assert await listed(client, holder.auth) == []


async def upload(client: Http, auth: dict[str, str], content: bytes, url: str = EVIDENCE) -> Any:
    return await client.post(
        url,
        files={**form(SAFETY), "file": ("report.pdf", content, "application/pdf")},
        headers=auth,
    )


async def test_files_over_the_limit_empty_or_for_no_release_are_refused_and_not_stored(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    holder = await key_holder(runtime)
    just_over = b"x" * (EVIDENCE_FILE_MAX_BYTES + 1)
    refused = await upload(client, holder.auth, just_over)
    assert (refused.status_code, error_of(refused)) == (413, "evidence_file_too_large")
    assert "larger than the limit of 20 MiB" in refused.json()["message"]
    # Past the body's limit the form is not even read.
    far_over = await upload(client, holder.auth, b"x" * (EVIDENCE_FILE_MAX_BYTES + 128 * 1024))
    assert (far_over.status_code, error_of(far_over)) == (413, "request_too_large")
    empty = await upload(client, holder.auth, b"")
    assert (empty.status_code, error_of(empty)) == (400, "invalid_evidence")
    no_release = await upload(
        client, holder.auth, REPORT, f"{OPS}/releases/acme/sample/9.9/evidence"
    )
    assert (no_release.status_code, error_of(no_release)) == (404, "release_not_found")
    not_a_file = await client.post(
        EVIDENCE, files=form({**SAFETY, "file": "report.pdf"}), headers=holder.auth
    )
    assert (not_a_file.status_code, error_of(not_a_file)) == (400, "invalid_evidence")
    assert await listed(client, holder.auth) == []
    assert await evidence_by(runtime, holder.actor) == []
    for content in (just_over, REPORT):
        assert not runtime.storage.exists(hashlib.sha256(content).hexdigest())


async def test_the_document_states_both_bodies_and_the_file_answer(client: Http) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    path = "/api/v1/ops/releases/{org}/{name}/{version}/evidence"
    attach = doc["paths"][path]["post"]
    assert {"201", "400", "401", "403", "404", "413"} <= set(attach["responses"])
    content = attach["requestBody"]["content"]
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert content["application/json"]["schema"]["required"] == ["kind", "name", "result"]
    document = doc["paths"][path + "/{attachment_id}/file"]["get"]
    assert "application/octet-stream" in document["responses"]["200"]["content"]
