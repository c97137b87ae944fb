"""`gateway --server URL ...`: operator commands done through a gateway's operator API
(`/api/v1/ops/`) instead of on its database, so operators work from their own machines.

The admin key comes from $GATEWAY_ADMIN_KEY, never from an option that `ps` would show.
The key's account is the operator who acts, so `--as` has no meaning there. A command
with no remote form refuses to run under --server (see `refuse_local`) rather than act on
a local database the operator did not mean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx2
import msgspec

from gateway.cli.server_choice import ADMIN_KEY_ENV, chosen_server
from gateway.cli.support import fail
from gateway.client.api import refusal
from gateway.jsonlimits import GATEWAY_ANSWER, JsonRefused, parse_json

T = TypeVar("T")


class Paged(Protocol):
    """One page of an operator API listing (GrantPage, IncidentPage, ...)."""

    @property
    def next_cursor(self) -> str | None: ...


P = TypeVar("P", bound=Paged)

OPS_PREFIX = "/api/v1/ops"
TIMEOUT_SECONDS = 60.0

# The exit codes of the gateway's own errors (gateway/errors.py), by the HTTP status the
# API answers them with.
_EXIT_BY_STATUS = {400: 2, 413: 2, 422: 2, 404: 3, 409: 4, 401: 6, 403: 6, 502: 5, 503: 5, 504: 5}


@dataclass(frozen=True)
class Remote:
    """One gateway's operator API, called with one admin key."""

    server: str
    key: str

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        body: object = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of `method OPS_PREFIX+path`; an error answer ends the command
        with the server's message and the exit code the same error has locally."""
        url = f"{self.server}{OPS_PREFIX}{path}"
        query = {k: _query_value(v) for k, v in (params or {}).items() if v not in ("", None)}
        try:
            with httpx2.Client(timeout=TIMEOUT_SECONDS) as client:
                response = client.request(
                    method,
                    url,
                    params=query,
                    json=body if files is None and form is None else None,
                    files=files,
                    data=form,
                    headers={"authorization": f"Bearer {self.key}"},
                )
        except httpx2.HTTPError as exc:
            fail(f"cannot reach {self.server}: {exc}", 5)
        if response.status_code >= 400:
            problem = refusal(response)
            fail(problem.message, _EXIT_BY_STATUS.get(response.status_code, 1))
        if not response.content:
            return None
        try:
            return parse_json(response.content, GATEWAY_ANSWER)
        except JsonRefused as exc:
            fail(f"{self.server} answered {method} {path} with no JSON: {exc}", 1)

    def pages(
        self, shape: type[P], path: str, params: Mapping[str, str | int | bool]
    ) -> Iterator[P]:
        """The pages of the listing at `path`, first to last, following its cursors."""
        cursor = ""
        while True:
            page = self.fetch(shape, "GET", path, params={**params, "cursor": cursor})
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def fetch(self, shape: type[T], method: str, path: str, **kwargs: Any) -> T:
        """`call`, read into one of the API's answer types."""
        answer = self.call(method, path, **kwargs)
        try:
            return msgspec.convert(answer, shape)
        except msgspec.ValidationError as exc:
            fail(f"{self.server} answered {method} {path} in an unexpected shape: {exc}", 1)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def remote(*, operator: str | None = None) -> Remote | None:
    """The operator API to call when the command runs with --server, else None.

    `operator` is the command's `--as`: under --server the key's account acts instead.
    """
    server = chosen_server()
    if server is None:
        return None
    if operator is not None:
        fail("--as has no effect with --server: the admin key's account is the operator", 2)
    key = os.environ.get(ADMIN_KEY_ENV, "").strip()
    if not key:
        fail(f"--server needs an API key with the admin scope in ${ADMIN_KEY_ENV}", 2)
    return Remote(server, key)
