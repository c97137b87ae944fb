"""Bad input gets a clear 4xx with {error, message, status}, never a 500: NUL characters in
paths, queries and bodies, JSON nested or sized past its limit, absurd Range headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.config import Settings
from gateway.incidents import reporting
from gateway.runtime import Runtime
from tests.grantees import MODEL, grantee, open_release
from tests.http.operators import key_holder
from tests.http.portal import HTML, csrf_token, submit
from tests.http.test_ops_pages import make_account, sign_in_operator
from tests.units import within

pytestmark = pytest.mark.anyio
Http = AsyncTestClient  # type: ignore[type-arg]
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"

# One path per kind of route: downloads, the JSON API, portal and console pages with
# path parameters, static files, sign-in providers, and a path no route has.
NUL_PATHS = [
    "/d/abc%00def",
    "/api/v1/models/acme/sam%00ple",
    "/api/v1/models/acme/sample/releases/1%00",
    "/api/v1/incidents/ab%00c",
    "/models/acme/sam%00ple",
    "/models/acme/sample/releases/1%00.0",
    "/applications/ab%00c",
    "/ops/releases/acme/sample/1%00.0",
    "/static/gateway%00.css",
    "/sign-in/oidc/x%00y",
    "/%00",
]


def assert_error_body(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) >= {"error", "message", "status"}
    assert body["status"] == status
    assert "Traceback" not in answer.text
    return body


@pytest.mark.parametrize("path", NUL_PATHS)
async def test_a_nul_in_any_path_is_not_found(
    client: Http, runtime: Runtime, tmp_path: Path, path: str
) -> None:
    await open_release(runtime, tmp_path)
    assert_error_body(await client.get(path), 404)
    page = await client.get(path, headers=HTML)
    assert page.status_code == 404
    assert "Traceback" not in page.text


async def test_a_nul_in_a_query_or_a_body_is_refused(
    client: Http, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    body = assert_error_body(await client.get("/api/v1/models?q=a%00b"), 400)
    assert "NUL" in body["message"]
    as_json = await client.post(MANIFEST, headers=alice.auth, json={"paths": ["a\x00b"]})
    assert "NUL" in assert_error_body(as_json, 400)["message"]
    token = await csrf_token(client, "/sign-in")
    form = await client.post(
        "/sign-in",
        data={"email": "a\x00@example.org", "password": "x", "_csrf_token": token},
    )
    # Forms are cleaned field by field; a NUL that still reaches PostgreSQL (which cannot
    # store it) is the caller's input, refused as such. SQLite stores it: no such account.
    # The sign-in page shows the refusal on its form.
    if settings.is_sqlite:
        assert form.status_code == 401
        assert "wrong email or password" in form.text
    else:
        assert form.status_code == 400
        assert "the database cannot store (a NUL character?)" in form.text


async def test_json_nested_past_the_limit_is_refused_before_it_is_parsed(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    headers = {**alice.auth, "content-type": "application/json"}
    for depth in (40, 5_000, 200_000):
        deep = b'{"paths": ' + b"[" * depth + b"]" * depth + b"}"
        answer = await client.post(MANIFEST, content=deep, headers=headers)
        assert "deeper than 32 levels" in assert_error_body(answer, 400)["message"]
    # Unterminated, and with no content type: still JSON to the handler, still refused.
    answer = await client.post(MANIFEST, content=b"[" * 100_000, headers=alice.auth)
    assert_error_body(answer, 400)
    # Brackets inside strings are text, not nesting.
    shallow = await client.post(
        MANIFEST, headers=alice.auth, json={"paths": ["[" * 100 + "model.safetensors"]}
    )
    assert shallow.status_code == 200, shallow.text
    assert shallow.json()["artifacts"] == []


async def test_a_json_body_over_its_size_is_refused(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    huge = {"paths": ["x" * 1000] * 2000}
    answer = await client.post(MANIFEST, headers=alice.auth, json=huge)
    assert "larger than 1 MiB" in assert_error_body(answer, 400)["message"]


async def test_a_range_with_thousands_of_digits_is_416_or_the_whole_file(
    client: Http, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    listed = await client.post(MANIFEST, headers=alice.auth)
    weights = next(a for a in listed.json()["artifacts"] if a["path"] == "model.safetensors")
    url = weights["url"].removeprefix("http://testserver")
    huge = "9" * 5000
    start_past_the_end = await client.get(url, headers={"range": f"bytes={huge}-"})
    end_past_the_end = await client.get(url, headers={"range": f"bytes=0-{huge}"})
    last_many = await client.get(url, headers={"range": f"bytes=-{huge}"})
    padded = await client.get(url, headers={"range": f"bytes={'0' * 5000}10-19"})
    # The gateway reads the range on every backend (it is evidence, and a start past the
    # end is refused before any redirect).
    assert_error_body(start_past_the_end, 416)
    assert start_past_the_end.headers["content-range"] == f"bytes */{weights['size']}"
    if settings.s3_endpoint_url:  # S3: the store answers satisfiable ranges itself
        for answer in (end_past_the_end, last_many, padded):
            assert answer.status_code == 302
        return
    assert end_past_the_end.status_code == 206
    assert len(end_past_the_end.content) == weights["size"]
    assert last_many.status_code == 206
    assert len(last_many.content) == weights["size"]
    assert padded.status_code == 206
    assert padded.headers["content-range"] == f"bytes 10-19/{weights['size']}"


@pytest.mark.parametrize("days", ["9" * 5000, "²", "1e9", "99999999999999999999"])
async def test_a_number_field_beyond_what_a_number_holds_is_refused_on_its_form(
    client: Http, runtime: Runtime, days: str
) -> None:
    await sign_in_operator(client, runtime)
    await make_account(runtime, "someone@example.org")
    page = "/ops/accounts/someone@example.org"
    enforce = await submit(
        client, page, f"{page}/enforce", {"step": "suspend", "reason": "spam", "days": days}
    )
    assert enforce.status_code == 400, enforce.text
    assert "the number of days must be a whole number of at most 9 digits" in enforce.text
    bulk = await submit(client, "/ops", "/ops/applications/bulk", {"page": days, "move": "approve"})
    assert bulk.status_code == 400, bulk.text
    assert "select at least one application" in bulk.text


# The operator and evaluator routes of release holds, yanks, reports to an authority and
# evaluations: every hostile body is a 4xx with the error shape, and nothing moves.
HOSTILE_BODIES: list[tuple[str, Any]] = [
    ("json", {"reason": "a\x00b", "name": "a\x00b", "result": "pass", "reference": "a\x00b"}),
    ("json", {"reason": 5, "name": 5, "result": 5, "reference": 5, "authority": 5}),
    ("json", "not an object"),
    ("json", []),
    ("json", {"reason": "x" * 20_000, "name": "n" * 300, "result": "pass", "note": "x" * 6000}),
    ("text", "reason=hello"),
]


@pytest.mark.parametrize("route", ["yank", "quarantine", "authority", "evaluations"])
async def test_hostile_bodies_on_the_hold_and_evaluation_routes_are_4xx(
    client: Http, runtime: Runtime, tmp_path: Path, route: str
) -> None:
    await open_release(runtime, tmp_path, to="trusted_partner")
    holder = await key_holder(runtime)
    evaluator = await grantee(runtime, "aisi@institute.example", tier="trusted_partner")
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow, model=MODEL, version="1.0", category="leak",
            description="The weights are posted on a public file host.",
            links=[], contact=None, reporter_account_id=None, address="192.0.2.1",
        ),
    )  # fmt: skip
    release = "/api/v1/ops/releases/acme/sample/1.0"
    url, auth = {
        "yank": (f"{release}/yank", holder.auth),
        "quarantine": (f"{release}/quarantine", holder.auth),
        "authority": (f"/api/v1/ops/incidents/{incident.id}/authority-reports", holder.auth),
        "evaluations": ("/api/v1/models/acme/sample/releases/1.0/evaluations", evaluator.auth),
    }[route]
    for kind, body in HOSTILE_BODIES:
        if kind == "json":
            answer = await client.post(url, json=body, headers=auth)
        else:
            answer = await client.post(
                url, content=body, headers={**auth, "content-type": "text/plain"}
            )
        assert 400 <= answer.status_code < 500, (route, body, answer.status_code, answer.text)
        assert set(answer.json()) >= {"error", "message", "status"}
    stage = (await client.get(f"{release}/stage", headers=holder.auth)).json()
    assert (stage["yanked_at"], stage["quarantined_at"]) == (None, None)
    assert stage["evidence"] == []
