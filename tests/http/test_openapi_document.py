"""What the OpenAPI document states, read from /schema/openapi.json: the error body the
gateway sends, the statuses of each operation, the bearer key scheme and the parameter
rules. (tests/e2e/test_openapi_truth.py checks real answers against it.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.grantees import grantee, open_release
from tests.http.portal import Http

pytestmark = pytest.mark.anyio
ERROR_REF = "#/components/schemas/ErrorBody"


async def document(client: Http) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method]
    return found


async def test_the_error_body_is_the_one_the_gateway_sends(client: Http) -> None:
    doc = await document(client)
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"error", "message", "status"}
    assert {"hint", "problems"} <= set(body["properties"])
    missing = await client.get("/api/v1/models/acme/nothing")
    assert missing.status_code == 404
    assert set(missing.json()) <= set(body["properties"])
    assert set(body["required"]) <= set(missing.json())
    # Every error status of every operation is described with that body; a refused key
    # verification with that body and what the verification found besides.
    refused = doc["components"]["schemas"]["VerifyRefusedOut"]
    assert set(refused["required"]) == set(body["required"])
    assert set(body["properties"]) - {"hint", "problems"} <= set(refused["properties"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    schema = answer["content"]["application/json"]["schema"]
                    extended = path == "/api/v1/keys/verify" and status in ("403", "429")
                    ref = "#/components/schemas/VerifyRefusedOut" if extended else ERROR_REF
                    assert schema == {"$ref": ref}, (method, path, status)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/api/v1/models", {"200", "400", "503"}),
        ("get", "/api/v1/models/{org}/{name}/releases/{version}", {"404", "503"}),
        ("post", "/api/v1/models/{org}/{name}/releases/{version}/downloads",
         {"200", "401", "403", "404", "429", "503"}),
        ("get", "/d/{token}", {"200", "206", "302", "403", "404", "410", "416", "503"}),
        ("post", "/api/v1/keys", {"201", "401", "403", "429"}),
        ("delete", "/api/v1/keys/{key_id}", {"200", "401", "403", "404"}),
        ("post", "/api/v1/applications", {"201", "401", "403", "404", "409", "429"}),
        ("post", "/api/v1/applications/{application_id}/withdraw", {"409"}),
        ("post", "/api/v1/incidents", {"201", "400", "401", "429"}),
    ],
)  # fmt: skip
async def test_each_operation_lists_the_statuses_it_can_answer(
    client: Http, method: str, path: str, statuses: set[str]
) -> None:
    op = operation(await document(client), method, path)
    assert statuses <= set(op["responses"])


async def test_key_guarded_operations_name_the_bearer_scheme(client: Http) -> None:
    doc = await document(client)
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path in [
        ("post", "/api/v1/models/{org}/{name}/releases/{version}/downloads"),
        ("get", "/api/v1/keys"),
        ("post", "/api/v1/keys"),
        ("delete", "/api/v1/keys/{key_id}"),
        ("get", "/api/v1/applications"),
        ("post", "/api/v1/applications"),
    ]:
        assert operation(doc, method, path)["security"] == [{"apiKey": []}], (method, path)
    assert {} in operation(doc, "post", "/api/v1/incidents")["security"]
    assert "security" not in operation(doc, "get", "/api/v1/models")


async def test_parameter_rules_are_stated_and_held(client: Http) -> None:
    import re

    doc = await document(client)
    params = {
        p["name"]: p["schema"]
        for p in operation(doc, "get", "/api/v1/models/{org}/{name}/releases/{version}")[
            "parameters"
        ]
    }
    for name in ("org", "name", "version"):
        assert params[name]["maxLength"] == 64
        assert params[name]["pattern"].startswith("^")
    listing = {
        p["name"]: p["schema"] for p in operation(doc, "get", "/api/v1/models")["parameters"]
    }
    assert (listing["limit"]["minimum"], listing["limit"]["maximum"]) == (1, 500)
    # What the pattern refuses, the gateway refuses too, with the error body.
    org = re.compile(params["org"]["pattern"])
    for bad in ("a..b", "-a", "a_"):
        assert not org.match(bad)
        answer = await client.get(f"/api/v1/models/{bad}/x/releases/1.0")
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_name"


async def test_the_manifest_body_lists_its_two_fields(
    client: Http, runtime: Any, tmp_path: Any
) -> None:
    doc = await document(client)
    op = operation(doc, "post", "/api/v1/models/{org}/{name}/releases/{version}/downloads")
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"paths", "continue"}
    assert body["additionalProperties"] is False
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    refused = await client.post(
        "/api/v1/models/acme/sample/releases/1.0/downloads", json={"other": 1}, headers=alice.auth
    )
    assert refused.status_code == 400
