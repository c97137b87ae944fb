"""The gateway's JSON API, as the download client uses it.

The API key travels only in the Authorization header, and only to the gateway's own
origin: signature and key URLs on another host (a CDN, say) get no credential.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2

from gateway.client import retry
from gateway.client.errors import DownloadFailed, network_failure, unexpected
from gateway.client.schemas import (
    CatalogArtifact,
    DownloadManifest,
    ReleaseEntry,
    parse_catalog_artifacts,
    parse_manifest,
    parse_releases,
)
from gateway.jsonlimits import GATEWAY_ANSWER, JsonRefused, parse_json
from stages.names import ModelRef


def refusal(response: httpx2.Response) -> DownloadFailed:
    """The gateway's JSON error body as a DownloadFailed; any other body as `unexpected`.

    The response must have been read (call `.read()` on a streamed one first).
    """
    status = response.status_code
    try:
        body = parse_json(response.content, GATEWAY_ANSWER)
    except JsonRefused:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body.get("message")
        hint = body.get("hint")
        return DownloadFailed(
            body["error"],
            message if isinstance(message, str) and message else f"HTTP {status}",
            status=status,
            hint=hint if isinstance(hint, str) else None,
        )
    return unexpected(
        f"{response.request.method} {response.url.copy_with(query=None)} answered HTTP {status}",
        status=status,
    )


class GatewayApi:
    """Calls to one gateway with one API key, over a shared client."""

    def __init__(self, client: httpx2.Client, server: str, key: str) -> None:
        self.client = client
        self.server = server.rstrip("/")
        self._origin = httpx2.URL(self.server)
        self._key = key

    def model_releases(self, model: ModelRef) -> list[ReleaseEntry]:
        """The model's releases, oldest first."""
        return parse_releases(self._call("GET", self._url(model)))

    def catalog_artifacts(self, model: ModelRef, version: str) -> list[CatalogArtifact]:
        """Every file of a release with its component, from the public catalog."""
        return parse_catalog_artifacts(self._call("GET", f"{self._url(model)}/releases/{version}"))

    def request_manifest(
        self,
        model: ModelRef,
        version: str,
        *,
        paths: list[str] | None = None,
        resume: dict[str, str] | None = None,
    ) -> DownloadManifest:
        """Ask for download URLs; `resume` maps paths to download ids already issued."""
        body = {"paths": paths, "continue": resume or None}
        url = f"{self._url(model)}/releases/{version}/downloads"
        return parse_manifest(self._call("POST", url, json=body))

    def submit_evaluation(
        self,
        model: ModelRef,
        version: str,
        *,
        name: str,
        result: str,
        note: str | None,
        report: tuple[str, bytes] | None,
    ) -> dict[str, Any]:
        """Send an external evaluator's result (and report) once: a POST that may have
        landed is never sent again, so one result is never recorded twice."""
        url = f"{self._url(model)}/releases/{version}/evaluations"
        fields = {"name": name, "result": result} | ({"note": note} if note else {})
        # A form when there is a report to send, else JSON (the API takes no other body).
        body: dict[str, Any] = (
            {"data": fields, "files": {"file": (report[0], report[1], "application/octet-stream")}}
            if report
            else {"json": fields}
        )
        try:
            response = self.client.request("POST", url, headers=self._headers(url), **body)
        except retry.TRANSIENT_ERRORS as exc:
            raise network_failure(f"POST {url}: {retry.describe(exc)}") from exc
        if not response.is_success:
            raise refusal(response)
        try:
            answer = parse_json(response.content, GATEWAY_ANSWER)
        except JsonRefused as exc:
            raise unexpected(f"POST {url} did not answer with usable JSON ({exc})") from exc
        if not isinstance(answer, dict):
            raise unexpected(f"POST {url} answered {type(answer).__name__}, not an object")
        return answer

    def fetch(self, url: str) -> bytes:
        """The body of a small document (the signature bundle, the public key)."""
        response = self._send("GET", url)
        return response.content

    def _url(self, model: ModelRef) -> str:
        # Names are validated by stages.names (letters, digits, . _ -): nothing to escape.
        return f"{self.server}/api/v1/models/{model.org}/{model.name}"

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._send(method, url, **kwargs)
        try:
            return parse_json(response.content, GATEWAY_ANSWER)
        except JsonRefused as exc:
            raise unexpected(f"{method} {url} did not answer with usable JSON ({exc})") from exc

    def _headers(self, url: str) -> dict[str, str]:
        target = httpx2.URL(url)
        same_origin = (target.scheme, target.host, target.port) == (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        )
        headers = {"Accept": "application/json"}
        if same_origin:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        """One request, retried on transient failures; a refusal raises DownloadFailed."""
        last = ""
        for delay in (*retry.DELAYS, None):
            try:
                response = self.client.request(method, url, headers=self._headers(url), **kwargs)
            except retry.TRANSIENT_ERRORS as exc:
                last = retry.describe(exc)
            else:
                if response.is_success:
                    return response
                if not retry.is_transient_status(response.status_code):
                    raise refusal(response)
                last = f"HTTP {response.status_code}"
                if delay is None:
                    raise refusal(response)
            if delay is None:
                break
            time.sleep(delay)
        raise network_failure(f"could not reach {self.server}: {last}")
