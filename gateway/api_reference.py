"""The OpenAPI document and the page that renders it, served by the gateway alone.

Rules:
* `/schema` is Swagger UI from the `swagger-ui-bundle-v2` package, served from this
  process under `/schema/assets/`; its start-up script is `static/api-reference.js`.
  Nothing is fetched from another host, so the reference works in an air-gapped lab,
  and the page needs no inline script (the pages' Content-Security-Policy allows none).
* The document tells the truth about errors: every error answer is `ErrorBody`, the body
  the exception handlers in `app.py` send, and each operation lists the statuses it can
  answer with `answers(...)`.
* Operations that need an API key say so with `BEARER` (HTTP bearer, `rgk_...` keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = "/assets"
BEARER_SCHEME = "apiKey"
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
# For operations that take a key when one is sent and work without one too.
BEARER_OPTIONAL: list[dict[str, list[str]]] = [{}, {BEARER_SCHEME: []}]


@dataclass(frozen=True)
class Problem:
    """One bad field of a refused input."""

    field: str
    message: str


@dataclass(frozen=True)
class ErrorBody:
    """Every error answer: a stable code, a sentence, the HTTP status; some add a hint
    (what to do next) or the list of bad fields."""

    error: str
    message: str
    status: int
    hint: str | None = None
    problems: list[Problem] | None = None


_MEANING = {
    400: "The input is not valid (`invalid_request`, `invalid_name`, ...); the message says "
    "which part and what was expected.",
    401: "No API key, or one the gateway does not know (`key_invalid`); send "
    "`Authorization: Bearer rgk_...`. A signed report: no signature (`signature_missing`), "
    "one by a key not in the signer's list (`signature_key_unknown`), or a wrong one "
    "(`signature_invalid`).",
    403: "Refused, with the reason as the code: `key_expired`, `key_revoked`, "
    "`key_scope_missing`, `account_suspended`, `no_grant`, `url_invalid`, ...",
    404: "Nothing by that name or id that this caller may see.",
    409: "The request conflicts with the current state (already exists, already decided).",
    410: "The download URL has expired (`url_expired`); ask the manifest for a fresh one.",
    413: "The request is larger than this operation takes; the message says the limit.",
    416: "The `Range` lies outside the file; `Content-Range: bytes */SIZE` gives its size.",
    429: "Too many requests; wait as long as `Retry-After` says.",
    503: "The database or storage is unreachable (`database_unavailable`, "
    "`storage_unavailable`), or for a signed report the signer's key list "
    "(`secret_scanning_keys_unavailable`); try again after `Retry-After`.",
}


def answers(*statuses: int) -> dict[int, ResponseSpec]:
    """Response declarations for these error statuses, all with the error body."""
    return {
        status: ResponseSpec(ErrorBody, description=_MEANING[status], generate_examples=False)
        for status in statuses
    }


# What any operation that reads the database can answer besides its own refusals.
COMMON = (400, 503)

# `/d/{token}`: the bytes (all, or the asked range), or a redirect to storage.
DOWNLOAD_ANSWERS: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        bytes,
        description="The whole artifact; `ETag` is its SHA-256",
        media_type="application/octet-stream",
        generate_examples=False,
    ),
    206: ResponseSpec(
        bytes,
        description="The asked `Range` of the artifact, with `Content-Range`",
        media_type="application/octet-stream",
        generate_examples=False,
    ),
    302: ResponseSpec(
        None, description="S3 storage: `Location` is a presigned URL valid for a minute"
    ),
}


@dataclass
class ManifestOperation(Operation):
    """The manifest's body as Litestar validates it (`ManifestRequest`, whose `continue_`
    is sent as `continue`): the document names the two fields, null or no body allowed,
    and that no other field is accepted."""

    def __post_init__(self) -> None:
        strings = Schema(type=OpenAPIType.STRING)
        body = Schema(
            type=[OpenAPIType.OBJECT, OpenAPIType.NULL],
            properties={
                "paths": Schema(
                    type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
                    items=strings,
                    description="Only these artifacts",
                ),
                "continue": Schema(
                    type=[OpenAPIType.OBJECT, OpenAPIType.NULL],
                    additional_properties=strings,
                    description="Path -> download id of an interrupted download",
                ),
            },
            additional_properties=False,
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=body)}, required=False
        )


class ApiReference(OpenAPIRenderPlugin):
    """Swagger UI from the packaged bundle, with no inline script and no CDN."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"], favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        base = request.app.openapi_config.path if request.app.openapi_config else "/schema"
        spec = self.get_openapi_json_route(request)
        title = escape(str(openapi_schema["info"]["title"]))
        page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}: API reference</title>
  <link rel="stylesheet" href="{base}{ASSETS}/swagger-ui.css">
  <link rel="stylesheet" href="/static/api-reference.css">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{escape(spec)}"></div>
  <script src="{base}{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/api-reference.js"></script>
</body>
</html>
"""
        return page.encode()

    def receive_router(self, router: Router) -> None:
        from swagger_ui_bundle import swagger_ui_path

        router.register(
            create_static_files_router(
                path=ASSETS,
                directories=[str(swagger_ui_path)],
                include_in_schema=False,
                name="api-reference-assets",
            )
        )


def openapi_config(version: str) -> OpenAPIConfig:
    """The OpenAPI settings: document at `/schema/openapi.json`, reference at `/schema`."""
    return OpenAPIConfig(
        title="Release Gateway",
        version=version,
        path="/schema",
        description=(
            "Staged release of open model weights: catalog, access and evidence. "
            "Every error answers `{error, message, status}` with a stable code."
        ),
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="rgk_ + 28 characters",
                    description="An API key, sent as `Authorization: Bearer rgk_...`.",
                )
            }
        ),
        render_plugins=[ApiReference(), JsonRenderPlugin(), YamlRenderPlugin()],
    )
