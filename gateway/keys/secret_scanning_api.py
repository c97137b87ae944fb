"""GitHub's secret scanning reports API keys it found in public here, signed: every active
one is revoked at once, and the answer tells GitHub which were real."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody

from gateway.api_reference import COMMON, answers
from gateway.keys.found import MAX_KEYS
from gateway.keys.secret_scanning import (
    ScanningKeyList,
    SecretMatch,
    TokenLabel,
    report_from_github,
)
from gateway.web import Uow

# The key list lives in the app's state: one per process, made by the app factory (tests
# may put one of their own there).
KEY_LIST_STATE = "secret_scanning_keys"

KeyId = Annotated[
    str | None,
    HeaderParameter(
        name="Github-Public-Key-Identifier",
        description="The id of GitHub's key that signed the body",
    ),
]
Signature = Annotated[
    str | None,
    HeaderParameter(
        name="Github-Public-Key-Signature",
        description="Base64 of the DER ECDSA (P-256, SHA-256) signature over the body",
    ),
]


def provide_key_list(state: State) -> ScanningKeyList:
    keys: ScanningKeyList = state[KEY_LIST_STATE]
    return keys


KeyList = NamedDependency[ScanningKeyList]


class SecretScanningController(Controller):
    tags = ["keys"]
    dependencies = {"scanning_keys": Provide(provide_key_list, sync_to_thread=False)}

    @post(
        "/api/v1/secret-scanning/github",
        summary=f"GitHub's secret scanning partner reports, signed by GitHub: up to {MAX_KEYS} "
        "matches, each active key revoked at once and its owner told where it leaked",
        status_code=200,
        responses={
            200: ResponseSpec(list[TokenLabel], description="A label for every match"),
            **answers(*COMMON, 401),
        },
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        scanning_keys: KeyList,
        data: JSONBody[list[SecretMatch]],
        key_id: KeyId = None,
        signature: Signature = None,
    ) -> list[TokenLabel]:
        # The signature covers the body as sent; Litestar keeps the bytes it parsed.
        body = await request.body()
        return await report_from_github(
            uow, scanning_keys, body, data, key_id=key_id, signature=signature
        )
